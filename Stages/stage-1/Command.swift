import ArgumentParser
import Foundation
import Logging
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
        try await ShopServerRunner.run(
            name: ThisStage.name, router: router, host: settings.host, port: settings.port(), settings: settings, logger: logger)
    }
}
