import Dispatch

/// Runs a blocking function on a Dispatch queue and awaits its result, so a
/// slow synchronous call (bcrypt, a C library) does not occupy one of the
/// few threads that run all of Swift's async tasks.
public enum BlockingWork {
    private static let queue = DispatchQueue(label: "shop.blocking-work", attributes: .concurrent)

    public static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: work()) }
        }
    }
}
