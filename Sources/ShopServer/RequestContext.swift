import Auth
import Common
import Hummingbird
import Logging

/// What every request carries through the handlers of any stage: its id
/// (also in every log line it causes) and a body limit of 1 MiB.
public struct ShopRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// `X-Request-Id` from the caller, or one we make. Echoed in the
    /// response and passed on to every service the request reaches.
    public var requestId: String = ""
    /// The caller's IP address (rate limiting by address at the gateway).
    public let remoteAddress: String?
    /// A token already verified earlier in this request (the gateway's rate
    /// limiter needs the caller before the route does), so that it is not
    /// verified twice.
    public var verified: (principal: Principal, token: String)?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress?.ipAddress
    }

    public var maxUploadSize: Int { Limits.maxBodyBytes }
}
