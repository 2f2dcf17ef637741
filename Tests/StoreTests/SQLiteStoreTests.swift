import Foundation
import JSON
import Runtime
@testable import Store
import TestSupport
import XCTest

/// The conformance suite against SQLite, plus what only a file-backed store has.
final class SQLiteStoreTests: XCTestCase {
    private var dirs: [TempDir] = []

    override func tearDown() {
        for d in dirs { d.remove() }
        dirs = []
    }

    private func newDir() -> TempDir {
        let d = TempDir("store")
        dirs.append(d)
        return d
    }

    private var suite: DocumentStoreConformance {
        DocumentStoreConformance(open: { [unowned self] in
            try StoreFactory.open(service: "svc", dataDir: self.newDir().path, mongoURI: nil, log: testLog)
        })
    }

    func testInsertWithTakenIdReturnsTheExistingDocument() throws { try suite.insertWithTakenIdReturnsTheExistingDocument() }
    func testInsertWithTakenCompoundUniqueKeyReturnsTheHolder() throws { try suite.insertWithTakenCompoundUniqueKeyReturnsTheHolder() }
    func testUpdateThatWouldTakeAUniqueKeyIsAConflict() throws { try suite.updateThatWouldTakeAUniqueKeyIsAConflict() }
    func testCompareAndSetReturnsTheAfterImageAndNilOnMismatch() throws { try suite.compareAndSetReturnsTheAfterImageAndNilOnMismatch() }
    func testConditionalDecrementNeverGoesBelowZeroUnder200Threads() throws { try suite.conditionalDecrementNeverGoesBelowZeroUnderConcurrency() }
    func testPushAppendsAndCreatesTheArray() throws { try suite.pushAppendsAndCreatesTheArray() }
    func testUnsetRemovesFieldsAndSetCreatesNestedPaths() throws { try suite.unsetRemovesFieldsAndSetCreatesNestedPaths() }
    func testSortLimitAndCursorPagingById() throws { try suite.sortLimitAndCursorPagingById() }
    func testCountUpdateManyAndDelete() throws { try suite.countUpdateManyAndDelete() }
    func testFilterSemanticsMatchMongoDB() throws { try suite.filterSemanticsMatchMongoDB() }
    func testValuesRoundTripWithTheirTypes() throws { try suite.valuesRoundTripWithTheirTypes() }
    func testSchemaVersionNewerThanTheBinaryIsRefused() throws { try suite.schemaVersionNewerThanTheBinaryIsRefused() }
    func testMalformedRequestsAreRefusedAsInvalid() throws { try suite.malformedRequestsAreRefusedAsInvalid() }
    func testClosedStoreIsUnavailable() throws { try suite.closedStoreIsUnavailable() }

