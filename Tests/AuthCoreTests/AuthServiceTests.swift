import Crypto
import JSON
import RPC
import Runtime
import Store
import TestSupport
import XCTest
@testable import AuthCore

/// AuthSvc in-process: the account and KYC handlers behind a Dispatcher, on an in-memory store,
/// with time on a clock the test moves (token lifetimes, the login throttle's lock windows).
final class AuthServiceTests: XCTestCase {
    let clock = ManualClock()
    let store = MemoryStore()
    let signer = JWTSigner(kid: "k1", keys: ["k1": Array(repeating: 7, count: 32)])
    var rpc: Dispatcher!

    static let accessTTL = 900, refreshTTL = 3_600
    /// 3 failures within 15 minutes lock an account for 60 s, then 120 s, … up to an hour.
    static let accountPolicy = ThrottlePolicy(maxFailures: 3, windowMs: 900_000, baseLockMs: 60_000, maxLockMs: 3_600_000,
                                              forgetAfterMs: 3_600_000)
    static let password = "correct horse battery"
    static let admin = Actor(userId: "usr_admin", role: .admin)

    override func setUpWithError() throws {
        let log = Logger(service: "AuthSvc", instance: 0, level: .error)
        let repo = try DocumentAuthRepository(store: store, log: log)
        var addressPolicy = Self.accountPolicy
        addressPolicy.maxFailures = 20
        let throttle = LoginThrottle(account: Self.accountPolicy, address: addressPolicy, repo: repo, log: log)
        let accounts = AccountService(repo: repo, tokens: TokenIssuer(signer: signer, accessTTLSeconds: Self.accessTTL, refreshTTLSeconds: Self.refreshTTL),
                                      throttle: throttle, gate: HashGate(width: 2, registerLine: 8, loginLine: 8), log: log, clock: clock)
        let kyc = KYCService(repo: repo, box: try SecretBox(key: Array(repeating: 9, count: 32)), log: log, clock: clock)
        rpc = Dispatcher(service: "AuthSvc", instance: 0, methods: AuthHandlers.methods(accounts) + KYCHandlers.methods(kyc), log: log)
    }

    private func call(_ method: String, _ params: JSON, as actor: Actor? = nil) throws -> JSON {
        try rpc.call(method, params, ctx: RPCContext.new(actor: actor, timeoutMs: 60_000))
    }

    private func refusal(_ method: String, _ params: JSON, as actor: Actor? = nil, file: StaticString = #filePath, line: UInt = #line) -> RPCError? {
        expectRefusal(method, file: file, line: line) { try call(method, params, as: actor) }
    }

    private func register(_ email: String) throws -> JSON {
        try call("auth.register", ["email": .string(email), "password": .string(Self.password), "name": "Asha Rao", "phone": "9876543210"])
    }

    private func login(_ email: String, _ password: String = password) throws -> JSON {
        try call("auth.login", ["email": .string(email), "password": .string(password)])
    }

    // MARK: register, login, refresh

    func testRegisterStoresANormalisedMerchantAndSignsIn() throws {
        let s = try register("  Asha@Example.COM ")
        let userId = try XCTUnwrap(s["user"]?["id"]?.stringValue)
        XCTAssertEqual(s["user"]?["email"], "asha@example.com")
        XCTAssertEqual(s["user"]?["role"], "merchant")
        XCTAssertEqual(s["user"]?["kycStatus"], "not_started")
        XCTAssertEqual(s["user"]?["createdAt"], .string(Clock.iso8601(millis: clock.nowMillis())))
        XCTAssertEqual(s["expiresIn"], .int(Int64(Self.accessTTL)))

        let claims = try signer.verify(try XCTUnwrap(s["accessToken"]?.stringValue), nowSeconds: clock.nowMillis() / 1000)
        XCTAssertEqual(claims["sub"], .string(userId))
        XCTAssertEqual(claims["role"], "merchant")
        XCTAssertEqual(claims["exp"], .int(clock.nowMillis() / 1000 + Int64(Self.accessTTL)))

        let stored = try XCTUnwrap(try store.get(DocumentAuthRepository.users, id: userId))
        XCTAssertTrue(stored["passwordHash"]?.stringValue?.hasPrefix("$argon2id$") ?? false)
        XCTAssertFalse(stored.serialized().contains(Self.password))

        let taken = refusal("auth.register", ["email": "asha@example.com", "password": "another password 2", "name": "B", "phone": "9876543211"])
        XCTAssertEqual(taken?.code, ErrorCode.conflict.rawValue)
        XCTAssertEqual(taken?.reason, "email_taken")
        XCTAssertEqual(try store.count(DocumentAuthRepository.users), 1)
    }

