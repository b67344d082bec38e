import Common
import HummingbirdBcrypt

/// Passwords are stored only as bcrypt hashes: salted, and slow on purpose
/// (cost 10 ≈ 50 ms here) so that a stolen table cannot be guessed through
/// quickly. Hashing blocks a thread for that long, so it never runs on
/// Swift's cooperative pool, where it would stall every other request.
public struct PasswordHasher: Sendable {
    public let cost: UInt8

    /// `BCRYPT_COST` lowers the cost for test runs, which sign up hundreds
    /// of users; 4 is bcrypt's minimum, 31 its maximum.
    public init(cost: UInt8 = 10) { self.cost = min(max(cost, 4), 31) }

    public func hash(_ password: String) async -> String {
        let cost = self.cost
        return await BlockingWork.run { Bcrypt.hash(password, cost: cost) }
    }

    public func verify(_ password: String, against hash: String) async -> Bool {
        await BlockingWork.run { Bcrypt.verify(password, hash: hash) }
    }

    /// A hash of a random password at this cost. A login that names an
    /// unknown email is checked against it: that takes as long as a real
    /// check, so response times do not reveal which emails have accounts.
    public func makeDecoy() async -> String {
        await hash(ID.make("decoy"))
    }
}
