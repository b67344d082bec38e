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

/// `stage-4`: every process of the stage, supervised.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Start every process of stage 4 (the default).")

    @OptionGroup var server: ServerOptions
    @OptionGroup var discovery: EtcdOptions
    @OptionGroup var broker: AMQPOptions

    static let services = ["user", "product", "order", "inventory", "payment", "notification", "deadletter"]

    func run() async throws {
        ShopLogHandler.bootstrap(service: "stage-4")
        let logger = Logger(label: "stage-4")
        let dataDir = try server.resolvedDataDir(stage: "stage-4")
        Console.line("stage-4 keeps its data in \(dataDir.path) (one folder per service)")
        _ = try ShopSettings.load(dataDir: dataDir, logger: logger)  // the shared development secret, if needed
        try await EtcdStarter.ensureRunning(discovery.url, logger: logger)
        try await Broker.ensureRunning(broker.url, logger: logger)

        let namespace = Deployment.namespace(stage: 4, dataDir: dataDir)
        Console.line("stage-4 queues are named \(namespace).<queue> (rabbitmqctl list_queues name messages)")
        try await Supervisor(nameWidth: 12).run { supervisor in
            try await supervisor.startBehindGateway(
                services: Self.services.map { ($0, 1) }, dataDir: dataDir, host: server.resolvedHost(), port: server.resolvedPort(),
                environment: Deployment.environment(namespace: namespace, etcd: discovery.url, amqp: broker.url))
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
    @OptionGroup var discovery: EtcdOptions
    @OptionGroup var broker: AMQPOptions

    func run() async throws {
        let name = service == .gateway ? "gateway" : "\(service.rawValue)-service"
        ShopLogHandler.bootstrap(service: name)
        let logger = Logger(label: name)
        let dataDir = try server.resolvedDataDir(stage: "stage-4/\(service.rawValue)")
        let etcd = EtcdClient(url: discovery.url)
        let host = server.resolvedHost()
        // Started by hand, a service joins the deployment its folder is in.
        let namespace = Deployment.namespace(stage: 4, serviceDataDir: dataDir)
        setenv("DISCOVERY_NAMESPACE", namespace, 1)
        func messaging() throws -> ServiceMessaging {
            try ServiceMessaging(service: service.rawValue, namespace: namespace, url: broker.url, logger: logger)
        }

        let router: Router<ShopRequestContext>
        var services: [any ServiceLifecycle.Service] = []
        switch service {
        case .gateway:
            let router = try await Gateway.build(stage: 4, layout: .stage4, dataDir: dataDir, etcd: etcd, logger: logger)
            try await ShopServerRunner.run(name: name, router: router, host: host, port: server.resolvedPort(), logger: logger)
            return
        case .user:
            (router, services) = try await UserApp.build(stage: 4, dataDir: dataDir, messaging: messaging(), logger: logger)
        case .product:
            router = try await ProductServiceApp.build(stage: 4, dataDir: dataDir, logger: logger)
        case .order:
            (router, services) = try OrderApp.build(stage: 4, dataDir: dataDir, messaging: messaging(), etcd: etcd, logger: logger)
        case .inventory:
            (router, services) = try InventoryApp.build(stage: 4, dataDir: dataDir, messaging: messaging(), logger: logger)
        case .payment:
            (router, services) = try PaymentApp.build(stage: 4, dataDir: dataDir, messaging: messaging(), logger: logger)
        case .notification:
            (router, services) = try NotificationApp.build(stage: 4, dataDir: dataDir, messaging: messaging(), logger: logger)
        case .deadletter:
            (router, services) = try DeadLetterApp.build(stage: 4, dataDir: dataDir, messaging: messaging(), logger: logger)
        }
        // A port the system picks; callers find it in etcd.
        try await RegisteredServer.run(
            service: service.rawValue, router: router, host: host, port: server.port ?? 0, etcd: etcd,
            services: services, logger: logger)
    }
}
