import Foundation

/// The contract's JSON shapes (../shared/contract.md, docs/openapi.yaml).
/// Servers encode these, clients and tests decode them: one definition, so
/// the two sides cannot drift apart.
public enum API {
    // MARK: Accounts

    public enum Role: String, Codable, Sendable, Hashable { case customer, admin }

    public struct User: Codable, Sendable, Hashable {
        public var id: String
        public var email: String
        public var name: String
        public var role: Role
        public init(id: String, email: String, name: String, role: Role) {
            self.id = id; self.email = email; self.name = name; self.role = role
        }
    }

    public struct SignUpRequest: Codable, Sendable {
        public var email: String
        public var password: String
        public var name: String
        public init(email: String, password: String, name: String) {
            self.email = email; self.password = password; self.name = name
        }
    }

    public struct LoginRequest: Codable, Sendable {
        public var email: String
        public var password: String
        public init(email: String, password: String) { self.email = email; self.password = password }
    }

    public struct LoginResponse: Codable, Sendable {
        public var token: String
        public var tokenType: String
        public var expiresIn: Int
        public var user: User
        public init(token: String, expiresIn: Int, user: User) {
            self.token = token; self.tokenType = "Bearer"; self.expiresIn = expiresIn; self.user = user
        }
    }

    public struct UserSummary: Codable, Sendable {
        public var user: User
        public var recentOrders: [Order]
        public var notifications: Int
        public init(user: User, recentOrders: [Order], notifications: Int) {
            self.user = user; self.recentOrders = recentOrders; self.notifications = notifications
        }
    }

    // MARK: Catalogue and stock

    public struct Product: Codable, Sendable, Hashable {
        public var id: String
        public var sku: String
        public var name: String
        public var description: String
        public var priceCents: Cents
        public var currency: Currency
        public init(id: String, sku: String, name: String, description: String, priceCents: Cents) {
            self.id = id; self.sku = sku; self.name = name; self.description = description
            self.priceCents = priceCents; self.currency = .usd
        }
    }

    public struct CreateProductRequest: Codable, Sendable {
        public var sku: String
        public var name: String
        public var description: String?
        public var priceCents: Int
        public var initialStock: Int?
        public init(sku: String, name: String, description: String? = nil, priceCents: Int, initialStock: Int? = nil) {
            self.sku = sku; self.name = name; self.description = description
            self.priceCents = priceCents; self.initialStock = initialStock
        }
    }

    public struct UpdateProductRequest: Codable, Sendable {
        public var name: String?
        public var description: String?
        public var priceCents: Int?
        public init(name: String? = nil, description: String? = nil, priceCents: Int? = nil) {
            self.name = name; self.description = description; self.priceCents = priceCents
        }
    }

    public struct Inventory: Codable, Sendable, Hashable {
        public var productId: String
        public var available: Int
        public var reserved: Int
        public init(productId: String, available: Int, reserved: Int) {
            self.productId = productId; self.available = available; self.reserved = reserved
        }
    }

    public struct RestockRequest: Codable, Sendable {
        public var quantity: Int
        public init(quantity: Int) { self.quantity = quantity }
    }

    // MARK: Orders

    public struct OrderItemRequest: Codable, Sendable, Hashable {
        public var productId: String
        public var quantity: Int
        public init(productId: String, quantity: Int) { self.productId = productId; self.quantity = quantity }
    }

    public struct PaymentMethod: Codable, Sendable, Hashable {
        public var card: String
        public init(card: String) { self.card = card }
    }

    public struct PlaceOrderRequest: Codable, Sendable, Hashable {
        public var items: [OrderItemRequest]
        public var paymentMethod: PaymentMethod
        public init(items: [OrderItemRequest], paymentMethod: PaymentMethod) {
            self.items = items; self.paymentMethod = paymentMethod
        }
    }

    public struct OrderItem: Codable, Sendable, Hashable {
        public var productId: String
        public var sku: String
        public var name: String
        public var quantity: Int
        public var unitPriceCents: Cents
        public var lineTotalCents: Cents
        public init(productId: String, sku: String, name: String, quantity: Int, unitPriceCents: Cents) {
            self.productId = productId; self.sku = sku; self.name = name; self.quantity = quantity
            self.unitPriceCents = unitPriceCents; self.lineTotalCents = unitPriceCents * quantity
        }
    }

