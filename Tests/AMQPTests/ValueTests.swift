import AMQP
import Foundation
import Testing

/// No broker needed: configuration parsing and argument tables.
@Suite("Values and configuration")
struct ValueTests {
    @Test func parsesURLWithDefaults() throws {
        let c = try AMQPConfiguration(url: "amqp://guest:guest@127.0.0.1:5672/")
        #expect(c.host == "127.0.0.1")
        #expect(c.port == 5672)
        #expect(c.vhost == "/")
        #expect(c.user == "guest")
        #expect(c.password == "guest")
        #expect(c.address == "127.0.0.1:5672")
    }

    @Test func parsesVhostAndPort() throws {
        let c = try AMQPConfiguration(url: "amqp://shop:s3cret@broker.local:5673/orders%2Fv2")
        #expect(c.host == "broker.local")
        #expect(c.port == 5673)
        #expect(c.vhost == "orders/v2")
        #expect(c.user == "shop")
        #expect(c.password == "s3cret")
    }

    @Test func rejectsOtherSchemes() {
        #expect(throws: AMQPError.invalidURL("http://x")) { try AMQPConfiguration(url: "http://x") }
    }

    @Test func queueArgumentsTable() {
        let arguments = QueueArguments(
            deadLetterExchange: "dlx", deadLetterRoutingKey: "orders.dead", messageTTL: .milliseconds(1500),
            maxLength: 10, extra: ["x-queue-type": "classic"])
        #expect(
            arguments.table == [
                "x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "orders.dead",
                "x-message-ttl": 1500, "x-max-length": 10, "x-queue-type": "classic",
            ])
    }

    @Test func errorMessagesNameTheAddress() {
        let error = AMQPError.cannotConnect(address: "127.0.0.1:1", reason: "refused")
        #expect("\(error)".contains("127.0.0.1:1"))
        #expect(AMQPError.channelClosed(code: 404, text: "NOT_FOUND").replyCode == 404)
    }
}