    func testLoginChecksThePasswordAndRefreshRotatesOnce() throws {
        let userId = try XCTUnwrap(try register("r@example.com")["user"]?["id"])
        let wrong = refusal("auth.login", ["email": "r@example.com", "password": "not the password"])
        XCTAssertEqual(wrong?.code, ErrorCode.unauthenticated.rawValue)
        XCTAssertEqual(wrong?.reason, "invalid_credentials")
        // An unknown email is answered exactly like a wrong password.
        XCTAssertEqual(refusal("auth.login", ["email": "nobody@example.com", "password": "x"])?.reason, "invalid_credentials")

        let s = try login("R@example.com")
        XCTAssertEqual(s["user"]?["id"], userId)
        let first = try XCTUnwrap(s["refreshToken"]?.stringValue)

        clock.advance(ms: 60_000)
        let rotated = try call("auth.refresh", ["refreshToken": .string(first)])
        let second = try XCTUnwrap(rotated["refreshToken"]?.stringValue)
        XCTAssertNotEqual(second, first)
        XCTAssertEqual(rotated["user"]?["id"], userId)

        // The first token used again: reuse, and the whole family (the second token too) is revoked.
        XCTAssertEqual(refusal("auth.refresh", ["refreshToken": .string(first)])?.reason, "refresh_reused")
        XCTAssertEqual(refusal("auth.refresh", ["refreshToken": .string(second)])?.reason, "refresh_revoked")
    }

    func testARefreshTokenExpiresWithTheClock() throws {
        let token = try XCTUnwrap(try register("e@example.com")["refreshToken"]?.stringValue)
        clock.advance(ms: Int64(Self.refreshTTL) * 1000)
        let e = refusal("auth.refresh", ["refreshToken": .string(token)])
        XCTAssertEqual(e?.code, ErrorCode.unauthenticated.rawValue)
        XCTAssertEqual(e?.reason, "refresh_expired")
    }

    // MARK: the login throttle

    func testFailedLoginsLockTheAccountUntilTheClockPassesTheLock() throws {
        _ = try register("t@example.com")
        for _ in 0..<3 { XCTAssertEqual(refusal("auth.login", ["email": "t@example.com", "password": "guess"])?.reason, "invalid_credentials") }

        // Locked for 60 s: even the right password is refused, with the time left.
        var locked = refusal("auth.login", ["email": "t@example.com", "password": .string(Self.password)])
        XCTAssertEqual(locked?.code, ErrorCode.rateLimited.rawValue)
        XCTAssertEqual(locked?.data?["retryAfter"], 60)
        clock.advance(ms: 59_500)
        locked = refusal("auth.login", ["email": "t@example.com", "password": .string(Self.password)])
        XCTAssertEqual(locked?.data?["retryAfter"], 1)

        // Unlocked; the next failure locks again at once, for twice as long.
        clock.advance(ms: 600)
        XCTAssertEqual(refusal("auth.login", ["email": "t@example.com", "password": "guess"])?.reason, "invalid_credentials")
        XCTAssertEqual(refusal("auth.login", ["email": "t@example.com", "password": .string(Self.password)])?.data?["retryAfter"], 120)

        clock.advance(ms: 120_000)
        XCTAssertEqual(try login("t@example.com")["user"]?["email"], "t@example.com")
        // A successful login forgets the account's failures.
        XCTAssertEqual(try store.count(DocumentAuthRepository.throttles), 0)
    }

