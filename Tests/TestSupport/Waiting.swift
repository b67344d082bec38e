// The one way the tests wait for something with a deadline is `Poll.until`
// (ShopClient: the client's own `decidedOrder` waits with it too). It asks
// again every few milliseconds with `Task.sleep`, which gives the thread
// back while it waits, and fails with a message naming what did not happen.
// Never a fixed sleep: a fast machine passes at once, a slow one gets the
// whole deadline.
//
// Re-exported here so that a test target that has no other use for the
// HTTP client (Redis, AMQP, Kafka, Storage) needs only `import TestSupport`:
//
//     try await Poll.until("the queue is empty", within: .seconds(10)) {
//         try await depth() == 0 ? true : nil
//     }
@_exported import enum ShopClient.Poll
