import Accounts
import ArgumentParser
import Catalog
import Common
import Discovery
import Foundation
import Hummingbird
import Logging
import ShopServer
import Supervision

/// Stage 3: a gateway in front, discovery in etcd. `stage-3` checks that
/// etcd answers (starting the project's own with `scripts/infra up etcd` if
/// the configured address is local and silent), then starts the user,
/// product and order services on ports the system picks (they register in
/// etcd) and the gateway on 8080 (it finds them there).
@main
struct StageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: ThisStage.name,
        abstract: "A gateway and service discovery in front of the user, product and order services.",
        subcommands: [Run.self, Serve.self],
        defaultSubcommand: Run.self)
}

/// The default command: every process of the stage, supervised.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Start every process of stage \(ThisStage.number) (the default).")

    @OptionGroup var server: ServerOptions
    @OptionGroup var etcd: EtcdOptions
    @Option(help: "Instances per service, e.g. product=2,user=2 (the order service runs once: its crash recovery assumes it is the only one finishing its orders).")
    var replicas: String = ""

    func run() async throws {
        // Flags and environment, read once, here; everything below is given them.
        let settings = Settings(environment: ProcessInfo.processInfo.environment, server: server, etcd: etcd)
        ShopLogHandler.bootstrap(service: ThisStage.name, settings: settings)
        let logger = Logger(label: ThisStage.name)
        let dataDir = try settings.dataFolder(stage: ThisStage.name)
        Console.line("\(ThisStage.name) keeps its data in \(dataDir.path) (one folder per service)")
        _ = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)  // the shared development secret, if needed
        try await EtcdStarter.ensureRunning(settings.etcdURL, logger: logger)

        var counts = Dictionary(uniqueKeysWithValues: APIGateway.services.map { ($0, 1) })
        for item in replicas.split(separator: ",") where !item.isEmpty {
            let parts = item.split(separator: "=")
            guard parts.count == 2, let n = Int(parts[1]), n >= 1, n <= 8, ["user", "product"].contains(String(parts[0])) else {
                throw ValidationError("--replicas takes user=N and product=N (1 to 8), e.g. product=2")
            }
            counts[String(parts[0])] = n
        }
        let namespace = Deployment.namespace(stage: ThisStage.number, dataDir: dataDir, settings: settings)
        Console.line("\(ThisStage.name) registers its services in etcd under /shop/\(namespace)/services/")
        try await Supervisor(settings: settings).run { supervisor in
            try await supervisor.startBehindGateway(
                services: APIGateway.services.map { ($0, counts[$0]!) }, dataDir: dataDir, host: settings.host, port: settings.port(),
                environment: Deployment.environment(namespace: namespace, etcd: settings.etcdURL))
        }
    }
}

/// `stage-N serve <service>`: one process of the stage.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run one process of stage \(ThisStage.number).")

    enum Service: String, ExpressibleByArgument, CaseIterable { case user, product, order, gateway }

    @Argument(help: "user, product, order or gateway") var service: Service
    @OptionGroup var server: ServerOptions
    @OptionGroup var etcd: EtcdOptions

    func run() async throws {
        let settings = Settings(environment: ProcessInfo.processInfo.environment, server: server, etcd: etcd)
        let name = service == .gateway ? "gateway" : "\(service.rawValue)-service"
        ShopLogHandler.bootstrap(service: name, settings: settings)
        let logger = Logger(label: name)
        let dataDir = try settings.dataFolder(stage: "\(ThisStage.name)/\(service.rawValue)")
        // Started by hand, a service joins the deployment its folder is in.
        let registry = try ServiceRegistry(
            settings: settings, namespace: Deployment.namespace(stage: ThisStage.number, serviceDataDir: dataDir, settings: settings))
        let router: Router<ShopRequestContext>
        switch service {
        case .gateway:
            let router = try await APIGateway.build(settings: settings, dataDir: dataDir, registry: registry, logger: logger)
            try await ShopServerRunner.run(name: name, router: router, host: settings.host, port: settings.port(), settings: settings, logger: logger)
            return
        case .user:
            router = try await UserService.build(stage: ThisStage.number, settings: settings, dataDir: dataDir, logger: logger)
        case .product:
            router = try await ProductService.build(stage: ThisStage.number, settings: settings, dataDir: dataDir, logger: logger)
        case .order:
            router = try await OrderService.build(settings: settings, dataDir: dataDir, registry: registry, logger: logger)
        }
        // A port the system picks; callers find it in etcd.
        try await RegisteredServer.run(
            service: service.rawValue, router: router, host: settings.host, port: settings.port ?? 0, registry: registry,
            settings: settings, logger: logger)
    }
}
