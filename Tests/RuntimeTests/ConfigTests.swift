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

    func testRedisSettingsBecomeOneURL() {
        XCTAssertEqual(Config.redisURL([:]), "redis://127.0.0.1:6379")
        XCTAssertEqual(Config.redisURL(["OOPS_REDIS_URL": "redis://:pw@h:7000/2"]), "redis://:pw@h:7000/2")
        XCTAssertEqual(Config.redisURL(["OOPS_REDIS_SENTINELS": "a:26379, b:26380", "OOPS_REDIS_URL": "redis://:pw@h:7000/2"]),
                       "redis-sentinel://:pw@a:26379,b:26380/oops/2?wait=1&wait_ms=1000")
        XCTAssertEqual(Config.redisURL(["OOPS_REDIS_SENTINELS": "a:1", "OOPS_REDIS_MASTER_NAME": "m", "OOPS_REDIS_WAIT_REPLICAS": "0"]),
                       "redis-sentinel://a:1/m")
        XCTAssertEqual(Config.redisURL(["OOPS_REDIS_WAIT_REPLICAS": "99", "OOPS_REDIS_WAIT_MS": "-5"]),
                       "redis://127.0.0.1:6379?wait=16&wait_ms=1")
    }

    func testPreviousTokenKeysAreKeptForVerificationAndBadOnesRefused() throws {
        let old = Data(repeating: 7, count: 32).base64EncodedString()
        let cur = Data(repeating: 9, count: 32).base64EncodedString()
        let c = Config.fromEnvironment(["OOPS_TOKEN_SECRET": cur, "OOPS_TOKEN_KID": "k2", "OOPS_TOKEN_PREVIOUS_KEYS": "k1:\(old)"])
        let k = try c.tokenKeys()
        XCTAssertEqual(k.kid, "k2")
        XCTAssertEqual(k.keys["k2"], [UInt8](repeating: 9, count: 32))
        XCTAssertEqual(k.keys["k1"], [UInt8](repeating: 7, count: 32))
        for bad in ["k1", "k1:", ":\(old)", "k1:c2hvcnQ="] {
            XCTAssertThrowsError(try Config.fromEnvironment(["OOPS_TOKEN_SECRET": cur, "OOPS_TOKEN_PREVIOUS_KEYS": bad]).tokenKeys(), bad) { e in
                XCTAssertFalse("\(e)".contains(old), "the message shows no key")
            }
        }
    }
}
