import Common
import Storage

/// A catalogue kept in the same database as the orders: the monolith's.
/// The order side then reads prices inside the transaction that stores the
/// order, so the order and the prices it copies are one consistent moment
/// and no other thread is involved. From stage 2 the catalogue is another
/// service: the prices are fetched over HTTP first and the transaction
/// starts after, which is the ordinary `Catalogue`. Stage 1 declares that
/// its `ProductStore` is one (`Stages/stage-1/Monolith.swift`).
public protocol SameDatabaseCatalogue: Catalogue {
    func products(ids: [String], in db: Database) throws -> [String: API.Product]
}
