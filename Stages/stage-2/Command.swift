import Accounts
import ArgumentParser
import Catalog
import Foundation
import Hummingbird
import Logging
import Observability
import ShopServer
import Supervision

/// Stage 2: the strangler fig. `stage-2` starts three processes under a
/// supervisor: the user service, the product service and what is left of
/// the monolith, which stays the entry point. Each can also run alone:
/// `stage-2 serve product --port 9002`.
@main
struct StageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: ThisStage.name,
        abstract: "The monolith with users and products extracted into services of their own.",
        subcommands: [Run.self, Serve.self],
        defaultSubcommand: Run.self)
}

/// The default command: every process of the stage, supervised.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Start every process of stage \(ThisStage.number) (the default).")

    @OptionGroup var server: ServerOptions
    @Option(help: "Port of the user service (env USER_SERVICE_PORT; default 9001; 0 picks a free one).")
    var userPort: Int?
    @Option(help: "Port of the product service (env PRODUCT_SERVICE_PORT; default 9002; 0 picks a free one).")
    var productPort: Int?

    func run() async throws {
        // Flags and environment, read once, here; everything below is given them.
        let settings = Settings(environment: ProcessInfo.processInfo.environment, server: server)
        ShopLogHandler.bootstrap(service: ThisStage.name, settings: settings)
        let logger = Logger(label: ThisStage.name)
        let dataDir = try settings.dataFolder(stage: ThisStage.name)
        Console.line("\(ThisStage.name) keeps its data in \(dataDir.path) (user/, product/, monolith/)")
        // One token secret for the three processes: the user service signs,
        // the others verify. JWT_SECRET if set; otherwise the development
        // secret in the stage's data folder, which each service finds there
        // (also when one is started again by hand).
        _ = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let shared: [String: String] = [:]

        try await Supervisor(settings: settings).run { supervisor in
            let user = try await supervisor.start("user", arguments: [
                "serve", "user", "--host", "127.0.0.1",
                "--port", String(userPort ?? settings.int("USER_SERVICE_PORT") ?? 9001),
                "--data-dir", dataDir.appendingPathComponent("user").path,
            ], environment: shared)
            let product = try await supervisor.start("product", arguments: [
                "serve", "product", "--host", "127.0.0.1",
                "--port", String(productPort ?? settings.int("PRODUCT_SERVICE_PORT") ?? 9002),
                "--data-dir", dataDir.appendingPathComponent("product").path,
            ], environment: shared)
            _ = try await supervisor.start("monolith", arguments: [
                "serve", "monolith", "--host", settings.host, "--port", String(settings.port()),
                "--data-dir", dataDir.appendingPathComponent("monolith").path,
                "--user-url", user.url, "--product-url", product.url,
            ], environment: shared)
            // No discovery yet: Prometheus learns the three addresses from
            // the supervisor, which started them.
            supervisor.listForPrometheus(as: ThisStage.name) { [weak supervisor] in
                (supervisor?.children ?? []).map { .init(url: $0.url, labels: ["stage": "2", "process": $0.name]) }
            }
        }
    }
}

/// `stage-N serve <service>`: one process of the stage.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run one process of stage \(ThisStage.number).")

    enum Service: String, ExpressibleByArgument, CaseIterable { case user, product, monolith }

    @Argument(help: "user, product or monolith") var service: Service
    @OptionGroup var server: ServerOptions
    @Option(help: "The user service's base URL (monolith only; env USER_SERVICE_URL).")
    var userURL: String?
    @Option(help: "The product service's base URL (monolith only; env PRODUCT_SERVICE_URL).")
    var productURL: String?

    func run() async throws {
        let settings = Settings(environment: ProcessInfo.processInfo.environment, server: server)
        let name = service == .monolith ? ThisStage.name : "\(service.rawValue)-service"
        ShopLogHandler.bootstrap(service: name, settings: settings)
        let logger = Logger(label: name)
        let dataDir = try settings.dataFolder(stage: "\(ThisStage.name)/\(service.rawValue)")
        let router: Router<ShopRequestContext>
        let port: Int
        switch service {
        case .user:
            router = try await UserService.build(stage: ThisStage.number, settings: settings, dataDir: dataDir, logger: logger)
            port = settings.port(default: 9001)
        case .product:
            router = try await ProductService.build(stage: ThisStage.number, settings: settings, dataDir: dataDir, logger: logger)
            port = settings.port(default: 9002)
        case .monolith:
            router = try await Monolith.build(
                settings: settings, dataDir: dataDir,
                userURL: userURL ?? settings.string("USER_SERVICE_URL") ?? "http://127.0.0.1:9001",
                productURL: productURL ?? settings.string("PRODUCT_SERVICE_URL") ?? "http://127.0.0.1:9002",
                logger: logger)
            port = settings.port()
        }
        try await ShopServerRunner.run(name: name, router: router, host: settings.host, port: port, settings: settings, logger: logger)
    }
}
