import Foundation
import JSON
import Runtime
@testable import Store
import TestSupport
import XCTest

/// StoreMigration from a SQLite file into MongoDB (the test server): an exact copy, resumable
/// after the source changed (insert, rewrite, removal), and a refusal when the target holds a
/// unique key under another id.
final class StoreMigrationTests: XCTestCase {
    private static let specs = [CollectionSpec("orders", indexes: [IndexSpec(["userId", "clientOrderId"], unique: true)]), CollectionSpec("wallets")]

    private func stores() throws -> (SQLiteStore, any DocumentStore, () -> Void) {
        let mongo = try TestMongo()
        let dir = TempDir("migrate")
        let source = try SQLiteStore(path: dir.path + "/svc.sqlite", log: testLog)
        try source.prepare(Self.specs, schemaVersion: 1)
        let target = try StoreFactory.open(service: "svc", dataDir: dir.path, mongoURI: mongo.uri, log: testLog)
        try target.prepare(Self.specs, schemaVersion: 1)
        return (source, target, {
            source.close()
            target.close()
            mongo.stop()
            dir.remove()
        })
    }

    func testCopyIsExactAndARerunAfterChangesInsertsRewritesAndRemoves() throws {
        let (source, target, done) = try stores()
        defer { done() }
        for i in 0..<25 {
            _ = try source.insert("orders", ["_id": .string(String(format: "o%02d", i)), "userId": "u1", "clientOrderId": .string("c\(i)"),
                                             "status": "placed", "lines": [["sku": "A", "qty": .int(Int64(i))]], "awb": i % 2 == 0 ? "X" : .null])
        }
        _ = try source.insert("wallets", ["_id": "u1", "balancePaise": 1000])
        let first = try StoreMigration.copy(try source.collectionNames(), from: source, to: target, batch: 10)
        XCTAssertEqual(first.map(\.collection), ["orders", "wallets"])
        XCTAssertEqual(first.map(\.inserted), [25, 1])
        XCTAssertTrue(first.allSatisfy(\.countsMatch))
        XCTAssertEqual(try target.find("orders", where: .all), try source.find("orders", where: .all))

        // The source moves on: one document changes (a field goes away), one is deleted, one is new.
        _ = try source.update("orders", where: .id("o03"), Update(set: ["status": "cancelled"], unset: ["awb"]))
        _ = try source.delete("orders", where: .id("o07"))
        _ = try source.insert("orders", ["_id": "o99", "userId": "u1", "clientOrderId": "c99", "status": "pending"])
        let second = try StoreMigration.copy(["orders"], from: source, to: target, batch: 10)
        XCTAssertEqual(second.first?.inserted, 1)
        XCTAssertEqual(second.first?.rewritten, 1)
        XCTAssertEqual(second.first?.removed, 1)
        XCTAssertEqual(second.first?.unchanged, 23)
        XCTAssertEqual(try target.find("orders", where: .all), try source.find("orders", where: .all))
        let third = try StoreMigration.copy(["orders", "wallets"], from: source, to: target)
        XCTAssertEqual(third.map { $0.inserted + $0.rewritten + $0.removed }, [0, 0], "nothing left to do")
    }

    func testAUniqueKeyHeldInTheTargetUnderAnotherIdStopsTheCopy() throws {
        let (source, target, done) = try stores()
        defer { done() }
        _ = try source.insert("orders", ["_id": "o1", "userId": "u1", "clientOrderId": "c1"])
        _ = try target.insert("orders", ["_id": "other", "userId": "u1", "clientOrderId": "c1"])
        XCTAssertThrowsError(try StoreMigration.copy(["orders"], from: source, to: target)) { e in
            XCTAssertEqual((e as? StoreError)?.kind, .conflict, "\(e)")
        }
        XCTAssertEqual(try source.find("orders", where: .all), [["_id": "o1", "userId": "u1", "clientOrderId": "c1"]], "the source is never written")
    }
}
