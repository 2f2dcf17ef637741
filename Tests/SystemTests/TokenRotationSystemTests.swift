import XCTest
import JSON
import Runtime
import TestSupport
import Crypto

/// Rotating the access-token key by kid (README, Deployment): the new key signs, the old one
/// stays in OOPS_TOKEN_PREVIOUS_KEYS until the tokens it signed have expired.
final class TokenRotationSystemTests: XCTestCase {
    func testTokensOfThePreviousKeyStayValidUntilItIsDropped() throws {
        let oldKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let newKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let sys = try OOPSSystem(extraEnv: ["OOPS_TOKEN_SECRET": oldKey, "OOPS_TOKEN_KID": "k1"])
        defer { sys.stop() }
        let m = sys.merchant("rotate", approved: false)
        XCTAssertEqual(sys.call("GET", "/wallet", token: m.token).status, 200)

        // Step 1: every AuthSvc and Gateway signs with k2 and still accepts k1.
        let rotated = ["OOPS_TOKEN_SECRET": newKey, "OOPS_TOKEN_KID": "k2", "OOPS_TOKEN_PREVIOUS_KEYS": "k1:\(oldKey)"]
        try sys.procs.crashAndRestart("auth", extraEnv: rotated)
        try sys.procs.crashAndRestartBinary("Gateway", key: "gateway", extraEnv: rotated)
        XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 100) { sys.call("GET", "/readyz").status == 200 })
        XCTAssertEqual(sys.call("GET", "/wallet", token: m.token).status, 200, "a k1 token is still accepted")
        let admin = sys.adminToken()
        let header = try XCTUnwrap(admin.split(separator: ".").first.flatMap { Base64URL.decode(String($0)) }.map { String(decoding: $0, as: UTF8.self) })
        XCTAssertTrue(header.contains("\"kid\":\"k2\""), "new tokens carry k2: \(header)")
        XCTAssertEqual(sys.call("GET", "/admin/queues/api/overview", token: admin).status, 200, "a k2 token is accepted")

        // Step 2, after the access-token lifetime: k1 is dropped, and its tokens with it.
        let dropped = ["OOPS_TOKEN_SECRET": newKey, "OOPS_TOKEN_KID": "k2"]
        try sys.procs.crashAndRestartBinary("Gateway", key: "gateway", extraEnv: dropped)
        XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 100) { sys.call("GET", "/readyz").status == 200 })
        XCTAssertEqual(sys.call("GET", "/wallet", token: m.token).status, 401, "a k1 token is refused once k1 is gone")
        XCTAssertEqual(sys.call("GET", "/admin/queues/api/overview", token: admin).status, 200)
    }
}
