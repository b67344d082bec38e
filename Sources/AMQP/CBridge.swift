internal import CRabbitMQ
import Foundation

// Conversions between the C library's structs and the Swift value types.
// Nothing here is public: the C types never appear in the module's API.

/// Owns the C memory that one outgoing call needs (strings, tables,
/// properties) and frees it all at once when the call is done.
///
/// librabbitmq only reads these buffers during the call that receives them
/// (it encodes the frame into its own buffer right away), so their lifetime
/// is exactly "until the C function returns": keep the arena alive around the
/// call with `withExtendedLifetime` and let `deinit` free everything.
final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit {
        for block in blocks { free(block) }
    }

    private func allocate(_ size: Int) -> UnsafeMutableRawPointer {
        // malloc(0) may return nil; one byte keeps the code paths simple.
        guard let block = malloc(max(size, 1)) else { fatalError("out of memory") }
        blocks.append(block)
        return block
    }

    func bytes(_ string: String) -> amqp_bytes_t {
        var copy = string
        return copy.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }
    }

    func bytes(_ buffer: UnsafeRawBufferPointer) -> amqp_bytes_t {
        let block = allocate(buffer.count)
        if let base = buffer.baseAddress, buffer.count > 0 {
            block.copyMemory(from: base, byteCount: buffer.count)
        }
        return amqp_bytes_t(len: buffer.count, bytes: block)
    }

    func table(_ table: AMQPTable) -> amqp_table_t {
        if table.isEmpty { return amqp_table_t(num_entries: 0, entries: nil) }
        let entries = allocate(MemoryLayout<amqp_table_entry_t>.stride * table.count)
            .bindMemory(to: amqp_table_entry_t.self, capacity: table.count)
        // Sorted keys: the same table always encodes to the same bytes.
        for (index, key) in table.keys.sorted().enumerated() {
            entries[index] = amqp_table_entry_t(key: bytes(key), value: field(table[key]!))
        }
        return amqp_table_t(num_entries: Int32(table.count), entries: entries)
    }

    func field(_ value: AMQPValue) -> amqp_field_value_t {
        var result = amqp_field_value_t()
        switch value {
        case .bool(let b):
            result.kind = kind("t")
            result.value.boolean = b ? 1 : 0
        case .int(let i):
            result.kind = kind("l")
            result.value.i64 = i
        case .double(let d):
            result.kind = kind("d")
            result.value.f64 = d
        case .string(let s):
            result.kind = kind("S")
            result.value.bytes = bytes(s)
        case .bytes(let b):
            result.kind = kind("x")
            result.value.bytes = b.withUnsafeBytes { bytes($0) }
        case .timestamp(let date):
            result.kind = kind("T")
            result.value.u64 = UInt64(max(0, date.timeIntervalSince1970.rounded(.down)))
        case .decimal(let scale, let v):
            result.kind = kind("D")
            result.value.decimal = amqp_decimal_t(decimals: scale, value: v)
        case .array(let values):
            result.kind = kind("A")
            let entries = allocate(MemoryLayout<amqp_field_value_t>.stride * max(values.count, 1))
                .bindMemory(to: amqp_field_value_t.self, capacity: max(values.count, 1))
            for (index, v) in values.enumerated() { entries[index] = field(v) }
            result.value.array = amqp_array_t(num_entries: Int32(values.count), entries: entries)
        case .table(let t):
            result.kind = kind("F")
            result.value.table = table(t)
        case .void:
            result.kind = kind("V")
        }
        return result
    }

    /// Fills the C properties struct; `_flags` says which fields are set.
    func properties(_ p: BasicProperties) -> amqp_basic_properties_t {
        var c = amqp_basic_properties_t()
        var flags: UInt32 = 0
        if let v = p.contentType { c.content_type = bytes(v); flags |= UInt32(CRABBITMQ_FLAG_CONTENT_TYPE) }
        if let v = p.contentEncoding { c.content_encoding = bytes(v); flags |= UInt32(CRABBITMQ_FLAG_CONTENT_ENCODING) }
        if let v = p.headers { c.headers = table(v); flags |= UInt32(CRABBITMQ_FLAG_HEADERS) }
        if let v = p.deliveryMode { c.delivery_mode = v.rawValue; flags |= UInt32(CRABBITMQ_FLAG_DELIVERY_MODE) }
        if let v = p.priority { c.priority = v; flags |= UInt32(CRABBITMQ_FLAG_PRIORITY) }
        if let v = p.correlationID { c.correlation_id = bytes(v); flags |= UInt32(CRABBITMQ_FLAG_CORRELATION_ID) }
        if let v = p.replyTo { c.reply_to = bytes(v); flags |= UInt32(CRABBITMQ_FLAG_REPLY_TO) }
        if let v = p.expiration { c.expiration = bytes(v); flags |= UInt32(CRABBITMQ_FLAG_EXPIRATION) }
        if let v = p.messageID { c.message_id = bytes(v); flags |= UInt32(CRABBITMQ_FLAG_MESSAGE_ID) }
        if let v = p.timestamp {
            c.timestamp = UInt64(max(0, v.timeIntervalSince1970.rounded(.down)))
            flags |= UInt32(CRABBITMQ_FLAG_TIMESTAMP)
        }
        if let v = p.type { c.type = bytes(v); flags |= UInt32(CRABBITMQ_FLAG_TYPE) }
        if let v = p.userID { c.user_id = bytes(v); flags |= UInt32(CRABBITMQ_FLAG_USER_ID) }
        if let v = p.appID { c.app_id = bytes(v); flags |= UInt32(CRABBITMQ_FLAG_APP_ID) }
        c._flags = amqp_flags_t(flags)
        return c
    }
}