    public struct Payment: Codable, Sendable, Hashable {
        public var status: PaymentStatus
        public var chargedCents: Cents
        public var refundedCents: Cents
        public init(status: PaymentStatus, chargedCents: Cents, refundedCents: Cents) {
            self.status = status; self.chargedCents = chargedCents; self.refundedCents = refundedCents
        }
    }

    public struct Order: Codable, Sendable, Hashable {
        public var id: String
        public var userId: String
        public var status: OrderStatus
        public var cancelReason: CancelReason?
        public var items: [OrderItem]
        public var totalCents: Cents
        public var currency: Currency
        public var payment: Payment
        public var createdAt: Date
        public var updatedAt: Date

        public init(
            id: String, userId: String, status: OrderStatus, cancelReason: CancelReason?, items: [OrderItem],
            payment: Payment, createdAt: Date, updatedAt: Date
        ) {
            self.id = id; self.userId = userId; self.status = status; self.cancelReason = cancelReason
            self.items = items; self.totalCents = items.reduce(0) { $0 + $1.lineTotalCents }
            self.currency = .usd; self.payment = payment; self.createdAt = createdAt; self.updatedAt = updatedAt
        }

        // `cancelReason` is written as an explicit null, as the contract shows it.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id); try c.encode(userId, forKey: .userId)
            try c.encode(status, forKey: .status); try c.encode(cancelReason, forKey: .cancelReason)
            try c.encode(items, forKey: .items); try c.encode(totalCents, forKey: .totalCents)
            try c.encode(currency, forKey: .currency); try c.encode(payment, forKey: .payment)
            try c.encode(createdAt, forKey: .createdAt); try c.encode(updatedAt, forKey: .updatedAt)
        }
    }

    public struct OrderList: Codable, Sendable {
        public var items: [Order]
        /// More orders exist past the last one: ask again with `startingAfter`.
        public var hasMore: Bool
        public init(items: [Order], hasMore: Bool) { self.items = items; self.hasMore = hasMore }
    }

    // MARK: Notifications

    public enum NotificationKind: String, Codable, Sendable, Hashable, CaseIterable {
        case welcome
        case orderConfirmed = "order_confirmed"
        case orderCancelled = "order_cancelled"
        case orderShipped = "order_shipped"
    }

    public struct Notification: Codable, Sendable, Hashable {
        public var id: String
        public var kind: NotificationKind
        public var orderId: String?
        public var channel: String
        public var to: String
        public var subject: String
        public var createdAt: Date
        public init(id: String, kind: NotificationKind, orderId: String?, to: String, subject: String, createdAt: Date) {
            self.id = id; self.kind = kind; self.orderId = orderId; self.channel = "email"
            self.to = to; self.subject = subject; self.createdAt = createdAt
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id); try c.encode(kind, forKey: .kind)
            try c.encode(orderId, forKey: .orderId); try c.encode(channel, forKey: .channel)
            try c.encode(to, forKey: .to); try c.encode(subject, forKey: .subject)
            try c.encode(createdAt, forKey: .createdAt)
        }
    }

    // MARK: Reports and health

    public struct ProductSales: Codable, Sendable, Hashable {
        public var productId: String
        public var sku: String
        public var unitsSold: Int
        public var revenueCents: Cents
        public init(productId: String, sku: String, unitsSold: Int, revenueCents: Cents) {
            self.productId = productId; self.sku = sku; self.unitsSold = unitsSold; self.revenueCents = revenueCents
        }
    }

    public struct SalesReport: Codable, Sendable, Hashable {
        public var ordersConfirmed: Int
        public var ordersCancelled: Int
        public var revenueCents: Cents
        public var byProduct: [ProductSales]
        public init(ordersConfirmed: Int, ordersCancelled: Int, revenueCents: Cents, byProduct: [ProductSales]) {
            self.ordersConfirmed = ordersConfirmed; self.ordersCancelled = ordersCancelled
            self.revenueCents = revenueCents; self.byProduct = byProduct
        }
    }

    public enum ServiceState: String, Codable, Sendable { case up, down }

    public struct Health: Codable, Sendable {
        public var status: String
        public var stage: Int
        public var services: [String: ServiceState]
        public init(stage: Int, services: [String: ServiceState]) {
            self.stage = stage; self.services = services
            self.status = services.values.allSatisfy { $0 == .up } ? "ok" : "degraded"
        }
        public var isHealthy: Bool { status == "ok" }
    }

    public struct ItemList<Item: Codable & Sendable>: Codable, Sendable {
        public var items: [Item]
        public init(items: [Item]) { self.items = items }
    }
}
