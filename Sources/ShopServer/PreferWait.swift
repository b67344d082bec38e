import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

extension HTTPField.Name {
    /// RFC 7240: what the client would like (`wait=10`: answer when there
    /// is news, or after 10 seconds).
    public static let prefer = HTTPField.Name("Prefer")!
    /// RFC 7240: which of those preferences the server honoured.
    public static let preferenceApplied = HTTPField.Name("Preference-Applied")!
}

/// `Prefer: wait=N` (RFC 7240), as the contract takes it: N whole seconds
/// from 1 to 30. Anything else (no header, another preference, 0, 31, a
/// fraction, a word) is not an error: the RFC says a server ignores a
/// preference it does not honour, so the request is answered at once.
public struct PreferredWait: Sendable, Equatable {
    public static let range = 1...30
    public let seconds: Int

    public var duration: Duration { .seconds(seconds) }

    /// The value for `Preference-Applied`.
    public var applied: String { "wait=\(seconds)" }

    public init?(seconds: Int) {
        guard Self.range.contains(seconds) else { return nil }
        self.seconds = seconds
    }

    /// The first `wait` preference of every `Prefer` header: preferences
    /// are separated by commas, a preference's parameters by semicolons,
    /// names are case-insensitive and a value may be quoted.
    public init?(_ headers: HTTPFields) {
        for field in headers[values: .prefer] {
            for preference in field.split(separator: ",") {
                let token = preference.split(separator: ";", maxSplits: 1).first ?? ""
                let parts = token.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces).lowercased() == "wait" else { continue }
                var value = parts[1].trimmingCharacters(in: .whitespaces)
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                // Only the first wait counts (RFC 7240 §2: later ones are ignored).
                guard let seconds = Int(value), value.allSatisfy(\.isASCII) else { return nil }
                self.init(seconds: seconds)
                return
            }
        }
        return nil
    }
}

/// Callers waiting for news about a key (an order's decision), and the
/// code that has the news. A waiter holds no thread: it is a suspended task,
/// resumed by `post` or by its deadline, so ten thousand customers waiting
/// for their orders cost ten thousand small records, not ten thousand
/// threads.
///
/// The order of steps matters, or news is missed: take a ticket first, then
/// look (read the order), and only then wait on the ticket. A `post` that
/// lands between the look and the wait is kept by the ticket, which then
/// returns at once.
public final class WaitList: Sendable {
    private struct State {
        var waiting: [String: [UInt64: Ticket]] = [:]
        var nextId: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// How many tickets are out (for tests and metrics).
    public var count: Int { state.withLock { $0.waiting.values.reduce(0) { $0 + $1.count } } }

    /// A ticket for the next news about `key`. Give it back with `done`
    /// (`Ticket.wait` does) so that the list does not keep it.
    public func ticket(for key: String) -> Ticket {
        state.withLock { state in
            state.nextId += 1
            let ticket = Ticket(key: key, id: state.nextId, list: self)
            state.waiting[key, default: [:]][state.nextId] = ticket
            return ticket
        }
    }

    /// What `read` answers once `done` says so, or as it is after `wait`,
    /// whichever comes first. A ticket is taken before each read, so news
    /// posted between the read and the wait is not missed. News is posted
    /// by this process; the answer is read again at least every
    /// `recheck` anyway, for news made by another process (a replica
    /// sharing the database) that no one posts here.
    public func read<T>(
        _ key: String, waitingUpTo wait: Duration, recheck: Duration = .seconds(1),
        until done: (T) -> Bool, _ read: () async throws -> T
    ) async throws -> T {
        let deadline = ContinuousClock.now + wait
        while true {
            let ticket = ticket(for: key)
            let value: T
            do { value = try await read() } catch {
                ticket.cancel()
                throw error
            }
            let left = deadline - ContinuousClock.now
            guard !done(value), left > .zero else {
                ticket.cancel()
                return value
            }
            await ticket.wait(upTo: min(left, recheck))
            try Task.checkCancellation()
        }
    }

    /// There is news about `key`: every ticket for it is resumed (or, if
    /// not yet waited on, returns at once when it is).
    public func post(_ key: String) {
        let tickets = state.withLock { $0.waiting.removeValue(forKey: key) }
        for ticket in tickets?.values ?? [:].values { ticket.fire() }
    }

    fileprivate func remove(_ ticket: Ticket) {
        state.withLock { state in
            state.waiting[ticket.key]?.removeValue(forKey: ticket.id)
            if state.waiting[ticket.key]?.isEmpty == true { state.waiting.removeValue(forKey: ticket.key) }
        }
    }

    public final class Ticket: Sendable {
        private enum Phase {
            case idle
            case waiting(CheckedContinuation<Void, Never>)
            case fired
        }

        let key: String
        let id: UInt64
        private let list: WaitList
        private let phase = Mutex(Phase.idle)

        fileprivate init(key: String, id: UInt64, list: WaitList) {
            self.key = key
            self.id = id
            self.list = list
        }

        /// Returns when news is posted for the key, after `timeout`, or when
        /// the task is cancelled (the client went away), whichever is first.
        /// Either way the ticket is given back.
        public func wait(upTo timeout: Duration) async {
            defer { list.remove(self) }
            // The deadline is a sleeping task, not a thread: it fires the
            // ticket as a post would.
            let deadline = Task { [weak self] in
                try? await Task.sleep(for: timeout)
                self?.fire()
            }
            defer { deadline.cancel() }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let resumeNow = phase.withLock { phase -> Bool in
                        if case .fired = phase { return true }
                        phase = .waiting(continuation)
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
            } onCancel: {
                fire()
            }
        }

        /// Gives the ticket back without waiting (the news was already there).
        public func cancel() { list.remove(self) }

        func fire() {
            let continuation = phase.withLock { phase -> CheckedContinuation<Void, Never>? in
                defer { phase = .fired }
                if case .waiting(let continuation) = phase { return continuation }
                return nil
            }
            continuation?.resume()
        }
    }
}