    func testFileThatIsNotADatabaseIsRefusedWithAClearError() throws {
        let dir = newDir()
        let path = dir.path + "/svc.sqlite"
        let junk = String(repeating: "this is a text file, not a database\n", count: 200)
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(junk.utf8)))
        do {
            _ = try StoreFactory.open(service: "svc", dataDir: dir.path, mongoURI: nil, log: testLog)
            XCTFail("opened a text file as a database")
        } catch let e as StoreError {
            XCTAssertEqual(e.kind, .notADatabase)
            XCTAssertTrue(e.description.contains(path), e.description)
        }
        // The file is left as it was for the operator to inspect.
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data(junk.utf8))
    }

    func testOneWALFilePerServiceInTheDataDirectory() throws {
        let dir = newDir()
        let data = dir.path + "/nested/data"
        let a = try StoreFactory.open(service: "wallet", dataDir: data, mongoURI: nil, log: testLog)
        let b = try StoreFactory.open(service: "order", dataDir: data, mongoURI: nil, log: testLog)
        try a.prepare([CollectionSpec("wallets")], schemaVersion: 1)
        try b.prepare([CollectionSpec("wallets")], schemaVersion: 1)
        _ = try a.insert("wallets", ["_id": "only-in-wallet"])
        XCTAssertEqual(a.backend, "sqlite")
        XCTAssertEqual(try b.count("wallets"), 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: data + "/wallet.sqlite"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: data + "/order.sqlite"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: data + "/wallet.sqlite-wal"), "journal mode is not WAL")
        a.close()
        b.close()
    }

    func testSchemaVersionSurvivesReopening() throws {
        let dir = newDir()
        let s1 = try StoreFactory.open(service: "svc", dataDir: dir.path, mongoURI: nil, log: testLog)
        try s1.prepare(DocumentStoreConformance.collections, schemaVersion: 5)
        _ = try s1.insert("wallets", ["_id": "w1", "balance": 3])
        s1.close()
        let s2 = try StoreFactory.open(service: "svc", dataDir: dir.path, mongoURI: nil, log: testLog)
        defer { s2.close() }
        do {
            try s2.prepare(DocumentStoreConformance.collections, schemaVersion: 4)
            XCTFail("an older binary prepared a newer store")
        } catch let e as StoreError {
            XCTAssertEqual(e.kind, .schemaTooNew)
            XCTAssertTrue(e.description.contains("5") && e.description.contains("4"), e.description)
        }
        try s2.prepare(DocumentStoreConformance.collections, schemaVersion: 5)
        XCTAssertEqual(try s2.get("wallets", id: "w1"), ["_id": "w1", "balance": 3])
    }

    func testFiltersAndSortsUseTheDeclaredIndexes() throws {
        let dir = newDir()
        let s = try SQLiteStore(path: dir.path + "/plan.sqlite", log: testLog)
        defer { s.close() }
        try s.prepare(DocumentStoreConformance.collections, schemaVersion: 1)
        var q = SQLiteQuery()
        let sql = "EXPLAIN QUERY PLAN SELECT doc FROM \"c_orders\" WHERE \(try q.whereClause(.and([.eq("userId", "u1"), .eq("clientOrderId", "c1")])))"
        let plan = try sqlite3CLI(dir.path + "/plan.sqlite", sql.replacingOccurrences(of: "?", with: "'x'"))
        XCTAssertTrue(plan.contains("i_orders__user_client_order"), plan)
    }

    func testTransactionCommitsItsWritesTogetherOrNone() throws {
        let dir = newDir()
        let s = try SQLiteStore(path: dir.path + "/tx.sqlite", log: testLog)
        defer { s.close() }
        try s.prepare(DocumentStoreConformance.collections, schemaVersion: 1)
        _ = try s.insert("wallets", ["_id": "w1", "balance": 10])
        // Committed: both writes are there, and a read inside saw the write before it.
        let seen = try s.transaction { () throws -> JSON? in
            _ = try s.update("wallets", where: .id("w1"), Update(inc: ["balance": -4]))
            _ = try s.insert("events", ["_id": "e1", "amount": 4])
            return try s.get("wallets", id: "w1")
        }
        XCTAssertEqual(seen??["balance"], 6)
        XCTAssertEqual(try s.get("wallets", id: "w1")?["balance"], 6)
        XCTAssertEqual(try s.count("events"), 1)
        // Thrown out of: neither write is left, and the error reaches the caller.
        XCTAssertThrowsError(try s.transaction { () throws -> Void in
            _ = try s.update("wallets", where: .id("w1"), Update(inc: ["balance": -4]))
            _ = try s.insert("events", ["_id": "e2", "amount": 4])
            throw StoreError(.internal, "stop")
        }) { XCTAssertEqual(($0 as? StoreError)?.description.contains("stop"), true) }
        XCTAssertEqual(try s.get("wallets", id: "w1")?["balance"], 6)
        XCTAssertEqual(try s.count("events"), 1)
        // Other threads' writes wait for the commit instead of landing inside the transaction.
        let other = DispatchGroup()
        try s.transaction { () throws -> Void in
            DispatchQueue.global().async(group: other) { _ = try? s.update("wallets", where: .id("w1"), Update(set: ["balance": 100])) }
            usleep(200_000)
            XCTAssertEqual(try s.get("wallets", id: "w1")?["balance"], 6)
            _ = try s.update("wallets", where: .id("w1"), Update(inc: ["balance": 1]))
        }
        other.wait()
        XCTAssertEqual(try s.get("wallets", id: "w1")?["balance"], 100)
    }

    /// Concurrent writes and transactions: each one's outcome is its own, and a transaction that
    /// throws among them takes back only its own writes.
    func testConcurrentWritesAndThrowingTransactionsKeepTheirOwnOutcomes() throws {
        let dir = newDir()
        let s = try SQLiteStore(path: dir.path + "/group.sqlite", log: testLog)
        defer { s.close() }
        try s.prepare(DocumentStoreConformance.collections, schemaVersion: 1)
        let created = Locked(0), duplicates = Locked(0), failed = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 16) { t in
            for i in 0..<50 {
                // Every fifth id is shared by all threads: exactly one of them creates it.
                let id = i % 5 == 0 ? "shared-\(i)" : "t\(t)-\(i)"
                switch try? s.insert("events", ["_id": .string(id), "amount": .int(Int64(i))]) {
                case .created?: created.withLock { $0 += 1 }
                case .duplicate?: duplicates.withLock { $0 += 1 }
                case nil: failed.withLock { $0 += 1 }
                }
                if i % 10 == 3 {
                    // A transaction that writes and then throws: none of its writes stay.
                    _ = try? s.transaction { () throws -> Void in
                        _ = try s.insert("events", ["_id": .string("undone-\(t)-\(i)"), "amount": 0])
                        throw StoreError(.internal, "stop")
                    }
                }
            }
        }
        XCTAssertEqual(failed.current, 0)
        XCTAssertEqual(created.current, 16 * 40 + 10)
        XCTAssertEqual(duplicates.current, 15 * 10)
        XCTAssertEqual(try s.count("events"), 16 * 40 + 10)
        XCTAssertEqual(try s.count("events", where: .eq("amount", 0)), 1, "shared-0 alone: the thrown-out transactions left nothing")
    }

    /// Runs the sqlite3 shell, when installed, to look at the file from outside the store.
    private func sqlite3CLI(_ path: String, _ sql: String) throws -> String {
        guard let exe = which("sqlite3") else { throw XCTSkip("sqlite3 shell not installed") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = [path, sql]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
