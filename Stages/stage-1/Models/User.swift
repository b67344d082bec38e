import Common
import Foundation
import Storage

/// A row of `users`. Models are plain records: they know their table and
/// how they look in the contract, nothing about rules or HTTP.
struct UserRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "users"
    var id: String
    var email: String
    var emailKey: String
    var name: String
    var passwordHash: String
    var role: API.Role
    var createdAt: Date

    var api: API.User { API.User(id: id, email: email, name: name, role: role) }
}

extension UserRecord {
    static func find(_ id: String, in db: Database) throws -> UserRecord? {
        try fetchOne(db, cached: "SELECT * FROM users WHERE id = ?", [id])
    }
}
