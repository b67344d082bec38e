import Common
import GRDB

// The domain's enums are stored as their contract strings ("confirmed",
// "out_of_stock"...), so a row reads the same in the sqlite3 shell as in
// the JSON. GRDB supplies the conversion for string-backed enums.
extension OrderStatus: DatabaseValueConvertible {}
extension CancelReason: DatabaseValueConvertible {}
extension PaymentStatus: DatabaseValueConvertible {}
extension API.Role: DatabaseValueConvertible {}
extension API.NotificationKind: DatabaseValueConvertible {}
