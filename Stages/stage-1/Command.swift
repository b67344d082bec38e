import ArgumentParser
import Logging
import ShopServer

/// Stage 1: the monolith. One process, one SQLite file, the whole contract.
@main
struct Stage1: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stage-1", abstract: "The shop as one process over one SQLite database.")

    @OptionGroup var server: ServerOptions

    func run() async throws {
        ShopLogHandler.bootstrap(service: "stage-1")
        let logger = Logger(label: "stage-1")
        let dataDir = try server.resolvedDataDir(stage: "stage-1")
        Console.line("stage-1 keeps its data in \(dataDir.path)")
        let router = try await Monolith.build(dataDir: dataDir, logger: logger)
        try await ShopServerRunner.run(
            name: "stage-1", router: router, host: server.resolvedHost(), port: server.resolvedPort(), logger: logger)
    }
}
