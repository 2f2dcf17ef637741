import Foundation
import JSON
import Runtime
@testable import Store
import TestSupport
import XCTest

/// The conformance suite against a real MongoDB, when OOPS_TEST_MONGODB_URI names one (each test
/// uses its own collection prefix and removes it afterwards), plus what can be checked without one.
final class MongoStoreTests: XCTestCase {
    private var opened: [(any DocumentStore, String)] = []

    override func tearDown() {
        for (s, _) in opened {
            for c in DocumentStoreConformance.collections.map(\.name) + ["meta"] { try? (s as? MongoStore)?.drop(c) }
            s.close()
        }
        opened = []
    }

    private func suite() throws -> DocumentStoreConformance {
        guard let uri = ProcessInfo.processInfo.environment["OOPS_TEST_MONGODB_URI"], !uri.isEmpty else {
            throw XCTSkip("set OOPS_TEST_MONGODB_URI to run the store conformance suite against MongoDB")
        }
        return DocumentStoreConformance(open: { [unowned self] in
            let service = "t\(UInt32.random(in: 0...UInt32.max))"
            let s = try StoreFactory.open(service: service, dataDir: "/nonexistent", mongoURI: uri, log: testLog)
            // A second handle for cleanup, since the suite closes its own.
            let cleaner = try StoreFactory.open(service: service, dataDir: "/nonexistent", mongoURI: uri, log: testLog)
            self.opened.append((cleaner, service))
            return s
        })
    }

    func testInsertWithTakenIdReturnsTheExistingDocument() throws { try suite().insertWithTakenIdReturnsTheExistingDocument() }
    func testInsertWithTakenCompoundUniqueKeyReturnsTheHolder() throws { try suite().insertWithTakenCompoundUniqueKeyReturnsTheHolder() }
    func testUpdateThatWouldTakeAUniqueKeyIsAConflict() throws { try suite().updateThatWouldTakeAUniqueKeyIsAConflict() }
    func testCompareAndSetReturnsTheAfterImageAndNilOnMismatch() throws { try suite().compareAndSetReturnsTheAfterImageAndNilOnMismatch() }
    func testConditionalDecrementNeverGoesBelowZeroUnder200Threads() throws { try suite().conditionalDecrementNeverGoesBelowZeroUnderConcurrency() }
    func testPushAppendsAndCreatesTheArray() throws { try suite().pushAppendsAndCreatesTheArray() }
    func testUnsetRemovesFieldsAndSetCreatesNestedPaths() throws { try suite().unsetRemovesFieldsAndSetCreatesNestedPaths() }
    func testSortLimitAndCursorPagingById() throws { try suite().sortLimitAndCursorPagingById() }
    func testCountUpdateManyAndDelete() throws { try suite().countUpdateManyAndDelete() }
    func testFilterSemanticsMatchMongoDB() throws { try suite().filterSemanticsMatchMongoDB() }
    func testValuesRoundTripWithTheirTypes() throws { try suite().valuesRoundTripWithTheirTypes() }
    func testSchemaVersionNewerThanTheBinaryIsRefused() throws { try suite().schemaVersionNewerThanTheBinaryIsRefused() }
    func testMalformedRequestsAreRefusedAsInvalid() throws { try suite().malformedRequestsAreRefusedAsInvalid() }
    func testClosedStoreIsUnavailable() throws { try suite().closedStoreIsUnavailable() }

    func testUnreachableServerIsReportedAsUnavailableNotACrash() throws {
        // Nothing listens on a freshly freed port.
        let uri = "mongodb://127.0.0.1:\(freePort())/?serverSelectionTimeoutMS=300&connectTimeoutMS=300"
        let s = try StoreFactory.open(service: "svc", dataDir: "/nonexistent", mongoURI: uri, log: testLog)
        defer { s.close() }
        XCTAssertEqual(s.backend, "mongodb")
        let started = Date()
        for op in [{ try s.ping() }, { _ = try s.get("orders", id: "x") }, { _ = try s.insert("orders", ["_id": "x"]) },
                   { try s.prepare([CollectionSpec("orders")], schemaVersion: 1) }] as [() throws -> Void] {
            do {
                try op()
                XCTFail("an operation succeeded without a server")
            } catch let e as StoreError {
                XCTAssertEqual(e.kind, .unavailable, e.debugDescription)
            }
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)
    }

    func testMalformedURIIsInvalid() {
        XCTAssertThrowsError(try StoreFactory.open(service: "svc", dataDir: "/nonexistent", mongoURI: "mongo://nope", log: testLog)) { e in
            XCTAssertEqual((e as? StoreError)?.kind, .invalid)
        }
    }

    func testDatabaseNameComesFromTheURIWithOopsAsDefault() throws {
        let a = try MongoStore(uri: "mongodb://127.0.0.1:1/", service: "svc", log: testLog)
        let b = try MongoStore(uri: "mongodb://127.0.0.1:1/shipping?w=1", service: "svc", log: testLog)
        XCTAssertEqual(a.databaseName, "oops")
        XCTAssertEqual(b.databaseName, "shipping")
        a.close()
        b.close()
    }
}
