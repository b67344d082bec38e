import Common
import Foundation
import GRDB
import Storage

/// A row of `users`. Models are plain records: they know their table, how a
/// row maps to their fields, and how they look in the contract; nothing
/// about rules or HTTP. The mapping is written out (rather than derived
/// with Codable) so that a row's columns are visible here, and because it
/// is several times cheaper on the order path.
struct UserRecord: FetchableRecord, PersistableRecord {
    static let databaseTableName = "users"
    var id: String
    var email: String
    var emailKey: String
    var name: String
    var passwordHash: String
    var role: API.Role
    var createdAt: Date

    var api: API.User { API.User(id: id, email: email, name: name, role: role) }

    init(id: String, email: String, emailKey: String, name: String, passwordHash: String, role: API.Role, createdAt: Date) {
        self.id = id; self.email = email; self.emailKey = emailKey; self.name = name
        self.passwordHash = passwordHash; self.role = role; self.createdAt = createdAt
    }

    init(row: Row) throws {
        id = row["id"]; email = row["email"]; emailKey = row["emailKey"]; name = row["name"]
        passwordHash = row["passwordHash"]; role = row["role"]
        createdAt = Date(databaseMilliseconds: row["createdAt"])
    }

    func encode(to container: inout PersistenceContainer) throws {
        container["id"] = id; container["email"] = email; container["emailKey"] = emailKey; container["name"] = name
        container["passwordHash"] = passwordHash; container["role"] = role
        container["createdAt"] = createdAt.databaseMilliseconds
    }

    static func find(_ id: String, in db: Database) throws -> UserRecord? {
        try fetchOne(db, cached: "SELECT * FROM users WHERE id = ?", [id])
    }
}
