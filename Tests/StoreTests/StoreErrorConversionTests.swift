import XCTest
import Runtime
import Store

/// What a caller sees of each kind of store failure: only an unreachable store is an outage.
final class StoreErrorConversionTests: XCTestCase {
    func testOnlyAnUnreachableStoreIsAnOutage() {
        let cases: [(StoreError.Kind, ErrorCode)] = [
            (.unavailable, .unavailable), (.conflict, .conflict), (.invalid, .internalError),
            (.internal, .internalError), (.notADatabase, .internalError), (.schemaTooNew, .internalError),
        ]
        for (kind, code) in cases {
            let e = StoreError(kind, "message", detail: "/var/data/secret-path.sqlite: SQL near WHERE")
            XCTAssertEqual(e.errorCode, code, "\(kind)")
            XCTAssertFalse(e.publicMessage.contains("secret-path"), "details stay in the log")
        }
    }
}
