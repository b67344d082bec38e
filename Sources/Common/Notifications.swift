/// What each notification says. Only the subject is kept: this project
/// records emails, it does not send them, and the subject is enough to
/// follow what a customer was told.
public enum NotificationText {
    public static func subject(_ kind: API.NotificationKind, orderId: String?, userName: String) -> String {
        switch kind {
        case .welcome: "Welcome to the shop, \(userName)"
        case .orderConfirmed: "Your order \(orderId ?? "") is confirmed"
        case .orderCancelled: "Your order \(orderId ?? "") was cancelled"
        case .orderShipped: "Your order \(orderId ?? "") has shipped"
        }
    }
}
