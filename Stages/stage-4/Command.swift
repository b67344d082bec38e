import Accounts
import ArgumentParser
import Catalog
import Common
import Discovery
import Foundation
import Gateway
import Hummingbird
import Logging
import Messaging
import ServiceLifecycle
import ShopServer
import Supervisor

/// Stage 4: RabbitMQ between the services. `stage-4` makes sure etcd and
/// RabbitMQ answer (starting the project's own when their addresses are
/// local and silent), then starts eight processes: the user, product,
/// order, inventory, payment and notification services, the dead-letter
/// office, and the gateway on 8080.
@main
struct Stage4: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stage-4",
        abstract: "Asynchronous order processing over RabbitMQ: outbox, idempotent consumers, retries and dead letters.",
        subcommands: [Run.self, Serve.self],
        defaultSubcommand: Run.self)
}

struct Infrastructure: ParsableArguments {
    @Option(help: "etcd's client URL (env ETCD_URL; default http://127.0.0.1:2379).")
    var etcd: String?
    @Option(help: "RabbitMQ's URL (env AMQP_URL; default amqp://guest:guest@127.0.0.1:5672/).")
    var amqp: String?

    var etcdURL: String { etcd ?? Environment.string("ETCD_URL") ?? "http://127.0.0.1:2379" }
    var amqpURL: String { amqp ?? Broker.url }
}

/// `stage-4`: every process of the stage, supervised.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Start every process of stage 4 (the default).")

    @OptionGroup var server: ServerOptions
    @OptionGroup var infrastructure: Infrastructure

    static let services = ["user", "product", "order", "inventory", "payment", "notification", "deadletter"]

    static func namespace(of deployment: URL) -> String {
        "stage-4-" + SHA256.hex(Array(deployment.standardizedFileURL.path.utf8)).prefix(12)
    }

    func run() async throws {
        ShopLogHandler.bootstrap(service: "stage-4")
        let logger = Logger(label: "stage-4")
        let dataDir = try server.resolvedDataDir(stage: "stage-4")
        Console.line("stage-4 keeps its data in \(dataDir.path) (one folder per service)")
        _ = try ShopSettings.load(dataDir: dataDir, logger: logger)  // the shared development secret, if needed
        try await EtcdStarter.ensureRunning(infrastructure.etcdURL, logger: logger)
        try await Broker.ensureRunning(infrastructure.amqpURL, logger: logger)

        // One namespace per deployment (this data folder's), in etcd and in
        // RabbitMQ's queue names alike.
        let namespace = Environment.string("SHOP_NAMESPACE") ?? Self.namespace(of: dataDir)
        Console.line("stage-4 queues are named \(namespace).<queue> (rabbitmqctl list_queues name messages)")
        let shared = ["ETCD_URL": infrastructure.etcdURL, "AMQP_URL": infrastructure.amqpURL, "SHOP_NAMESPACE": namespace, "DISCOVERY_NAMESPACE": namespace]
        try await Supervisor(nameWidth: 12).run { supervisor in
            for name in Self.services {
                _ = try await supervisor.start(name, arguments: [
                    "serve", name, "--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir.appendingPathComponent(name).path,
                ], environment: shared)
            }
            _ = try await supervisor.start("gateway", arguments: [
                "serve", "gateway", "--host", server.resolvedHost(), "--port", String(server.resolvedPort()),
                "--data-dir", dataDir.appendingPathComponent("gateway").path,
            ], environment: shared)
        }
    }
}

/// `stage-4 serve <service>`: one process of the stage.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run one process of stage 4.")

    enum Service: String, ExpressibleByArgument, CaseIterable {
        case user, product, order, inventory, payment, notification, deadletter, gateway
    }

    @Argument(help: "user, product, order, inventory, payment, notification, deadletter or gateway") var service: Service
    @OptionGroup var server: ServerOptions
    @OptionGroup var infrastructure: Infrastructure

    func run() async throws {
        let name = service == .gateway ? "gateway" : "\(service.rawValue)-service"
        ShopLogHandler.bootstrap(service: name)
        let logger = Logger(label: name)
        let dataDir = try server.resolvedDataDir(stage: "stage-4/\(service.rawValue)")
        let etcd = EtcdClient(url: infrastructure.etcdURL)
        let host = server.resolvedHost()
        // A service started by hand joins the deployment its data folder is
        // in (`<deployment>/<service>`), as if the supervisor had started it.
        let namespace = Environment.string("SHOP_NAMESPACE") ?? Run.namespace(of: dataDir.deletingLastPathComponent())
        setenv("AMQP_URL", infrastructure.amqpURL, 1)
        if Environment.string("DISCOVERY_NAMESPACE") == nil { setenv("DISCOVERY_NAMESPACE", namespace, 1) }

        let router: Router<ShopRequestContext>
        var services: [any ServiceLifecycle.Service] = []
        switch service {
        case .gateway:
            let router = try await Gateway.build(stage: 4, layout: .stage4, dataDir: dataDir, etcd: etcd, logger: logger)
            try await ShopServerRunner.run(name: name, router: router, host: host, port: server.resolvedPort(), logger: logger)
            return
        case .user:
            (router, services) = try await UserApp.build(stage: 4, dataDir: dataDir, namespace: namespace, logger: logger)
        case .product:
            router = try await ProductServiceApp.build(stage: 4, dataDir: dataDir, logger: logger)
        case .order:
            (router, services) = try OrderApp.build(stage: 4, dataDir: dataDir, namespace: namespace, etcd: etcd, logger: logger)
        case .inventory:
            (router, services) = try InventoryApp.build(stage: 4, dataDir: dataDir, namespace: namespace, logger: logger)
        case .payment:
            (router, services) = try PaymentApp.build(stage: 4, dataDir: dataDir, namespace: namespace, logger: logger)
        case .notification:
            (router, services) = try NotificationApp.build(stage: 4, dataDir: dataDir, namespace: namespace, logger: logger)
        case .deadletter:
            (router, services) = try DeadLetterApp.build(stage: 4, dataDir: dataDir, namespace: namespace, logger: logger)
        }
        // A port the system picks; callers find it in etcd.
        try await RegisteredServer.run(
            service: service.rawValue, router: router, host: host, port: server.port ?? 0, etcd: etcd,
            services: services, logger: logger)
    }
}
