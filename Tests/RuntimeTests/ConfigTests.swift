import Runtime
import XCTest

/// Settings are numbers from outside: absurd ones are brought within range, never trusted into
/// arithmetic that could trap (AuthSvc turns OOPS_LOGIN_WINDOW_S into milliseconds).
final class ConfigTests: XCTestCase {
    func testIntegerSettingsStayWithinTheirRange() {
        let c = Config.fromEnvironment(["A": "9223372036854775807", "B": "-5", "C": " 42 ", "D": "x", "E": "70"])
        XCTAssertEqual(c.int("A", default: 1), 1 << 40)
        XCTAssertFalse(Int64(c.int("A", default: 1)).multipliedReportingOverflow(by: 1000).overflow, "seconds into milliseconds cannot overflow")
        XCTAssertEqual(c.int("B", default: 1), 0)
        XCTAssertEqual(c.int("C", default: 1), 42)
        XCTAssertEqual(c.int("D", default: 7), 7)
        XCTAssertEqual(c.int("missing", default: 7), 7)
        XCTAssertEqual(c.int("E", default: 1, range: 1...64), 64)
    }

    func testProcessSettingsAreBounded() {
        let c = Config.fromEnvironment(["OOPS_INSTANCE": "-3", "OOPS_RPC_IDLE_MS": "99999999999999999", "OOPS_HTTP_MAX_BODY": "-1"])
        XCTAssertEqual(c.instance, 0)
        XCTAssertEqual(c.rpcIdleTimeoutMs, 86_400_000)
        XCTAssertEqual(c.httpMaxBodyBytes, 0)
    }
}
