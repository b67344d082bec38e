// swift-tools-version:6.2
//
// One package, eight stages. Each stage is an executable target under
// `Stages/stage-N` (run it with `swift run stage-N`); everything that does not
// change between stages lives once under `Sources/` and is imported.
//
// Dependencies are chosen per target on purpose: `swift run stage-1` builds
// only what stage 1 needs (Hummingbird, GRDB, swift-argument-parser, and
// swift-crypto for the tokens' HMAC). On Linux swift-crypto compiles its own
// copy of BoringSSL, the one C library of any size in stage 1's build; on
// macOS it calls CryptoKit instead. docs/benchmarks.md has what that costs a
// learner's first `swift run stage-1`.

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "shop-migration",
    // macOS 15 for `Synchronization.Mutex`, the one lock type the package
    // uses. (Linux has no such floor.)
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "stage-1", targets: ["Stage1"]),
        .executable(name: "stage-2", targets: ["Stage2"]),
        .executable(name: "stage-3", targets: ["Stage3"]),
        .executable(name: "stage-4", targets: ["Stage4"]),
        .executable(name: "stage-5", targets: ["Stage5"]),
        .executable(name: "stage-6", targets: ["Stage6"]),
        .executable(name: "stage-7", targets: ["Stage7"]),
        .executable(name: "stage-8", targets: ["Stage8"]),
        .executable(name: "loadgen", targets: ["LoadGen"]),
        .executable(name: "redis-bench", targets: ["RedisBench"]),
        .executable(name: "amqp-bench", targets: ["AMQPBench"]),
        .executable(name: "kafka-bench", targets: ["KafkaBench"]),
        .executable(name: "streams-bench", targets: ["StreamsBench"]),
        .executable(name: "eventstore-bench", targets: ["EventStoreBench"]),
        .executable(name: "jobs-bench", targets: ["JobsBench"]),
        .executable(name: "jobs", targets: ["JobsCLI"]),
    ],
    dependencies: [
        // Hummingbird's default traits pull in swift-configuration, which no
        // stage uses; leaving them off keeps the first build shorter.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // SHA-256, HMAC and SHA-1 from a maintained, audited library rather
        // than our own: hand-written cryptography is easy to get subtly wrong.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // Measuring: swift-metrics is the API the code records through (and
        // Hummingbird already depends on), swift-prometheus the backend that
        // keeps the figures and writes them for Prometheus.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // One trace id across every hop: the tracing API (Hummingbird depends
        // on it already, so it adds nothing to a build), with our own W3C
        // propagation and spans in Observability.
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
    ],
    targets: [
        // MARK: Shared modules

        /// The domain every stage shares: money, validation, test cards, the
        /// order state machine, pricing, the contract's JSON shapes and errors.
        /// Pure Swift: no I/O, no framework.
        .target(name: "Common", swiftSettings: swiftSettings),

        /// Password hashing (bcrypt), signed tokens (JWT, HS256) and the
        /// SHA-256 fingerprints other modules derive from text: the shop's
        /// hashing lives here, on swift-crypto, so Common can stay pure Swift.
        .target(
            name: "Auth",
            dependencies: [
                "Common",
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        /// What every process measures, through swift-metrics, kept by
        /// swift-prometheus for `GET /metrics`.
        .target(
            name: "Observability",
            dependencies: [
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        /// HTTP plumbing every stage's entry point uses: the contract's error
        /// body, request ids, structured logs, bearer tokens, command-line
        /// options, `/metrics`.
        .target(
            name: "ShopServer",
            dependencies: [
                "Common", "Auth", "Observability",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The source document (docs/openapi.yaml) stays out of the bundle;
            // each stage serves its own, written from it by scripts/openapi-stages.
            exclude: ["Resources/openapi.yaml"],
            resources: [.copy("Resources/stages")],
            swiftSettings: swiftSettings
        ),

        /// SQLite through GRDB, opened and queried the same way by every service.
        .target(
            name: "Storage",
            dependencies: [
                "Common", .product(name: "GRDB", package: "GRDB.swift"),
                // Only to carry the caller's trace into the writer's thread.
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Broker clients (C libraries from Debian, Swift over them)

        /// A thread of its own for a C client's blocking calls (Redis, Kafka).
        .target(name: "BlockingThread", swiftSettings: swiftSettings),
        /// Work side by side, one key's in arrival order: both brokers'
        /// consumers (RabbitMQ's queues, Kafka's partitions) share it.
        .target(name: "OrderedWork", swiftSettings: swiftSettings),

        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        /// Redis over hiredis: commands as argument vectors, pipelining, Lua
        /// scripts, blocking pops, reconnection. Stage 5's job queue stands on it.
        .target(
            name: "Redis",
            dependencies: [
                "CHiredis", "BlockingThread",
                .product(name: "Logging", package: "swift-log"),
                // Insecure.SHA1: Redis names cached scripts by their SHA-1.
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        /// Job queues over Redis in BullMQ's layout (stage 5 on): queues,
        /// workers, schedulers, the outbox destination that adds jobs, and
        /// the administrator's routes (`/admin/jobs`).
        .target(
            name: "Jobs",
            dependencies: [
                "Redis", "Messaging", "Auth", "Common", "ShopServer", "Observability",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        /// librabbitmq (rabbitmq-c 0.11, Debian's librabbitmq-dev) as a Clang module.
        .systemLibrary(name: "CRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        /// AMQP 0-9-1 over librabbitmq: one I/O thread per connection, publisher
        /// confirms, consumers as async sequences, reconnection. Stage 4 stands on it.
        .target(
            name: "AMQP",
            dependencies: [
                "CRabbitMQ", "OrderedWork",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        /// librdkafka as a Clang module: compiled against Debian's header, run
        /// against the newer library scripts/setup provides (see Kafka's
        /// RdKafkaLibrary for why).
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        /// Kafka over librdkafka: idempotent producer with delivery reports,
        /// consumer groups with manual commits and replay, topic creation.
        /// Stage 7 stands on it.
        .target(
            name: "Kafka",
            dependencies: [
                "CRdKafka", "BlockingThread",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        /// A small HTTP/1.1 client over SwiftNIO with keep-alive and timeouts,
        /// plus a typed client of the contract. Used by the tests, the load
        /// generator and (from stage 2) by one service calling another.
        .target(
            name: "ShopClient",
            dependencies: [
                "Common", "Observability",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        /// The order side of the shop (orders, stock, payments, notifications,
        /// invoices, sales report) over one database, in-process. Stages 1 to 3
        /// share it; stage 4 splits it into services.
        .target(
            name: "Checkout",
            dependencies: [
                "Common", "Auth", "ShopServer", "Storage", "Observability",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),

        /// Accounts (the users table) and the user service's own API.
        .target(
            name: "Accounts",
            dependencies: ["Common", "Auth", "ShopServer", "Storage", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        /// The catalogue (the products table) and the product service's own API.
        .target(
            name: "Catalog",
            dependencies: ["Common", "Auth", "ShopServer", "Storage", .product(name: "Hummingbird", package: "hummingbird"), .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),

        /// Service discovery in etcd (over its HTTP/JSON gateway): registration
        /// under a lease, a cached directory, a client balanced over instances.
        .target(
            name: "Discovery",
            dependencies: [
                "Common", "ShopClient", "ShopServer", "Observability",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        /// Messaging over RabbitMQ for stage 4 on: the topology (work queues,
        /// retry ladders, dead letters), the transactional outbox and its relay,
        /// the inbox of processed message ids, the consumer, the dead-letter office.
        .target(
            name: "Messaging",
            dependencies: [
                "AMQP", "Auth", "Common", "ShopServer", "Storage", "Observability",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),

        /// Domain events for stage 6 on: the CloudEvents 1.0 envelope, the
        /// catalogue of JSON Schemas per event name and version, the
        /// validator consumers check data with, and upcasting of old versions.
        /// Mechanism only: which events exist is each stage's policy.
        .target(
            name: "Events",
            dependencies: [
                "Messaging", "Common", "ShopServer", "Storage", "Observability",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            // The shop's event catalogue: a JSON Schema per event and version
            // (docs/events) and an AsyncAPI document per stage
            // (docs/asyncapi/stage-N.yaml), read and served by a running stage.
            resources: [.copy("Resources/events"), .copy("Resources/asyncapi")],
            swiftSettings: swiftSettings
        ),

        /// Event streaming for stage 7 on: domain events as Kafka records
        /// (the CloudEvents Kafka binding), the outbox's Kafka destination,
        /// group consumers that commit after their transaction and set
        /// poison aside in a dead-letter topic, read models that rebuild
        /// from offset 0 beside the live one, and lag read from the log.
        .target(
            name: "Streams",
            dependencies: [
                "Kafka", "Events", "Messaging", "Storage", "ShopServer", "Common", "Observability", "OrderedWork",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        /// Event sourcing for stage 8: an append-only event store in SQLite
        /// (streams with gapless versions, optimistic concurrency, a global
        /// order, group commit, upcasting on read, snapshots, checkpoints)
        /// and aggregates as pure `decide` and `evolve` functions over it.
        .target(
            name: "EventStore",
            dependencies: ["Storage", "Observability", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),

        /// The API gateway of stage 3 on: routing by a layout, the edge token
        /// check, rate limiting, composition, `/admin/services`.
        .target(
            name: "Gateway",
            dependencies: [
                "Common", "Auth", "ShopServer", "ShopClient", "Discovery", "Observability",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        /// Email as a mail reader sees it: RFC 5322 messages with text and
        /// HTML parts, delivered once into a Maildir. Foundation only.
        .target(name: "Mail", swiftSettings: swiftSettings),

        /// Starting programs with posix_spawn and waiting for them on threads
        /// of their own: the supervisor's children, and what the tests run.
        .target(name: "Spawning", swiftSettings: swiftSettings),

        /// Runs a stage's processes as children of one command.
        .target(name: "Supervision", dependencies: ["Common", "Auth", "ShopServer", "Spawning", "Discovery", "Observability"], swiftSettings: swiftSettings),

        // MARK: Stage 1: the monolith

        .executableTarget(
            name: "Stage1",
            dependencies: [
                "Common", "Auth", "ShopServer", "Storage", "Accounts", "Catalog", "Checkout", "Observability",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Stages/stage-1",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),

        // MARK: Stage 2: user and product extracted (strangler fig)

        .executableTarget(
            name: "Stage2",
            dependencies: [
                "Common", "Auth", "ShopServer", "ShopClient", "Storage", "Accounts", "Catalog", "Checkout", "Supervision", "Observability",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Stages/stage-2",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),

        // MARK: Stage 3: gateway and service discovery

        .executableTarget(
            name: "Stage3",
            dependencies: [
                "Common", "Auth", "ShopServer", "ShopClient", "Storage", "Accounts", "Catalog", "Checkout", "Supervision", "Discovery", "Gateway",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Stages/stage-3",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),

        // MARK: Stage 4: RabbitMQ, outbox, retries, dead letters

        .executableTarget(
            name: "Stage4",
            dependencies: [
                "Common", "Auth", "ShopServer", "ShopClient", "Storage", "Accounts", "Catalog", "Checkout", "Supervision",
                "Discovery", "Gateway", "Messaging", "AMQP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Stages/stage-4",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),

        // MARK: Stage 5: background jobs on Redis (BullMQ's layout)

        .executableTarget(
            name: "Stage5",
            dependencies: [
                "Common", "Auth", "ShopServer", "ShopClient", "Storage", "Accounts", "Catalog", "Checkout", "Supervision",
                "Discovery", "Gateway", "Messaging", "AMQP", "Jobs", "Redis", "Mail",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Stages/stage-5",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),

        // MARK: Stage 6: domain events, a choreographed saga

        .executableTarget(
            name: "Stage6",
            dependencies: [
                "Common", "Auth", "ShopServer", "ShopClient", "Storage", "Accounts", "Catalog", "Checkout", "Supervision",
                "Discovery", "Gateway", "Messaging", "AMQP", "Jobs", "Redis", "Mail", "Events",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Stages/stage-6",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),

        // MARK: Stage 7: Kafka, the events as a durable log

        .executableTarget(
            name: "Stage7",
            dependencies: [
                "Common", "Auth", "ShopServer", "ShopClient", "Storage", "Accounts", "Catalog", "Checkout", "Supervision",
                "Discovery", "Gateway", "Messaging", "AMQP", "Jobs", "Redis", "Mail", "Events", "Kafka", "Streams",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Stages/stage-7",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),

        // MARK: Stage 8: CQRS and event sourcing

        .executableTarget(
            name: "Stage8",
            dependencies: [
                "Common", "Auth", "ShopServer", "ShopClient", "Storage", "Accounts", "Catalog", "Checkout", "Supervision",
                "Discovery", "Gateway", "Messaging", "AMQP", "Jobs", "Redis", "Mail", "Events", "Kafka", "Streams", "EventStore", "Observability",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            path: "Stages/stage-8",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),

        // MARK: Tools

        /// `swift run -c release loadgen`: concurrent customers against a running stage.
        .executableTarget(
            name: "LoadGen",
            dependencies: [
                "Common", "ShopClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),

        /// `swift run -c release redis-bench`: the Redis client's figures.
        .executableTarget(name: "RedisBench", dependencies: ["Redis"], swiftSettings: swiftSettings),

        /// `swift run -c release amqp-bench`: the AMQP client's figures beside pika's.
        .executableTarget(name: "AMQPBench", dependencies: ["AMQP"], swiftSettings: swiftSettings),

        /// `swift run -c release kafka-bench`: the Kafka client's figures beside confluent-kafka's.
        .executableTarget(name: "KafkaBench", dependencies: ["Kafka"], swiftSettings: swiftSettings),

        /// `swift run -c release streams-bench`: stage 7's relay and read-model replay beside the raw producer.
        .executableTarget(
            name: "StreamsBench",
            dependencies: [
                "Streams", "Kafka", "Events", "Messaging", "Storage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),

        /// `swift run -c release eventstore-bench`: stage 8's event store (appends, loads, reads) beside plain SQLite.
        .executableTarget(
            name: "EventStoreBench",
            dependencies: ["EventStore", "Storage", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),

        /// `swift run -c release jobs-bench`: the job queue's figures beside python bullmq's worker.
        .executableTarget(name: "JobsBench", dependencies: ["Jobs", "Redis", "Spawning", .product(name: "Logging", package: "swift-log")], swiftSettings: swiftSettings),

        /// `swift run jobs …`: look into and work any BullMQ queue.
        .executableTarget(
            name: "JobsCLI",
            dependencies: [
                "Jobs", "Redis", "Messaging",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Tests

        /// Shared fixtures: the one way to run a program (a stage, a Python
        /// peer, scripts/infra) and the one way to wait with a deadline.
        .target(
            name: "TestSupport",
            dependencies: ["Common", "ShopClient", "Spawning"],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "CommonTests", dependencies: ["Common"], swiftSettings: swiftSettings),
        .testTarget(name: "AuthTests", dependencies: ["Auth"], swiftSettings: swiftSettings),
        /// Discovery's settings and its DNS mode (etcd's is proven by the
        /// stages' own tests, against a real etcd).
        .testTarget(name: "DiscoveryTests", dependencies: ["Discovery", "ShopServer"], swiftSettings: swiftSettings),
        .testTarget(
            name: "StorageTests",
            dependencies: [
                "Storage", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings),
        /// Stage 1's own acceptance tests (crash recovery), against the real executable.
        .testTarget(
            name: "Stage1Tests",
            dependencies: ["Common", "ShopClient", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        /// Each stage's entry point serves exactly what its API reference
        /// (docs/openapi/stage-N.yaml) documents: routes read from the routers.
        .testTarget(
            name: "ContractTests",
            dependencies: [
                "Discovery", "ShopServer", "Stage1", "Stage2", "Stage3", "Stage4", "Stage5", "Stage6", "Stage7", "Stage8", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        /// Every shipped migration's text is frozen (shipped-migrations.sql),
        /// and the follow-up migrations upgrade old databases.
        .testTarget(
            name: "SchemaTests",
            dependencies: ["Accounts", "Catalog", "Checkout", "Messaging", "Storage", "Stage4", "Stage5", "Stage6", "Stage7", "Stage8", "Events", "Streams", .product(name: "GRDB", package: "GRDB.swift")],
            exclude: ["shipped-migrations.sql"],
            swiftSettings: swiftSettings
        ),
        /// Against the real RabbitMQ that scripts/test starts, with pika as the peer.
        .testTarget(
            name: "AMQPTests",
            dependencies: [
                "AMQP", "TestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        /// Stage 2's own acceptance tests: separate databases, a service down and back.
        .testTarget(
            name: "Stage2Tests",
            dependencies: ["Common", "ShopClient", "TestSupport", "Storage", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        /// Stage 3's own acceptance tests, against real etcd: kill -9 under
        /// traffic, rate limiting, the composed summary, forged identities.
        .testTarget(
            name: "Stage3Tests",
            dependencies: ["Common", "ShopClient", "TestSupport"],
            swiftSettings: swiftSettings
        ),
        /// Stage 4's own acceptance tests: crashes, duplicates and poison sent
        /// with pika, dead letters and replay, a RabbitMQ restart.
        .testTarget(
            name: "Stage4Tests",
            dependencies: ["Common", "ShopClient", "TestSupport", "AsyncStageSupport"],
            swiftSettings: swiftSettings
        ),
        /// The metrics mechanism alone: handles kept once made, and a scrape
        /// that does not wait for a hook stuck on a broker that is away.
        .testTarget(
            name: "ObservabilityTests",
            dependencies: [
                "Observability",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        /// Every process's /metrics read by prometheus_client's parser and
        /// by a real Prometheus, at stages 1, 4 and 8, after known orders.
        .testTarget(
            name: "MetricsTests",
            dependencies: ["Common", "ShopClient", "TestSupport", "AsyncStageSupport"],
            swiftSettings: swiftSettings
        ),
        /// What the asynchronous stages' tests share: a deployment of a
        /// test's own, traffic with a mix of cards, and the check that
        /// every effect applied once.
        .target(
            name: "AsyncStageSupport",
            dependencies: ["Common", "ShopClient", "Storage", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            path: "Tests/AsyncStageSupport",
            swiftSettings: swiftSettings
        ),
        /// Stage 6 against real RabbitMQ and processes: every event checked with
        /// python's jsonschema, the causal chain, the cancel race, duplicates,
        /// a v1 event upcast, each service killed; the catalogue cannot drift.
        .testTarget(
            name: "Stage6Tests",
            dependencies: ["Common", "ShopClient", "TestSupport", "AsyncStageSupport", "Events", "Stage6"],
            swiftSettings: swiftSettings
        ),
        /// Stage 7 against the real durable Kafka broker: confluent-kafka
        /// reads the topics and publishes into them, consumers are killed,
        /// the broker restarts, read models are replayed.
        .testTarget(
            name: "Stage7Tests",
            dependencies: ["Common", "ShopClient", "TestSupport", "AsyncStageSupport", "Events", "Stage7"],
            swiftSettings: swiftSettings
        ),
        /// Stage 8 against the real broker and processes: the order's rules
        /// as plain functions, concurrent commands on one order, a rebuild
        /// that matches and one that refuses a difference, the query
        /// service killed mid-rebuild, time travel, an old event upcast from
        /// the store, confluent-kafka reading the order store's log.
        .testTarget(
            name: "Stage8Tests",
            dependencies: ["Common", "ShopClient", "TestSupport", "AsyncStageSupport", "Events", "EventStore", "Stage8",
                           .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        /// Stage 5 against real Redis, RabbitMQ and processes: workers killed
        /// mid-job, the order deadline, /admin/jobs and a retry, a Redis restart.
        .testTarget(
            name: "Stage5Tests",
            dependencies: ["Common", "ShopClient", "TestSupport", "AsyncStageSupport", "Mail", "Messaging"],
            swiftSettings: swiftSettings
        ),
        /// Emails as Python's email package parses them; the Maildir's deliver-once.
        .testTarget(name: "MailTests", dependencies: ["Mail", "TestSupport"], swiftSettings: swiftSettings),
        /// The envelope, the schema validator (against python jsonschema) and
        /// the catalogue's reading, checking and upcasting, without a broker.
        /// Sources/Streams without a broker: records, the rebuild's switch, the monitor.
        .testTarget(
            name: "StreamsTests",
            dependencies: ["Streams", "Kafka", "Messaging", "Storage", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        /// The event store and aggregates, against SQLite.
        .testTarget(
            name: "EventStoreTests",
            dependencies: ["EventStore", "Storage", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "EventsTests", dependencies: ["Events", "Messaging", "Observability", "TestSupport"], swiftSettings: swiftSettings),
        /// The outbox, the inbox and the topology's names, against SQLite only.
        .testTarget(
            name: "MessagingTests",
            dependencies: [
                "Messaging", "Storage", "Observability", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        /// Against the Tansu broker scripts/test starts, with confluent-kafka as the
        /// peer; and Streams' consumer (side by side) on it.
        .testTarget(
            name: "KafkaTests",
            dependencies: [
                "Kafka", "Streams", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        /// Against a real redis-server each suite starts, with redis-py as the peer.
        .testTarget(name: "RedisTests", dependencies: ["Redis", "RedisTestSupport", "TestSupport"], swiftSettings: swiftSettings),
        /// A redis-server of a suite's own, for the tests that need Redis.
        .target(
            name: "RedisTestSupport",
            dependencies: ["Redis", "TestSupport"],
            path: "Tests/RedisTestSupport",
            swiftSettings: swiftSettings
        ),
        /// The job queue against a real redis-server, with python bullmq as the peer.
        .testTarget(
            name: "JobsTests",
            dependencies: [
                "Jobs", "Redis", "Messaging", "RedisTestSupport", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        /// The HTTP client against a real server the tests start in-process
        /// (SwiftNIO): the body cap, keep-alive, timeouts.
        .testTarget(
            name: "ShopClientTests",
            dependencies: [
                "ShopClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        /// The characterization suite: black box over HTTP, one suite for every stage.
        .testTarget(
            name: "CharacterizationTests",
            dependencies: ["Common", "ShopClient", "TestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
