import Hummingbird

/// The contract's account endpoints. Each stage answers them differently
/// (from its own table in stage 1, by asking the user service in stage 2);
/// the URLs never change, so they are registered in one place.
public protocol AccountEndpoints: Sendable {
    func signUp(_ request: Request, context: ShopRequestContext) async throws -> Response
    func login(_ request: Request, context: ShopRequestContext) async throws -> Response
    func me(_ request: Request, context: ShopRequestContext) async throws -> Response
    func summary(_ request: Request, context: ShopRequestContext) async throws -> Response
}

/// The contract's catalogue endpoints (stock is the order side's).
public protocol CatalogueEndpoints: Sendable {
    func list(_ request: Request, context: ShopRequestContext) async throws -> Response
    func get(_ request: Request, context: ShopRequestContext) async throws -> Response
    func create(_ request: Request, context: ShopRequestContext) async throws -> Response
    func update(_ request: Request, context: ShopRequestContext) async throws -> Response
}

extension Router<ShopRequestContext> {
    public func addAccountRoutes(_ accounts: some AccountEndpoints) {
        post("/users", use: accounts.signUp)
        post("/auth/login", use: accounts.login)
        get("/users/me", use: accounts.me)
        get("/users/me/summary", use: accounts.summary)
    }

    public func addCatalogueRoutes(_ catalogue: some CatalogueEndpoints) {
        get("/products", use: catalogue.list)
        post("/products", use: catalogue.create)
        get("/products/:id", use: catalogue.get)
        patch("/products/:id", use: catalogue.update)
    }
}
