import JSON
import Store
import TestSupport
import XCTest

/// The in-memory test double passes the same conformance suite as SQLite and MongoDB, so a unit
/// test on it sees what a service sees on a real backend.
final class MemoryStoreTests: XCTestCase {
    private let suite = DocumentStoreConformance(open: { MemoryStore() })

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

    /// A conflicting updateMany keeps nothing of what it computed: each store refuses it whole.
    func testUpdateManyThatWouldTakeAUniqueKeyChangesNothing() throws {
        let s = MemoryStore()
        try s.prepare(DocumentStoreConformance.collections, schemaVersion: 1)
        _ = try s.insert("users", ["_id": "a", "email": "a@x.in", "n": 1])
        _ = try s.insert("users", ["_id": "b", "email": "b@x.in", "n": 1])
        XCTAssertThrowsError(try s.updateMany("users", where: .all, .set(["email": "same@x.in"])))
        XCTAssertEqual(try s.find("users", where: .all).compactMap { $0["email"]?.stringValue }, ["a@x.in", "b@x.in"])
    }
}
