import XCTest
import JSON
import RPC
import Runtime
@testable import GatewayCore

/// What a client sees of an RPC error: the status and reason from the one table, the body shape
/// the API documents, no details of an internal error.
final class ErrorMappingTests: XCTestCase {
    func testTheTableAsDocumented() {
        // docs/design.md, "Error codes".
        let documented: [Int: Int] = [-32700: 400, -32600: 400, -32601: 404, -32602: 400, -32603: 500, -32001: 401, -32003: 403,
                                      -32004: 404, -32009: 409, -32022: 422, -32029: 429, -32050: 503, -32054: 504]
        XCTAssertEqual(Set(documented.keys), Set(ErrorCode.allCases.map(\.rawValue)))
        for (code, status) in documented { XCTAssertEqual(ErrorMapping.status(for: code), status, "\(code)") }
        XCTAssertEqual(ErrorMapping.status(for: -31999), 500, "a code outside the table")
        XCTAssertEqual(ErrorMapping.status(for: RPCError.lineTooLong(limit: 10)), 413)
    }

    func testBodyShape() {
        let e = RPCError.invalidParams([FieldError(path: "items[0].quantity", message: "must be at least 1")])
        let b = ErrorMapping.body(e, requestId: "req-1")["error"]!
        XCTAssertEqual(b["code"], "validation_failed")
        XCTAssertEqual(b["requestId"], "req-1")
        XCTAssertEqual(b["fields"]?.arrayValue?.first?["path"], "items[0].quantity")
        let limited = ErrorMapping.body(.rateLimited(retryAfterSeconds: 7), requestId: "r")["error"]!
        XCTAssertEqual(limited["code"], "rate_limited")
        XCTAssertEqual(limited["retryAfter"], 7)
        // A code with no reason takes the table's.
        XCTAssertEqual(ErrorMapping.body(RPCError(code: -32050, message: "x"), requestId: "r")["error"]?["code"], "unavailable")
    }

    func testAnInternalErrorSaysNoMore() {
        let b = ErrorMapping.body(RPCError(code: -32603, message: "sqlite: /var/data/order.sqlite locked"), requestId: "r")["error"]!
        XCTAssertEqual(b["message"], "Internal error")
        XCTAssertEqual(b["code"], "internal_error")
    }
}
