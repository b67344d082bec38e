import Foundation

/// A value guarded by a lock.
///
/// The package's own `Mutex` (Synchronization) would do, but it needs macOS 15
/// and the main package still declares macOS 14; `NSLock` exists everywhere.
/// The class is `@unchecked Sendable` because the lock, not the compiler,
/// makes access safe: every read and write goes through `withLock`.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
