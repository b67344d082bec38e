import ArgumentParser
import Foundation
import Logging
import Observability
import ShopServer

/// Stage 1: the monolith. One process, one SQLite file, the whole contract.
@main
struct StageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: ThisStage.name, abstract: "The shop as one process over one SQLite database.")

    @OptionGroup var server: ServerOptions

    func run() async throws {
        // Flags and environment, read once, here; everything below is given them.
        let settings = Settings(environment: ProcessInfo.processInfo.environment, server: server)
        ShopLogHandler.bootstrap(service: ThisStage.name, settings: settings)
        let logger = Logger(label: ThisStage.name)
        let dataDir = try settings.dataFolder(stage: ThisStage.name)
        Console.line("\(ThisStage.name) keeps its data in \(dataDir.path)")
        let router = try await Monolith.build(settings: settings, dataDir: dataDir, logger: logger)
        // One process: it tells Prometheus where it is itself (if
        // `scripts/infra up prometheus` is watching; see ScrapeTargets).
        defer { if let folder = settings.prometheusTargets { ScrapeTargets.withdraw(ThisStage.name, from: folder) } }
        try await ShopServerRunner.run(
            name: ThisStage.name, router: router, host: settings.host, port: settings.port(), settings: settings, logger: logger,
            onListening: { port in
                guard let folder = settings.prometheusTargets else { return }
                ScrapeTargets.publish([.init(url: "http://\(settings.host):\(port)", labels: ["stage": "1", "process": "monolith"])], as: ThisStage.name, in: folder)
            })
    }
}
