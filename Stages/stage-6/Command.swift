import Accounts
import ArgumentParser
import Catalog
import Common
import Discovery
import Foundation
import Hummingbird
import Jobs
import Logging
import Messaging
import ServiceLifecycle
import ShopServer
import Supervision

/// Stage 6: domain events and a choreographed saga. `stage-6` makes sure
/// etcd, RabbitMQ and Redis answer (starting the project's own when their
/// addresses are local and silent), then starts eight processes: the user,
/// product, order, inventory, payment and notification services, the
/// operations desk (dead letters, jobs, the flow log), and the gateway on 8080.
@main
struct StageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: ThisStage.name,
        abstract: "Domain events in CloudEvents envelopes, a choreographed saga, versioned schemas.",
        subcommands: [Run.self, Serve.self],
        defaultSubcommand: Run.self)
}

/// The default command: every process of the stage, supervised.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Start every process of stage \(ThisStage.number) (the default).")

    @OptionGroup var server: ServerOptions
    @OptionGroup var etcd: EtcdOptions
    @OptionGroup var amqp: AMQPOptions

    func run() async throws {
        // Flags and environment, read once, here; everything below is given them.
        let settings = Settings(environment: ProcessInfo.processInfo.environment, server: server, etcd: etcd, amqp: amqp)
        ShopLogHandler.bootstrap(service: ThisStage.name, settings: settings)
        let logger = Logger(label: ThisStage.name)
        let dataDir = try settings.dataFolder(stage: ThisStage.name)
        Console.line("\(ThisStage.name) keeps its data in \(dataDir.path) (one folder per service)")
        _ = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)  // the shared development secret, if needed
        try await EtcdStarter.ensureRunning(settings.etcdURL, logger: logger)
        try await Broker.ensureRunning(settings.amqpURL, logger: logger)
        try await JobStore.ensureRunning(settings.redisURL, logger: logger)

        let namespace = Deployment.namespace(stage: ThisStage.number, dataDir: dataDir, settings: settings)
        Console.line("\(ThisStage.name) registers its services in etcd under /shop/\(namespace)/services/")
        // What a learner needs to address this deployment by hand (a poison
        // message from pika, a look with rabbitmqctl or scripts/watch).
        let topology = StageTopology.make(namespace: namespace, settings: settings)
        Console.line("\(ThisStage.name) services publish events to exchanges of their own: "
            + Producer.allCases.map { topology.exchange($0.exchange) }.joined(separator: ", ") + " (routing key = CloudEvents type, shop.<Event>)")
        Console.line("\(ThisStage.name) queues: " + topology.queues.map { topology.queue($0.name) }.joined(separator: ", ")
            + "; retries \(topology.retryQueue("<queue>", step: 1))…\(topology.retryDelays.count); dead letters \(topology.deadLetterQueue)")
        let prefix = JobStore.prefix(namespace: namespace)
        Console.line("\(ThisStage.name) keeps its jobs in Redis under \(prefix):<queue>: (queues \(WorkQueue.all.joined(separator: ", ")));"
            + " look with: swift run jobs counts emails --redis \(settings.redisURL) --prefix \(prefix)")
        try await Supervisor(settings: settings, nameWidth: 12).run { supervisor in
            try await supervisor.startBehindGateway(
                services: APIGateway.services.map { ($0, 1) }, dataDir: dataDir, host: settings.host, port: settings.port(),
                environment: Deployment.environment(namespace: namespace, etcd: settings.etcdURL, amqp: settings.amqpURL, redis: settings.redisURL))
        }
    }
}

/// `stage-N serve <service>`: one process of the stage.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run one process of stage \(ThisStage.number).")

    enum Service: String, ExpressibleByArgument, CaseIterable {
        case user, product, order, inventory, payment, notification, deadletter, gateway
    }

    @Argument(help: "user, product, order, inventory, payment, notification, deadletter (dead letters and jobs) or gateway") var service: Service
    @OptionGroup var server: ServerOptions
    @OptionGroup var etcd: EtcdOptions
    @OptionGroup var amqp: AMQPOptions

    func run() async throws {
        let settings = Settings(environment: ProcessInfo.processInfo.environment, server: server, etcd: etcd, amqp: amqp)
        let name = service == .gateway ? "gateway" : "\(service.rawValue)-service"
        ShopLogHandler.bootstrap(service: name, settings: settings)
        let logger = Logger(label: name)
        let dataDir = try settings.dataFolder(stage: "\(ThisStage.name)/\(service.rawValue)")
        // Started by hand, a service joins the deployment its folder is in.
        let namespace = Deployment.namespace(stage: ThisStage.number, serviceDataDir: dataDir, settings: settings)
        let registry = try ServiceRegistry(settings: settings, namespace: namespace)
        func messaging() throws -> ServiceMessaging {
            try ServiceMessaging(service: service.rawValue, namespace: namespace, settings: settings, logger: logger)
        }

        let router: Router<ShopRequestContext>
        var services: [any ServiceLifecycle.Service] = []
        switch service {
        case .gateway:
            let router = try await APIGateway.build(settings: settings, dataDir: dataDir, registry: registry, logger: logger)
            try await ShopServerRunner.run(name: name, router: router, host: settings.host, port: settings.port(), settings: settings, logger: logger)
            return
        case .user:
            (router, services) = try await UserService.build(settings: settings, dataDir: dataDir, messaging: messaging(), logger: logger)
        case .product:
            router = try await ProductService.build(stage: ThisStage.number, settings: settings, dataDir: dataDir, logger: logger)
        case .order:
            (router, services) = try OrderService.build(settings: settings, dataDir: dataDir, messaging: messaging(), registry: registry, logger: logger)
        case .inventory:
            (router, services) = try InventoryService.build(settings: settings, dataDir: dataDir, messaging: messaging(), logger: logger)
        case .payment:
            (router, services) = try PaymentService.build(settings: settings, dataDir: dataDir, messaging: messaging(), logger: logger)
        case .notification:
            (router, services) = try NotificationService.build(settings: settings, dataDir: dataDir, messaging: messaging(), logger: logger)
        case .deadletter:
            (router, services) = try DeadLetterService.build(settings: settings, dataDir: dataDir, messaging: messaging(), logger: logger)
        }
        // A port the system picks; callers find it in etcd.
        try await RegisteredServer.run(
            service: service.rawValue, router: router, host: settings.host, port: settings.port ?? 0, registry: registry,
            settings: settings, services: services, logger: logger)
    }
}
