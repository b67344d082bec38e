import Common
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Building responses: JSON with the project's encoder, HTML, and errors in
/// the contract's body.
public enum Reply {
    // JSONEncoder is safe to share once configured; making one per response
    // would cost more than encoding a small body.
    static let encoder = JSON.encoder()

    public static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let data: Data
        do {
            data = try encoder.encode(value)
        } catch {
            return Self.error(ShopError(.internalError, "the response could not be encoded"))
        }
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    public static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    public static func error(_ error: ShopError) -> Response {
        var response = json(ErrorBody(error), status: HTTPResponse.Status(code: error.status))
        if let seconds = error.retryAfter {
            response.headers[.retryAfter] = String(seconds)
        }
        return response
    }
}

extension Request {
    /// Reads and decodes a JSON body: 413 past 1 MiB, 400 naming the field
    /// for anything that does not fit `T`.
    public mutating func decodeJSON<T: Decodable>(_ type: T.Type) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await collectBody(upTo: Limits.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw ShopError.payloadTooLarge
        }
        return try JSON.decodeRequest(type, from: Data(buffer.readableBytesView))
    }
}

extension Parameters {
    /// A path parameter that must look like one of our ids.
    public func id(_ name: String) throws(ShopError) -> String {
        try Validate.id(self.get(name) ?? "", field: name)
    }
}
