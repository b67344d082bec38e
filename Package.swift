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
        .executable(name: "loadgen", targets: ["LoadGen"]),
        .executable(name: "redis-bench", targets: ["RedisBench"]),
        .executable(name: "amqp-bench", targets: ["AMQPBench"]),
        .executable(name: "kafka-bench", targets: ["KafkaBench"]),
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

        /// HTTP plumbing every stage's entry point uses: the contract's error
        /// body, request ids, structured logs, bearer tokens, command-line options.
        .target(
            name: "ShopServer",
            dependencies: [
                "Common", "Auth",
                .product(name: "Hummingbird", package: "hummingbird"),
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
            dependencies: ["Common", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),

        // MARK: Broker clients (C libraries from Debian, Swift over them)

        /// A thread of its own for a C client's blocking calls (Redis, Kafka).
        .target(name: "BlockingThread", swiftSettings: swiftSettings),

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

        /// librabbitmq (rabbitmq-c 0.11, Debian's librabbitmq-dev) as a Clang module.
        .systemLibrary(name: "CRabbitMQ", pkgConfig: "librabbitmq", providers: [.apt(["librabbitmq-dev"])]),
        /// AMQP 0-9-1 over librabbitmq: one I/O thread per connection, publisher
        /// confirms, consumers as async sequences, reconnection. Stage 4 stands on it.
        .target(
            name: "AMQP",
            dependencies: [
                "CRabbitMQ",
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
                "Common",
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
                "Common", "Auth", "ShopServer", "Storage",
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
                "Common", "ShopClient", "ShopServer",
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
                "AMQP", "Auth", "Common", "ShopServer", "Storage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),

        /// The API gateway of stage 3 on: routing by a layout, the edge token
        /// check, rate limiting, composition, `/admin/services`.
        .target(
            name: "Gateway",
            dependencies: [
                "Common", "Auth", "ShopServer", "ShopClient", "Discovery",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        /// Starting programs with posix_spawn and waiting for them on threads
        /// of their own: the supervisor's children, and what the tests run.
        .target(name: "Spawning", swiftSettings: swiftSettings),

        /// Runs a stage's processes as children of one command.
        .target(name: "Supervision", dependencies: ["Common", "Auth", "ShopServer", "Spawning"], swiftSettings: swiftSettings),

        // MARK: Stage 1: the monolith

        .executableTarget(
            name: "Stage1",
            dependencies: [
                "Common", "Auth", "ShopServer", "Storage", "Accounts", "Catalog", "Checkout",
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
                "Common", "Auth", "ShopServer", "ShopClient", "Storage", "Accounts", "Catalog", "Checkout", "Supervision",
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
        .testTarget(name: "StorageTests", dependencies: ["Storage", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")], swiftSettings: swiftSettings),
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
                "Discovery", "ShopServer", "Stage1", "Stage2", "Stage3", "Stage4", "TestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        /// Every shipped migration's text is frozen (shipped-migrations.sql),
        /// and the follow-up migrations upgrade old databases.
        .testTarget(
            name: "SchemaTests",
            dependencies: ["Accounts", "Catalog", "Checkout", "Messaging", "Storage", "Stage4", .product(name: "GRDB", package: "GRDB.swift")],
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
            dependencies: ["Common", "ShopClient", "Storage", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        /// The outbox, the inbox and the topology's names, against SQLite only.
        .testTarget(
            name: "MessagingTests",
            dependencies: ["Messaging", "Storage", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        /// Against the Tansu broker scripts/test starts, with confluent-kafka as the peer.
        .testTarget(
            name: "KafkaTests",
            dependencies: [
                "Kafka", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        /// Against a real redis-server each suite starts, with redis-py as the peer.
        .testTarget(name: "RedisTests", dependencies: ["Redis", "TestSupport"], swiftSettings: swiftSettings),
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
