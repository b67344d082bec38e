import Synchronization

/// Work done side by side, except where order matters: per key (an order's
/// id), a line. `join` takes a place at the back of its key's line, in the
/// order the work arrived; `wait` returns when every place before it has
/// left. Work on different keys never waits for each other.
///
/// ```swift
/// let lines = KeyedLines()
/// for await message in messages {
///     let turn = lines.join(message.orderId)   // in arrival order
///     group.addTask {
///         await turn.wait()                    // the order's earlier messages are done
///         await handle(message)
///         turn.leave()                         // always, or the line stops
///     }
/// }
/// ```
///
/// Both consumers use it: RabbitMQ's (`ConsumerService`) and Kafka's
/// (`StreamConsumer`), which hand a queue's or a partition's messages to
/// handlers side by side so that their transactions share commits.
public final class KeyedLines: Sendable {
    private let lines = Mutex<[String: [Turn]]>([:])

    public init() {}

    public func join(_ key: String) -> Turn {
        lines.withLock { lines in
            let turn = Turn(key: key, lines: self)
            if lines[key] == nil {
                lines[key] = [turn]
                turn.open()
            } else {
                lines[key]!.append(turn)
            }
            return turn
        }
    }

    fileprivate func leave(_ turn: Turn) {
        let next = lines.withLock { lines -> Turn? in
            guard var line = lines[turn.key], line.first === turn else { return nil }
            line.removeFirst()
            lines[turn.key] = line.isEmpty ? nil : line
            return line.first
        }
        next?.open()
    }

    public final class Turn: Sendable {
        private enum Phase {
            case closed
            case waiting(CheckedContinuation<Void, Never>)
            case open
        }

        public let key: String
        private let lines: KeyedLines
        private let phase = Mutex(Phase.closed)

        fileprivate init(key: String, lines: KeyedLines) {
            self.key = key
            self.lines = lines
        }

        public func wait() async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = phase.withLock { phase -> Bool in
                    if case .open = phase { return true }
                    phase = .waiting(continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        }

        public func leave() { lines.leave(self) }

        fileprivate func open() {
            let continuation = phase.withLock { phase -> CheckedContinuation<Void, Never>? in
                defer { phase = .open }
                if case .waiting(let continuation) = phase { return continuation }
                return nil
            }
            continuation?.resume()
        }
    }
}
