import XCTest
import JSON
import Runtime
@testable import RPC

/// The dispatcher converts a library's error once: the code, message and reason the error
/// declares, and nothing of its details.
final class ErrorConversionTests: XCTestCase {
    private struct Outage: RPCErrorConvertible, CustomStringConvertible {
        var errorCode: ErrorCode { .unavailable }
        var publicMessage: String { "The thing is unavailable" }
        var description: String { "connect to 10.0.0.7:5432 failed: secret detail" }
    }
    private struct Refusal: RPCErrorConvertible {
        var errorCode: ErrorCode { .conflict }
        var publicMessage: String { "Held by a worker" }
        var publicReason: String? { "job_active" }
    }

    private func answer(_ error: Error) -> JSON {
        let m = Method("m", summary: "", roles: [], params: .empty, result: .anything) { _, _ in throw error }
        let d = Dispatcher(service: "t", instance: 0, methods: [m], log: Logger(service: "t", instance: 0, level: .error))
        return try! JSONParser.parse(d.handle(line: Array(#"{"jsonrpc":"2.0","id":1,"method":"m"}"#.utf8))!)
    }

    func testALibraryErrorBecomesItsRowOfTheTable() {
        let e = answer(Outage())["error"]!
        XCTAssertEqual(e["code"], -32050)
        XCTAssertEqual(e["message"], "The thing is unavailable")
        XCTAssertEqual(e["data"]?["reason"], "unavailable")
        XCTAssertFalse(e.serialized().contains("secret"))
        let r = answer(Refusal())["error"]!
        XCTAssertEqual(r["code"], -32009)
        XCTAssertEqual(r["data"]?["reason"], "job_active")
    }

    func testAnyOtherErrorIsInternal() {
        let e = answer(RuntimeError("secret detail"))["error"]!
        XCTAssertEqual(e["code"], -32603)
        XCTAssertFalse(e.serialized().contains("secret"))
    }

    func testTheTableIsComplete() {
        XCTAssertEqual(Set(ErrorCode.allCases.map(\.reason)).count, ErrorCode.allCases.count, "one reason per code")
        for c in ErrorCode.allCases { XCTAssertFalse(c.title.isEmpty) }
        XCTAssertEqual(ErrorCode.status(of: -1), 500)
    }
}