@inline(__always)
private func kind(_ character: Unicode.Scalar) -> UInt8 { UInt8(ascii: character) }

// MARK: Reading what the broker sent

// Frames returned by librabbitmq point into its per-channel memory pools,
// which are recycled by `amqp_maybe_release_buffers`. Everything is copied
// into Swift values right away, so nothing dangles once the pools are reused.

extension String {
    init(_ bytes: amqp_bytes_t) {
        guard let base = bytes.bytes, bytes.len > 0 else { self = ""; return }
        self = String(decoding: UnsafeRawBufferPointer(start: base, count: bytes.len), as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    init(_ bytes: amqp_bytes_t) {
        guard let base = bytes.bytes, bytes.len > 0 else { self = []; return }
        self = Array(UnsafeRawBufferPointer(start: base, count: bytes.len))
    }
}

func decodeTable(_ table: amqp_table_t) -> AMQPTable {
    var result: AMQPTable = [:]
    guard let entries = table.entries else { return result }
    for index in 0..<Int(table.num_entries) {
        let entry = entries[index]
        result[String(entry.key)] = decodeField(entry.value)
    }
    return result
}

func decodeField(_ field: amqp_field_value_t) -> AMQPValue {
    let v = field.value
    switch Unicode.Scalar(field.kind) {
    case "t": return .bool(v.boolean != 0)
    case "b": return .int(Int64(v.i8))
    case "B": return .int(Int64(v.u8))
    case "s": return .int(Int64(v.i16))
    case "u": return .int(Int64(v.u16))
    case "I": return .int(Int64(v.i32))
    case "i": return .int(Int64(v.u32))
    case "l": return .int(v.i64)
    case "L": return .int(Int64(clamping: v.u64))
    case "f": return .double(Double(v.f32))
    case "d": return .double(v.f64)
    case "D": return .decimal(scale: v.decimal.decimals, value: v.decimal.value)
    case "S": return .string(String(v.bytes))
    case "x": return .bytes([UInt8](v.bytes))
    case "T": return .timestamp(Date(timeIntervalSince1970: TimeInterval(v.u64)))
    case "F": return .table(decodeTable(v.table))
    case "A":
        var values: [AMQPValue] = []
        if let entries = v.array.entries {
            for index in 0..<Int(v.array.num_entries) { values.append(decodeField(entries[index])) }
        }
        return .array(values)
    default: return .void
    }
}

func decodeProperties(_ c: amqp_basic_properties_t) -> BasicProperties {
    let flags = UInt32(c._flags)
    func has(_ flag: Int) -> Bool { flags & UInt32(flag) != 0 }
    var p = BasicProperties()
    if has(Int(CRABBITMQ_FLAG_CONTENT_TYPE)) { p.contentType = String(c.content_type) }
    if has(Int(CRABBITMQ_FLAG_CONTENT_ENCODING)) { p.contentEncoding = String(c.content_encoding) }
    if has(Int(CRABBITMQ_FLAG_HEADERS)) { p.headers = decodeTable(c.headers) }
    if has(Int(CRABBITMQ_FLAG_DELIVERY_MODE)) { p.deliveryMode = DeliveryMode(rawValue: c.delivery_mode) }
    if has(Int(CRABBITMQ_FLAG_PRIORITY)) { p.priority = c.priority }
    if has(Int(CRABBITMQ_FLAG_CORRELATION_ID)) { p.correlationID = String(c.correlation_id) }
    if has(Int(CRABBITMQ_FLAG_REPLY_TO)) { p.replyTo = String(c.reply_to) }
    if has(Int(CRABBITMQ_FLAG_EXPIRATION)) { p.expiration = String(c.expiration) }
    if has(Int(CRABBITMQ_FLAG_MESSAGE_ID)) { p.messageID = String(c.message_id) }
    if has(Int(CRABBITMQ_FLAG_TIMESTAMP)) { p.timestamp = Date(timeIntervalSince1970: TimeInterval(c.timestamp)) }
    if has(Int(CRABBITMQ_FLAG_TYPE)) { p.type = String(c.type) }
    if has(Int(CRABBITMQ_FLAG_USER_ID)) { p.userID = String(c.user_id) }
    if has(Int(CRABBITMQ_FLAG_APP_ID)) { p.appID = String(c.app_id) }
    return p
}
