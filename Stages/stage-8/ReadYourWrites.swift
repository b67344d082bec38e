import Foundation
import HTTPTypes
import Hummingbird
import ShopServer
import Synchronization

// Read your own writes, across the split between the write side and the
// query side. A command's answer comes from the event store; a read comes
// from a view that a projection updates a moment later. Without care, a
// customer who has just placed an order could ask for it and hear 404.
//
// The way chosen here, a *consistency token*:
//   1. the order service answers every command with the store position of
//      the events it appended (`Shop-Position: 1234`);
//   2. the gateway remembers, per user, the highest position their
//      commands answered (`WriteMarks`), and passes it on with that user's
//      next reads (`Shop-Min-Position: 1234`); a client may also send the
//      header itself;
//   3. the query service, before answering, waits until its views have
//      applied that position (at most `QueryService.freshnessWait`), so
//      the read includes the write.
// Everyone else's reads are not held up: only a client that has just
// written waits, and only for its own write. The costs: the gateway keeps
// a small map (lost when it restarts: a read right after a restart may
// then be stale), and during a rebuild the live views stand still, so such
// a read waits its bound and answers what the views have.

enum Consistency {
    /// The response header of a command: the store position its events reached.
    static let position = HTTPField.Name("Shop-Position")!
    /// The request header of a read: answer from views at least this fresh.
    static let minPosition = HTTPField.Name("Shop-Min-Position")!
}

/// Where a command, deep in the order service, leaves the position of its
/// events for the response: a box the middleware below puts in the
/// request's task.
final class WritePosition: Sendable {
    @TaskLocal static var box: WritePosition?
    private let value = Mutex<Int64?>(nil)

    /// Called by a command that appended: the highest position wins.
    static func record(_ position: Int64) {
        box?.value.withLock { $0 = max($0 ?? 0, position) }
    }

    var recorded: Int64? { value.withLock { $0 } }
}

/// Adds `Shop-Position` to the answer of a request whose command appended.
struct WritePositionMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let box = WritePosition()
        var response = try await WritePosition.$box.withValue(box) { try await next(request, context) }
        if let position = box.recorded { response.headers[Consistency.position] = String(position) }
        return response
    }
}

/// The gateway's memory of each user's last write (step 2 above).
final class WriteMarks: Sendable {
    private let marks = Mutex<[String: Int64]>([:])

    func remember(_ response: Response, for userId: String) {
        guard let value = response.headers[Consistency.position], let position = Int64(value) else { return }
        marks.withLock { marks in
            marks[userId] = max(marks[userId] ?? 0, position)
            // Kept small: a mark only matters for the seconds until the views
            // pass it, so when there are many, the oldest half goes.
            if marks.count > 10_000 {
                let cut = marks.values.sorted()[marks.count / 2]
                marks = marks.filter { $0.value > cut }
            }
        }
    }

    /// The headers a read by `userId` carries: the client's own token, or
    /// the gateway's memory of their last write, whichever is higher.
    func headers(for userId: String, request: Request) -> [(String, String)] {
        let asked = request.headers[Consistency.minPosition].flatMap { Int64($0) } ?? 0
        let remembered = marks.withLock { $0[userId] } ?? 0
        let position = max(asked, remembered)
        return position > 0 ? [(Consistency.minPosition.rawName, String(position))] : []
    }
}
