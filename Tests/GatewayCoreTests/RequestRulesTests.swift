import XCTest
import RPC
@testable import GatewayCore

/// The Gateway's rules for what a request carries: integers, and the bearer token.
final class RequestRulesTests: XCTestCase {
    func testIntegers() throws {
        XCTAssertEqual(try RequestInt.parse("42", name: "limit", in: 1...100), 42)
        XCTAssertEqual(try RequestInt.parse("-3", name: "n", in: -5...5), -3)
        XCTAssertNil(try RequestInt.parse(nil, name: "limit", in: 1...100))
        XCTAssertEqual(try RequestInt.parse(nil, name: "limit", in: 1...100, default: 20), 20)
        for bad in ["", "+1", " 1", "1 ", "0x10", "1e2", "1.0", "-", "101", "0", "99999999999999999999", "١"] {
            do {
                _ = try RequestInt.parse(bad, name: "limit", in: 1...100)
                XCTFail("accepted \(bad)")
            } catch {
                XCTAssertEqual(error.code, -32602)
                XCTAssertEqual(error.data?["fields"]?.arrayValue?.first?["path"], "limit")
            }
        }
    }

    func testBearerToken() {
        func token(_ v: String) -> String? { Gateway.bearerToken(Array(v.utf8)).map { String(decoding: $0, as: UTF8.self) } }
        XCTAssertEqual(token("Bearer abc.def"), "abc.def")
        XCTAssertEqual(token("bEaReR  abc \t"), "abc", "scheme case-insensitive, blanks around the token ignored")
        XCTAssertEqual(token("Bearer "), "")
        XCTAssertNil(token("Basic abc"))
        XCTAssertNil(token("Bearer"))
        XCTAssertNil(token("Bearerabc"))
        XCTAssertNil(token("Bearer\tabc"), "one space after the scheme")
    }
}
