import XCTest
import JSON
import Runtime
@testable import RPC

/// One request-id rule for HTTP and RPC, and one reader of `ctx` for single requests and batches.
final class ContextRuleTests: XCTestCase {
    func testARequestIdMustBeSafeToLog() {
        XCTAssertEqual(RequestID.accept("req-1.a:b_C"), "req-1.a:b_C")
        for bad in ["", "has space", "new\nline", String(repeating: "a", count: 129), "quote\""] {
            XCTAssertTrue(RequestID.accept(bad).hasPrefix("req_"), bad)
            XCTAssertTrue(RPCContext.from(["requestId": .string(bad)]).requestId.hasPrefix("req_"), bad)
        }
    }

    func testParsedAndWireContextsAgree() {
        let ctx: JSON = ["requestId": "r-1", "timeoutMs": 900_000, "actor": ["userId": "u1", "role": "admin"]]
        let c = RPCContext.from(ctx)
        XCTAssertEqual(c.requestId, "r-1")
        XCTAssertEqual(c.actor?.userId, "u1")
        XCTAssertLessThanOrEqual(c.deadline.remainingMs, 600_000, "the timeout is capped")
        XCTAssertNil(RPCContext.from(nil).actor)
    }
}
