import Foundation
import JSON
import Runtime
@testable import Store
import TestSupport
import XCTest

/// The conformance suite against a MongoDB-wire server: the test server (secantusd-py, started
/// once for this class) or the real MongoDB named by OOPS_TEST_MONGODB_URI. Each test uses its
/// own collection prefix and removes it afterwards. Plus what can be checked without a server.
final class MongoStoreTests: XCTestCase {
    private var opened: [(any DocumentStore, String)] = []
    nonisolated(unsafe) private static var server: MongoServer?
    nonisolated(unsafe) private static var uri: Result<String, Error>?

    override class func setUp() {
        if let uri = ProcessInfo.processInfo.environment["OOPS_TEST_MONGODB_URI"], !uri.isEmpty {
            self.uri = .success(uri)
            return
        }
        do {
            let s = try MongoServer()
            server = s
            uri = .success(s.uri(database: "conformance"))
        } catch {
            uri = .failure(error)
        }
    }

    override class func tearDown() {
        server?.stop()
        server = nil
    }

    override func tearDown() {
        for (s, _) in opened {
            for c in DocumentStoreConformance.collections.map(\.name) + ["meta"] { try? (s as? MongoStore)?.drop(c) }
            s.close()
        }
        opened = []
    }

    private func suite() throws -> DocumentStoreConformance {
        guard let uri = try Self.uri?.get() else { throw RuntimeError("the class setUp did not run") }
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