    func testThrottlePolicyForgetsOldFailures() {
        let p = Self.accountPolicy
        var s = ThrottleState()
        s = p.afterFailure(s, nowMs: 0)
        s = p.afterFailure(s, nowMs: 1_000)
        XCTAssertEqual(s.failures, 2)
        XCTAssertNil(p.retryAfterSeconds(s, nowMs: 1_000))
        // The third failure outside the 15-minute window starts a new count instead of locking.
        s = p.afterFailure(s, nowMs: 900_001)
        XCTAssertEqual(s.failures, 1)
        XCTAssertNil(p.retryAfterSeconds(s, nowMs: 900_001))
        s = p.afterFailure(s, nowMs: 900_002)
        s = p.afterFailure(s, nowMs: 900_003)
        XCTAssertEqual(p.retryAfterSeconds(s, nowMs: 900_003), 60)
        XCTAssertEqual(s.lockouts, 1)
        // Each failure after a lock locks again for twice as long: 2, 4, 8, 16, 32 minutes, then the one-hour cap.
        var t = s
        var locks: [Int64] = []
        for _ in 0..<6 {
            t = p.afterFailure(t, nowMs: t.lockedUntilMs)
            locks.append(t.lockedUntilMs - t.lastFailureMs)
        }
        XCTAssertEqual(locks, [120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000])
        // An hour without failures forgets the key entirely.
        XCTAssertFalse(p.isForgotten(t, nowMs: t.lastFailureMs + 3_600_000))
        XCTAssertTrue(p.isForgotten(t, nowMs: t.lastFailureMs + 3_600_001))
    }

    // MARK: KYC

    static func kycParams(pan: String = "ABCDE1234F", gstin: String? = "27ABCDE1234F1Z0", account: String = "50100123456789",
                          pincode: String = "411001", ifsc: String = "HDFC0001234") -> JSON {
        var p: JSON = [
            "businessType": "proprietorship", "legalName": "Asha Traders", "pan": .string(pan),
            "address": ["line1": "12 MG Road", "city": "Pune", "state": "Maharashtra", "pincode": .string(pincode)],
            "bank": ["accountNumber": .string(account), "ifsc": .string(ifsc), "holderName": "Asha Rao"],
        ]
        if let gstin { p["gstin"] = .string(gstin) }
        return p
    }

    func testKYCRefusesBadNumbersAndStoresGoodOnesSealed() throws {
        let userId = try XCTUnwrap(try register("k@example.com")["user"]?["id"]?.stringValue)
        let merchant = Actor(userId: userId, role: .merchant)

        let bad = refusal("kyc.submit", Self.kycParams(pan: "ABCD1234F", gstin: "27ABCDE1234F1Z", account: "12345", pincode: "011001",
                                                       ifsc: "HDFC1001234"), as: merchant)
        XCTAssertEqual(bad?.code, ErrorCode.invalidParams.rawValue)
        XCTAssertEqual(Set((bad?.data?["fields"]?.arrayValue ?? []).compactMap { $0["path"]?.stringValue }),
                       ["pan", "gstin", "bank.accountNumber", "address.pincode", "bank.ifsc"])
        // A GSTIN whose check character is wrong.
        let check = refusal("kyc.submit", Self.kycParams(gstin: "27ABCDE1234F1Z5"), as: merchant)
        XCTAssertEqual((check?.data?["fields"]?.arrayValue ?? []).compactMap { $0["path"]?.stringValue }, ["gstin"])
        XCTAssertEqual(try store.count(DocumentAuthRepository.kyc), 0, "refused submissions store nothing")
        XCTAssertEqual(try call("kyc.status", ["userId": .string(userId)], as: .system)["status"], "not_started")

        let submitted = try call("kyc.submit", Self.kycParams(), as: merchant)
        XCTAssertEqual(submitted["status"], "submitted")
        XCTAssertEqual(submitted["panMasked"]?.stringValue?.contains("ABCDE1234F"), false)
        let stored = try XCTUnwrap(try store.get(DocumentAuthRepository.kyc, id: userId)).serialized()
        for secret in ["ABCDE1234F", "50100123456789", "27ABCDE1234F1Z0"] { XCTAssertFalse(stored.contains(secret), secret) }

        XCTAssertEqual(refusal("kyc.approve", ["userId": .string(userId)], as: merchant)?.code, ErrorCode.forbidden.rawValue)
        clock.advance(ms: 1_000)
        let approved = try call("kyc.approve", ["userId": .string(userId)], as: Self.admin)
        XCTAssertEqual(approved["status"], "approved")
        XCTAssertEqual(approved["history"]?.arrayValue?.last?["at"], .string(Clock.iso8601(millis: clock.nowMillis())))
        XCTAssertEqual(try call("kyc.status", ["userId": .string(userId)], as: .system)["status"], "approved")
        XCTAssertEqual(refusal("kyc.reject", ["userId": .string(userId), "reason": "late"], as: Self.admin)?.reason, "kyc_not_submitted")
        XCTAssertEqual(refusal("kyc.submit", Self.kycParams(), as: merchant)?.reason, "kyc_already_approved")
        XCTAssertEqual(try login("k@example.com")["user"]?["kycStatus"], "approved")
    }
}
