import Accounts
import ArgumentParser
import Catalog
import Common
import Discovery
import Foundation
import Gateway
import Hummingbird
import Logging
import ShopServer
import Supervisor

/// Stage 3: a gateway in front, discovery in etcd. `stage-3` checks that
/// etcd answers (starting the project's own with `scripts/infra up etcd` if
/// the configured address is local and silent), then starts the user,
/// product and order services on ports the system picks (they register in
/// etcd) and the gateway on 8080 (it finds them there).
@main
struct Stage3: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stage-3",
        abstract: "A gateway and service discovery in front of the user, product and order services.",
        subcommands: [Run.self, Serve.self],
        defaultSubcommand: Run.self)
}

/// `stage-3`: every process of the stage, supervised.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Start every process of stage 3 (the default).")

    @OptionGroup var server: ServerOptions
    @OptionGroup var discovery: EtcdOptions
    @Option(help: "Instances per service, e.g. product=2,user=2 (the order service runs once: its crash recovery assumes it is the only one finishing its orders).")
    var replicas: String = ""

    func run() async throws {
        ShopLogHandler.bootstrap(service: "stage-3")
        let logger = Logger(label: "stage-3")
        let dataDir = try server.resolvedDataDir(stage: "stage-3")
        Console.line("stage-3 keeps its data in \(dataDir.path) (user/, product/, order/)")
        _ = try ShopSettings.load(dataDir: dataDir, logger: logger)  // the shared development secret, if needed
        try await EtcdStarter.ensureRunning(discovery.url, logger: logger)

        var counts = ["user": 1, "product": 1, "order": 1]
        for item in replicas.split(separator: ",") where !item.isEmpty {
            let parts = item.split(separator: "=")
            guard parts.count == 2, let n = Int(parts[1]), n >= 1, n <= 8, ["user", "product"].contains(String(parts[0])) else {
                throw ValidationError("--replicas takes user=N and product=N (1 to 8), e.g. product=2")
            }
            counts[String(parts[0])] = n
        }
        let namespace = Deployment.namespace(stage: 3, dataDir: dataDir)
        try await Supervisor().run { supervisor in
            try await supervisor.startBehindGateway(
                services: ["user", "product", "order"].map { ($0, counts[$0]!) }, dataDir: dataDir,
                host: server.resolvedHost(), port: server.resolvedPort(),
                environment: Deployment.environment(namespace: namespace, etcd: discovery.url))
        }
    }
}

/// `stage-3 serve <service>`: one process of the stage.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run one process of stage 3.")

    enum Service: String, ExpressibleByArgument, CaseIterable { case user, product, order, gateway }

    @Argument(help: "user, product, order or gateway") var service: Service
    @OptionGroup var server: ServerOptions
    @OptionGroup var discovery: EtcdOptions

    func run() async throws {
        let name = service == .gateway ? "gateway" : "\(service.rawValue)-service"
        ShopLogHandler.bootstrap(service: name)
        let logger = Logger(label: name)
        let dataDir = try server.resolvedDataDir(stage: "stage-3/\(service.rawValue)")
        let etcd = EtcdClient(url: discovery.url)
        let host = server.resolvedHost()
        // Started by hand, a service joins the deployment its folder is in.
        setenv("DISCOVERY_NAMESPACE", Deployment.namespace(stage: 3, serviceDataDir: dataDir), 1)
        switch service {
        case .gateway:
            let router = try await Gateway.build(stage: 3, layout: .stage3, dataDir: dataDir, etcd: etcd, logger: logger)
            try await ShopServerRunner.run(name: name, router: router, host: host, port: server.resolvedPort(), logger: logger)
        case .user, .product, .order:
            let router = switch service {
            case .user: try await UserServiceApp.build(stage: 3, dataDir: dataDir, logger: logger)
            case .product: try await ProductServiceApp.build(stage: 3, dataDir: dataDir, logger: logger)
            default: try await OrderService.build(stage: 3, dataDir: dataDir, etcd: etcd, logger: logger)
            }
            // A port the system picks; callers find it in etcd.
            try await RegisteredServer.run(
                service: service.rawValue, router: router, host: host, port: server.port ?? 0, etcd: etcd, logger: logger)
        }
    }
}
