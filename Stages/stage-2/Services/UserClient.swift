import Common
import ShopClient

/// The user service, as the rest of the monolith sees it: the calls that
/// used to be `AccountStore` functions are now HTTP requests with a deadline.
struct UserClient: Sendable {
    let service: ServiceClient

    func signUp(_ request: API.SignUpRequest, requestId: String) async throws -> API.User {
        try await service.send("POST", "/users", json: request, requestId: requestId)
    }

    func login(_ request: API.LoginRequest, requestId: String) async throws -> API.LoginResponse {
        try await service.send("POST", "/auth/login", json: request, requestId: requestId)
    }

    /// The caller, asked with the caller's own token: the user service
    /// decides what it may see.
    func me(token: String, requestId: String) async throws -> API.User {
        try await service.get("/users/me", token: token, requestId: requestId)
    }
}
