import HTTPTypes
import Hummingbird
import Synchronization

/// The routes a process serves, so that a request for a path it serves with
/// a method it does not gets `405 method_not_allowed` and an `Allow` header
/// listing the methods it does, instead of a 404 that says the path is not
/// there (HTTP's rule, RFC 9110 §15.5.6).
///
/// The middleware that answers is added before the routes are, so the table
/// reads the router's routes on first use, once the process is serving.
public final class RouteTable: Sendable {
    /// `@unchecked`: set once in `makeRouter`, before the server starts, and
    /// only read afterwards. Weak, since the router holds the middleware
    /// that holds this table.
    private final class RouterReference: @unchecked Sendable {
        weak var router: Router<ShopRequestContext>?
    }
    private let reference = RouterReference()
    private let routes = Mutex<[(path: [Substring], methods: Set<String>)]?>(nil)

    public init() {}

    /// Binds the table to the router whose routes it lists.
    public func serve(_ router: Router<ShopRequestContext>) { reference.router = router }

    /// The methods served on `path`, sorted; empty when no route matches it.
    public func methods(for path: String) -> [String] {
        let table = routes.withLock { table in
            if table == nil, let router = reference.router {
                var byPath: [String: Set<String>] = [:]
                for route in router.routes { byPath["\(route.path)", default: []].insert(route.method.rawValue) }
                table = byPath.map { (path: $0.key.split(separator: "/"), methods: $0.value) }
            }
            return table ?? []
        }
        let components = path.split(separator: "/")
        var methods = Set<String>()
        for route in table where Self.matches(route.path, components) { methods.formUnion(route.methods) }
        return methods.sorted()
    }

    /// A route's path as the router describes it (`/orders/{id}`) against a
    /// request's path: a `{name}` component matches any one component, `*`
    /// any one, `**` the rest.
    static func matches(_ route: [Substring], _ path: [Substring]) -> Bool {
        var index = 0
        for component in route {
            if component == "**" { return true }
            guard index < path.count else { return false }
            let captures = component.hasPrefix("{") || component.hasPrefix(":") || component == "*"
            if !captures && component != path[index] { return false }
            index += 1
        }
        return index == path.count
    }
}
