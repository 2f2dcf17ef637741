import Crypto
import Foundation
import JSON
import RPC
import Runtime
import TestSupport
import XCTest

/// AuthSvc as a real process on a real socket with a real SQLite file: accounts, tokens,
/// throttling and KYC, asserted through the answers a caller (the Gateway) would get.
final class AuthIntegrationTests: XCTestCase {
    private var sets: [ProcessSet] = []
    private var clients: [RPCClient] = []

    override func tearDown() {
        for c in clients { c.closeAll() }
        for s in sets { s.cleanup() }
        clients = []
        sets = []
    }

    // MARK: helpers

    /// Starts AuthSvc in a fresh process set and returns it with a client.
    private func startAuth(env: [String: String] = [:]) throws -> (ProcessSet, RPCClient) {
        let ps = ProcessSet(env: env)
        sets.append(ps)
        try ps.start("auth")
        let c = RPCClient(runDir: ps.runDir, service: "auth")
        clients.append(c)
        return (ps, c)
    }

    private func ctx(_ actor: Actor?, requestId: String? = nil) -> RPCContext { Self.ctx(actor, requestId: requestId) }

    private static func ctx(_ actor: Actor?, requestId: String? = nil) -> RPCContext {
        RPCContext.new(actor: actor, timeoutMs: 60_000, requestId: requestId)
    }

    private func merchant(_ userId: String) -> Actor { Actor(userId: userId, role: .merchant) }
    private func admin(_ userId: String) -> Actor { Actor(userId: userId, role: .admin) }

    private func err(_ c: RPCClient, _ method: String, _ params: JSON, actor: Actor?, requestId: String? = nil) -> RPCError? {
        Self.err(c, method, params, actor: actor, requestId: requestId)
    }

    /// The error a call ends with, or nil when it succeeds.
    private static func err(_ c: RPCClient, _ method: String, _ params: JSON, actor: Actor?, requestId: String? = nil) -> RPCError? {
        do {
            _ = try c.call(method, params, ctx: ctx(actor, requestId: requestId))
            return nil
        } catch {
            return error
        }
    }

    private func assertError(_ e: RPCError?, code: Int, reason: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        guard let e else { return XCTFail("expected error \(code), got success", file: file, line: line) }
        XCTAssertEqual(e.code, code, "\(e)", file: file, line: line)
        if let reason { XCTAssertEqual(e.reason, reason, "\(e)", file: file, line: line) }
    }

    private func fieldPaths(_ e: RPCError?) -> Set<String> {
        Set((e?.data?["fields"]?.arrayValue ?? []).compactMap { $0["path"]?.stringValue })
    }

    @discardableResult
    private func register(_ c: RPCClient, _ email: String, password: String = "correct horse battery", name: String = "Asha Rao",
                          phone: String = "9876543210") throws -> JSON {
        try c.call("auth.register", ["email": .string(email), "password": .string(password), "name": .string(name), "phone": .string(phone)],
                   ctx: ctx(nil))
    }

    private func login(_ c: RPCClient, _ email: String, _ password: String, address: String? = nil) throws(RPCError) -> JSON {
        var p: JSON = ["email": .string(email), "password": .string(password)]
        if let address { p["clientAddress"] = .string(address) }
        return try c.call("auth.login", p, ctx: ctx(nil))
    }

    private func userId(_ session: JSON) -> String { session["user"]?["id"]?.stringValue ?? "" }

    private func signingKey(_ ps: ProcessSet) throws -> [UInt8] {
        let text = try String(contentsOfFile: ps.dataDir + "/token-signing.key", encoding: .utf8)
        return [UInt8](try XCTUnwrap(Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines))))
    }

    private static func kycParams(pan: String = "ABCDE1234F", gstin: String? = "27ABCDE1234F1Z0", account: String = "50100123456789",
                                  pincode: String = "411001", ifsc: String = "HDFC0001234") -> JSON {
        var p: JSON = [
            "businessType": "proprietorship", "legalName": "Asha Traders", "pan": .string(pan),
            "address": ["line1": "12 MG Road", "city": "Pune", "state": "Maharashtra", "pincode": .string(pincode)],
            "bank": ["accountNumber": .string(account), "ifsc": .string(ifsc), "holderName": "Asha Rao"],
        ]
        if let gstin { p["gstin"] = .string(gstin) }
        return p
    }

    private func makeAdmin(_ c: RPCClient, email: String = "ops@oops.example") throws -> String {
        let r = try c.call("users.ensureAdmin", ["email": .string(email), "password": "admin pass phrase 1", "name": "Ops"],
                           ctx: ctx(.system))
        XCTAssertEqual(r["user"]?["role"], "admin")
        return r["user"]?["id"]?.stringValue ?? ""
    }

    // MARK: accounts

    func testRegisterLoginAndMeShowOneNormalisedMerchant() throws {
        let (_, c) = try startAuth()
        let s = try register(c, "  Asha.Rao@Example.COM ", phone: "+91 98765 43210")
        let user = try XCTUnwrap(s["user"])
        XCTAssertEqual(user["email"], "asha.rao@example.com")
        XCTAssertEqual(user["role"], "merchant")
        XCTAssertEqual(user["kycStatus"], "not_started")
        XCTAssertEqual(user["phone"], "9876543210")
        XCTAssertTrue(userId(s).hasPrefix("usr_"))
        XCTAssertEqual(s["expiresIn"], 900)
        XCTAssertEqual(s["refreshToken"]?.stringValue.flatMap(Base64URL.decode)?.count, 32)

        let l = try login(c, "ASHA.RAO@example.com", "correct horse battery")
        XCTAssertEqual(userId(l), userId(s))
        XCTAssertNotEqual(l["refreshToken"], s["refreshToken"])

        let me = try c.call("auth.me", [:], ctx: ctx(merchant(userId(s))))
        XCTAssertEqual(me["user"]?["id"]?.stringValue, userId(s))
        XCTAssertEqual(me["user"]?["email"], "asha.rao@example.com")
        XCTAssertEqual(me["user"]?["name"], "Asha Rao")
        XCTAssertNotNil(me["user"]?["createdAt"]?.stringValue)
        XCTAssertNil(me["user"]?["passwordHash"])
        assertError(err(c, "auth.me", [:], actor: nil), code: -32001)
    }

    func testRegisterRefusesWeakPasswordsBadPhonesAndAnyRoleField() throws {
        let (_, c) = try startAuth()
        func reg(_ extra: [String: JSON]) -> RPCError? {
            var p: [String: JSON] = ["email": "new@example.com", "password": "correct horse battery", "name": "N", "phone": "9876543210"]
            for (k, v) in extra { p[k] = v }
            return err(c, "auth.register", .object(p), actor: nil)
        }
        for bad in ["Password123", "short1", "qwertyuiop", String(repeating: "a", count: 129)] {
            let e = reg(["password": .string(bad)])
            assertError(e, code: -32602)
            XCTAssertEqual(fieldPaths(e), ["password"], bad)
        }
        let e = reg(["phone": "12345", "email": "not-an-email"])
        assertError(e, code: -32602)
        XCTAssertEqual(fieldPaths(e), ["phone", "email"])
        // Nobody becomes admin by asking for it.
        let r = reg(["role": "admin"])
        assertError(r, code: -32602)
        XCTAssertEqual(fieldPaths(r), ["role"])
        assertError(err(c, "auth.login", ["email": "new@example.com", "password": "correct horse battery"], actor: nil),
                    code: -32001, reason: "invalid_credentials")
    }

    func testFiftyConcurrentRegistrationsOfOneEmailCreateExactlyOneAccount() throws {
        // A hash line long enough for all 50: this is about the race, not about admission (a
        // full line would refuse some with -32050 before they reach the store).
        let (ps, c) = try startAuth(env: ["OOPS_HASH_QUEUE_REGISTER": "64"])
        let results = Locked<[Int: Result<JSON, RPCError>]>([:])
        // One client (one connection) per caller, as 50 Gateways would be. A shared RPCClient
        // would also work but its pick() has a race under bursts (reported), which is not what
        // this test is about.
        let callers = (0..<50).map { _ in RPCClient(runDir: ps.runDir, service: "auth") }
        clients += callers
        let finished = inParallel(50, timeoutSeconds: 180) { i in
            let params: JSON = ["email": "Race@Example.com", "password": .string("race password \(i)"), "name": "Racer",
                                "phone": "9876543210"]
            do throws(RPCError) {
                let r = try callers[i].call("auth.register", params, ctx: RPCContext.new(actor: nil, timeoutMs: 120_000))
                results.withLock { $0[i] = .success(r) }
            } catch {
                results.withLock { $0[i] = .failure(error) }
            }
        }
        XCTAssertTrue(finished)
        let all = results.current
        let winners = all.filter { if case .success = $0.value { return true } else { return false } }
        XCTAssertEqual(winners.count, 1)
        for (_, r) in all {
            if case .failure(let e) = r {
                XCTAssertEqual(e.code, -32009, "\(e)")
                XCTAssertEqual(e.reason, "email_taken")
            }
        }
        // Exactly the winner's password opens the one account.
        let w = try XCTUnwrap(winners.first)
        let s = try login(c, "race@example.com", "race password \(w.key)")
        XCTAssertEqual(userId(s), try w.value.get()["user"]?["id"]?.stringValue)
        assertError(err(c, "auth.login", ["email": "race@example.com", "password": .string("race password \((w.key + 1) % 50)")], actor: nil),
                    code: -32001, reason: "invalid_credentials")
    }

    func testWrongPasswordAndUnknownEmailAreIndistinguishable() throws {
        let (_, c) = try startAuth()
        try register(c, "known@example.com")
        let wrong = err(c, "auth.login", ["email": "known@example.com", "password": "not the password"], actor: nil, requestId: "req_same")
        let unknown = err(c, "auth.login", ["email": "unknown@example.com", "password": "not the password"], actor: nil, requestId: "req_same")
        assertError(wrong, code: -32001, reason: "invalid_credentials")
        XCTAssertEqual(wrong, unknown)  // code, message and data, byte for byte

        // Both pay for one argon2id verification; without the decoy the unknown email would answer
        // in about a millisecond against tens of milliseconds.
        func median(_ email: String) -> Double {
            var ts: [Double] = []
            for _ in 0..<3 {
                let t0 = Date()
                _ = err(c, "auth.login", ["email": .string(email), "password": "not the password"], actor: nil)
                ts.append(Date().timeIntervalSince(t0))
            }
            return ts.sorted()[1]
        }
        try register(c, "timed@example.com")
        let known = median("timed@example.com")
        let unknownT = median("nobody@example.com")
        XCTAssertGreaterThan(unknownT, known * 0.3, "unknown \(unknownT)s vs known \(known)s")
    }

    func testRepeatedFailuresAreThrottledWithDoublingDelaysThatSurviveARestart() throws {
        let (ps, c) = try startAuth(env: ["OOPS_LOGIN_LOCK_S": "1", "OOPS_LOGIN_ADDR_MAX_FAILURES": "8"])
        try register(c, "victim@example.com")
        func attempt(_ email: String, _ password: String = "guess guess guess", address: String? = nil) -> RPCError? {
            var p: JSON = ["email": .string(email), "password": .string(password)]
            if let address { p["clientAddress"] = .string(address) }
            return err(c, "auth.login", p, actor: nil)
        }
        for _ in 0..<5 { assertError(attempt("victim@example.com"), code: -32001, reason: "invalid_credentials") }
        // Locked: even the right password is refused, with a hint when to come back.
        let locked = attempt("victim@example.com", "correct horse battery")
        assertError(locked, code: -32029, reason: "rate_limited")
        XCTAssertEqual(locked?.data?["retryAfter"], 1)

        // After the lock, one more failure locks again for twice as long.
        usleep(1_100_000)
        assertError(attempt("victim@example.com"), code: -32001, reason: "invalid_credentials")
        let again = attempt("victim@example.com", "correct horse battery")
        assertError(again, code: -32029)
        XCTAssertEqual(again?.data?["retryAfter"], 2)
        usleep(2_100_000)
        XCTAssertNil(attempt("victim@example.com", "correct horse battery"))

        // Unknown emails are counted alike, so throttling reveals nothing; and the count is in
        // the store, so a restarted instance carries on from it.
        for _ in 0..<4 { assertError(attempt("ghost@example.com"), code: -32001) }
        ps.stopAll()
        try ps.start("auth")
        assertError(attempt("ghost@example.com"), code: -32001)
        assertError(attempt("ghost@example.com"), code: -32029, reason: "rate_limited")

        // One address spraying many accounts is stopped by the per-address counter.
        for i in 0..<8 { assertError(attempt("spray\(i)@example.com", address: "203.0.113.9"), code: -32001) }
        assertError(attempt("victim@example.com", "correct horse battery", address: "203.0.113.9"), code: -32029)
        XCTAssertNil(attempt("victim@example.com", "correct horse battery", address: "198.51.100.7"))
    }

    // MARK: tokens

    func testRefreshRotatesAndReusingASpentTokenRevokesTheWholeFamily() throws {
        let (_, c) = try startAuth()
        let s0 = try register(c, "rotate@example.com")
        let other = try login(c, "rotate@example.com", "correct horse battery")  // a second login: its own family
        func refresh(_ t: JSON?) throws(RPCError) -> JSON { try c.call("auth.refresh", ["refreshToken": t ?? .null], ctx: ctx(nil)) }

        let s1 = try refresh(s0["refreshToken"])
        XCTAssertNotEqual(s1["refreshToken"], s0["refreshToken"])
        XCTAssertEqual(userId(s1), userId(s0))
        let s2 = try refresh(s1["refreshToken"])

        assertError(err(c, "auth.refresh", ["refreshToken": s0["refreshToken"]!], actor: nil), code: -32001, reason: "refresh_reused")
        // The newest token of the family dies with it; the other login's family lives on.
        assertError(err(c, "auth.refresh", ["refreshToken": s2["refreshToken"]!], actor: nil), code: -32001)
        XCTAssertNoThrow(try refresh(other["refreshToken"]))

        var tampered = Array(other["refreshToken"]!.stringValue!)
        tampered[5] = tampered[5] == "A" ? "B" : "A"
        assertError(err(c, "auth.refresh", ["refreshToken": .string(String(tampered))], actor: nil), code: -32001,
                    reason: "invalid_refresh_token")
    }

    func testRefreshTokenExpires() throws {
        let (_, c) = try startAuth(env: ["OOPS_REFRESH_TTL_S": "1"])
        let s = try register(c, "short@example.com")
        usleep(1_200_000)
        assertError(err(c, "auth.refresh", ["refreshToken": s["refreshToken"]!], actor: nil), code: -32001, reason: "refresh_expired")
    }

    func testLogoutRevokesOnlyTheOwnersFamily() throws {
        let (_, c) = try startAuth()
        let a = try register(c, "a@example.com")
        let b = try register(c, "b@example.com")
        assertError(err(c, "auth.logout", ["refreshToken": b["refreshToken"]!], actor: merchant(userId(a))), code: -32004)
        assertError(err(c, "auth.logout", ["refreshToken": a["refreshToken"]!], actor: nil), code: -32001)
        let b1 = try c.call("auth.refresh", ["refreshToken": b["refreshToken"]!], ctx: ctx(nil))  // untouched by A's attempt

        XCTAssertEqual(try c.call("auth.logout", ["refreshToken": a["refreshToken"]!], ctx: ctx(merchant(userId(a)))), .object([:]))
        assertError(err(c, "auth.refresh", ["refreshToken": a["refreshToken"]!], actor: nil), code: -32001)
        // Logging out with a later token of a family revokes the earlier rotations too.
        XCTAssertEqual(try c.call("auth.logout", ["refreshToken": b1["refreshToken"]!], ctx: ctx(merchant(userId(b)))), .object([:]))
        assertError(err(c, "auth.refresh", ["refreshToken": b1["refreshToken"]!], actor: nil), code: -32001, reason: "refresh_revoked")
    }

    func testAccessTokenVerifiesWithTheSharedKeyFileAndFailsWhenTamperedExpiredOrUnderAnotherKid() throws {
        let (ps, c) = try startAuth()
        let s = try register(c, "jwt@example.com")
        let token = try XCTUnwrap(s["accessToken"]?.stringValue)
        let key = try signingKey(ps)
        let verifier = JWTSigner(kid: "k1", keys: ["k1": key])
        let now = Int64(Date().timeIntervalSince1970)
        let claims = try verifier.verify(token, nowSeconds: now)
        XCTAssertEqual(claims["sub"]?.stringValue, userId(s))
        XCTAssertEqual(claims["role"], "merchant")
        XCTAssertEqual(claims["typ"], "access")
        let iat = try XCTUnwrap(claims["iat"]?.intValue), exp = try XCTUnwrap(claims["exp"]?.intValue)
        XCTAssertEqual(exp - iat, 900)
        XCTAssertLessThanOrEqual(abs(iat - now), 5)

        // A merchant rewriting its role to admin breaks the signature.
        let parts = token.split(separator: ".").map(String.init)
        var forged = claims
        forged["role"] = "admin"
        let forgedToken = parts[0] + "." + Base64URL.encode(forged.serializedBytes()) + "." + parts[2]
        XCTAssertThrowsError(try verifier.verify(forgedToken, nowSeconds: now)) { XCTAssertEqual($0 as? JWTSigner.Failure, .badSignature) }
        XCTAssertThrowsError(try verifier.verify(token, nowSeconds: exp)) { XCTAssertEqual($0 as? JWTSigner.Failure, .expired) }
        let otherKid = JWTSigner(kid: "k2", keys: ["k2": key])
        XCTAssertThrowsError(try otherKid.verify(token, nowSeconds: now)) { XCTAssertEqual($0 as? JWTSigner.Failure, .unknownKey) }
        let otherKey = JWTSigner(kid: "k1", keys: ["k1": Sodium.randomBytes(32)])
        XCTAssertThrowsError(try otherKey.verify(token, nowSeconds: now)) { XCTAssertEqual($0 as? JWTSigner.Failure, .badSignature) }

        // Configured lifetime and kid are honoured, and a real second later the token is dead.
        let (ps2, c2) = try startAuth(env: ["OOPS_ACCESS_TTL_S": "1", "OOPS_TOKEN_KID": "k7"])
        let s2 = try register(c2, "jwt2@example.com")
        XCTAssertEqual(s2["expiresIn"], 1)
        let t2 = try XCTUnwrap(s2["accessToken"]?.stringValue)
        let v2 = JWTSigner(kid: "k7", keys: ["k7": try signingKey(ps2)])
        XCTAssertNoThrow(try v2.verify(t2, nowSeconds: Int64(Date().timeIntervalSince1970)))
        XCTAssertThrowsError(try verifier.verify(t2, nowSeconds: now)) { XCTAssertEqual($0 as? JWTSigner.Failure, .unknownKey) }
        usleep(2_100_000)
        XCTAssertThrowsError(try v2.verify(t2, nowSeconds: Int64(Date().timeIntervalSince1970))) {
            XCTAssertEqual($0 as? JWTSigner.Failure, .expired)
        }
    }

    // MARK: KYC

    func testKYCFormatErrorsNameEveryBadField() throws {
        let (_, c) = try startAuth()
        let m = merchant(userId(try register(c, "kycbad@example.com")))
        let e = err(c, "kyc.submit", Self.kycParams(pan: "ABCD1234F", gstin: "27ABCDE1234F1Z", account: "12345", pincode: "011001",
                                                    ifsc: "HDFC1001234"), actor: m)
        assertError(e, code: -32602)
        XCTAssertEqual(fieldPaths(e), ["pan", "gstin", "bank.accountNumber", "address.pincode", "bank.ifsc"])
        var missing = Self.kycParams()
        missing["bank"] = ["ifsc": "HDFC0001234", "holderName": "Asha"]
        XCTAssertEqual(fieldPaths(err(c, "kyc.submit", missing, actor: m)), ["bank.accountNumber"])
        // Nothing was stored by the refused attempts.
        XCTAssertEqual(try c.call("kyc.get", [:], ctx: ctx(m))["status"], "not_started")
    }

    func testGSTINCheckCharacterIsVerified() throws {
        let (_, c) = try startAuth()
        // 27ABCDE1234F1Z0: check character 0 computed with the mod-36 scheme for "27ABCDE1234F1Z".
        let wrong = err(c, "kyc.submit", Self.kycParams(gstin: "27ABCDE1234F1Z5"), actor: merchant(userId(try register(c, "g1@example.com"))))
        assertError(wrong, code: -32602)
        XCTAssertEqual(fieldPaths(wrong), ["gstin"])
        XCTAssertTrue(wrong?.data?["fields"]?.arrayValue?.first?["message"]?.stringValue?.contains("check character") ?? false)
        // The GSTIN must carry the PAN given.
        XCTAssertEqual(fieldPaths(err(c, "kyc.submit", Self.kycParams(pan: "ABCDE1234G", gstin: "27ABCDE1234F1Z0"),
                                      actor: merchant(userId(try register(c, "g2@example.com"))))), ["gstin"])
        // Self-consistent example, a published real-world GSTIN, and lower-case input with spaces.
        let ok = try c.call("kyc.submit", Self.kycParams(gstin: "27ABCDE1234F1Z0"), ctx: ctx(merchant(userId(try register(c, "g3@example.com")))))
        XCTAssertEqual(ok["status"], "submitted")
        XCTAssertEqual(ok["gstinMasked"], "27XXXXX1234X1Z0")
        XCTAssertNoThrow(try c.call("kyc.submit", Self.kycParams(pan: "AAPFU0939F", gstin: "27AAPFU0939F1ZV"),
                                    ctx: ctx(merchant(userId(try register(c, "g4@example.com"))))))
        XCTAssertNoThrow(try c.call("kyc.submit", Self.kycParams(pan: "aapfu 0939 f", gstin: "27aapfu0939f1zv", ifsc: "hdfc0001234"),
                                    ctx: ctx(merchant(userId(try register(c, "g5@example.com"))))))
    }

    func testSubmitThenAdminApprovesAndTheStatusIsApproved() throws {
        let (_, c) = try startAuth()
        let uid = userId(try register(c, "shop@example.com"))
        let m = merchant(uid)
        let adminId = try makeAdmin(c)
        let a = admin(adminId)
        XCTAssertEqual(userId(try login(c, "ops@oops.example", "admin pass phrase 1")), adminId)

        XCTAssertEqual(try c.call("kyc.status", ["userId": .string(uid)], ctx: ctx(.system))["status"], "not_started")
        let sub = try c.call("kyc.submit", Self.kycParams(), ctx: ctx(m))
        XCTAssertEqual(sub["status"], "submitted")
        assertError(err(c, "kyc.submit", Self.kycParams(), actor: m), code: -32022, reason: "kyc_already_submitted")

        let list = try c.call("kyc.list", ["status": "submitted"], ctx: ctx(a))
        let item = try XCTUnwrap(list["items"]?.arrayValue?.first { $0["userId"]?.stringValue == uid })
        XCTAssertEqual(item["email"], "shop@example.com")
        XCTAssertEqual(item["panMasked"], "XXXXX1234X")

        let approved = try c.call("kyc.approve", ["userId": .string(uid)], ctx: ctx(a))
        XCTAssertEqual(approved["status"], "approved")
        let history = try XCTUnwrap(approved["history"]?.arrayValue)
        XCTAssertEqual(history.map { $0["status"] }, ["submitted", "approved"])
        XCTAssertEqual(history.map { $0["by"]?.stringValue }, [uid, adminId])
        XCTAssertNotNil(history[1]["at"]?.stringValue)

        XCTAssertEqual(try c.call("kyc.status", ["userId": .string(uid)], ctx: ctx(.system))["status"], "approved")
        XCTAssertEqual(try c.call("auth.me", [:], ctx: ctx(m))["user"]?["kycStatus"], "approved")
        assertError(err(c, "kyc.approve", ["userId": .string(uid)], actor: a), code: -32022, reason: "kyc_not_submitted")
        assertError(err(c, "kyc.submit", Self.kycParams(), actor: m), code: -32022, reason: "kyc_already_approved")
        assertError(err(c, "kyc.status", ["userId": "usr_nobody"], actor: .system), code: -32004)
    }

    func testRejectedKYCCanBeResubmittedAndKeepsItsHistory() throws {
        let (_, c) = try startAuth()
        let uid = userId(try register(c, "again@example.com"))
        let a = admin(try makeAdmin(c))
        assertError(err(c, "kyc.reject", ["userId": .string(uid), "reason": "blurry"], actor: a), code: -32022, reason: "kyc_not_submitted")
        _ = try c.call("kyc.submit", Self.kycParams(), ctx: ctx(merchant(uid)))
        _ = try c.call("kyc.reject", ["userId": .string(uid), "reason": "Bank holder name does not match"], ctx: ctx(a))
        let seen = try c.call("kyc.get", [:], ctx: ctx(merchant(uid)))
        XCTAssertEqual(seen["status"], "rejected")
        XCTAssertEqual(seen["rejectionReason"], "Bank holder name does not match")

        let re = try c.call("kyc.submit", Self.kycParams(gstin: nil, account: "112233445566"), ctx: ctx(merchant(uid)))
        XCTAssertEqual(re["status"], "submitted")
        XCTAssertEqual(re["rejectionReason"], .null)
        XCTAssertEqual(re["gstinMasked"], .null)
        XCTAssertEqual(re["bank"]?["accountNumberMasked"], "XXXXXXXX5566")
        XCTAssertEqual(re["history"]?.arrayValue?.map { $0["status"] }, ["submitted", "rejected", "submitted"])
        XCTAssertEqual(re["history"]?.arrayValue?[1]["reason"], "Bank holder name does not match")
    }

    func testTwoAdminsDecidingAtOnceCannotBothWin() throws {
        let (ps, c) = try startAuth()
        let c2 = RPCClient(runDir: ps.runDir, service: "auth")  // each admin through its own Gateway
        clients.append(c2)
        let a1 = admin(try makeAdmin(c, email: "one@oops.example")), a2 = admin(try makeAdmin(c, email: "two@oops.example"))
        for i in 0..<5 {
            let uid = userId(try register(c, "race\(i)@example.com"))
            _ = try c.call("kyc.submit", Self.kycParams(), ctx: ctx(merchant(uid)))
            let outcomes = Locked<[RPCError?]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { k in
                let e = k == 0 ? Self.err(c, "kyc.approve", ["userId": .string(uid)], actor: a1)
                    : Self.err(c2, "kyc.reject", ["userId": .string(uid), "reason": "no"], actor: a2)
                outcomes.withLock { $0.append(e) }
            }
            let errs = outcomes.current
            XCTAssertEqual(errs.filter { $0 == nil }.count, 1)
            XCTAssertEqual(errs.compactMap { $0?.reason }, ["kyc_not_submitted"])
            let h = try c.call("kyc.get", [:], ctx: ctx(merchant(uid)))["history"]?.arrayValue ?? []
            XCTAssertEqual(h.count, 2)
        }
    }

    func testMerchantsGetForbiddenOnAdminAndSystemMethods() throws {
        let (_, c) = try startAuth()
        let uid = userId(try register(c, "sneaky@example.com"))
        let m = merchant(uid)
        let calls: [(String, JSON)] = [
            ("kyc.list", [:]), ("kyc.approve", ["userId": .string(uid)]), ("kyc.reject", ["userId": .string(uid), "reason": "x"]),
            ("kyc.status", ["userId": .string(uid)]),
            ("users.ensureAdmin", ["email": "sneaky@example.com", "password": "my own password 1", "name": "Me"]),
        ]
        for (method, params) in calls {
            assertError(err(c, method, params, actor: m), code: -32003, reason: "forbidden")
        }
        XCTAssertEqual(try c.call("auth.me", [:], ctx: ctx(m))["user"]?["role"], "merchant")
        // Admins review but cannot submit KYC as merchants.
        assertError(err(c, "kyc.submit", Self.kycParams(), actor: admin(try makeAdmin(c))), code: -32003)
    }

    func testSensitiveKYCNumbersAreMaskedAndNeverStoredOrLoggedInClear() throws {
        let (ps, c) = try startAuth(env: ["OOPS_LOG_LEVEL": "debug"])
        let uid = userId(try register(c, "secret@example.com"))
        let pan = "PQRST6789K", gstin = "29PQRST6789K1ZS", account = "918273645501"
        let sub = try c.call("kyc.submit", Self.kycParams(pan: pan, gstin: gstin, account: account), ctx: ctx(merchant(uid)))
        let got = try c.call("kyc.get", [:], ctx: ctx(merchant(uid)))
        XCTAssertEqual(got["panMasked"], "XXXXX6789X")
        XCTAssertEqual(got["gstinMasked"], "29XXXXX6789X1ZS")
        XCTAssertEqual(got["bank"]?["accountNumberMasked"], "XXXXXXXX5501")
        XCTAssertEqual(got["bank"]?["ifsc"], "HDFC0001234")
        XCTAssertEqual(got["address"]?["pincode"], "411001")
        let adminView = try c.call("kyc.list", [:], ctx: ctx(admin(try makeAdmin(c))))
        for text in [sub.serialized(), got.serialized(), adminView.serialized()] {
            for secret in [pan, "PQRST", account] { XCTAssertFalse(text.contains(secret), "\(secret) in \(text)") }
        }
        // Every byte the store wrote (database, WAL, shared memory), while running and after shutdown.
        func storeBytes() throws -> Data {
            var all = Data()
            for f in try FileManager.default.contentsOfDirectory(atPath: ps.dataDir) where f.hasPrefix("auth.sqlite") {
                all.append(try Data(contentsOf: URL(fileURLWithPath: ps.dataDir + "/" + f)))
            }
            return all
        }
        let emailMarker = Data("secret@example.com".utf8)
        for phase in ["running", "stopped"] {
            let bytes = try storeBytes()
            XCTAssertNotNil(bytes.range(of: emailMarker), "the store files were not found (\(phase))")
            for secret in [pan, account, "PQRST6789"] {
                XCTAssertNil(bytes.range(of: Data(secret.utf8)), "\(secret) stored in clear (\(phase))")
            }
            if phase == "running" { ps.stopAll() }
        }
        let log = ps.log("auth-0")
        XCTAssertTrue(log.contains("kyc submitted"), "debug log was not captured")
        for secret in [pan, account, "PQRST6789"] { XCTAssertFalse(log.contains(secret)) }
    }

    func testListPagesNewestFirstWithACursor() throws {
        let (_, c) = try startAuth()
        var ids: [String] = []
        for i in 0..<5 {
            let uid = userId(try register(c, "page\(i)@example.com"))
            _ = try c.call("kyc.submit", Self.kycParams(), ctx: ctx(merchant(uid)))
            ids.append(uid)
        }
        let a = admin(try makeAdmin(c))
        var seen: [String] = []
        var cursor: JSON = .null
        repeat {
            var p: JSON = ["limit": 2]
            if !cursor.isNull { p["cursor"] = cursor }
            let page = try c.call("kyc.list", p, ctx: ctx(a))
            let items = page["items"]?.arrayValue ?? []
            XCTAssertLessThanOrEqual(items.count, 2)
            seen += items.compactMap { $0["userId"]?.stringValue }
            cursor = page["nextCursor"] ?? .null
        } while !cursor.isNull && seen.count < 10
        XCTAssertEqual(seen, ids.reversed())
        assertError(err(c, "kyc.list", ["cursor": "garbage!"], actor: a), code: -32602)
    }

    // MARK: admins

    func testAdminFromConfigIsCreatedOnceEvenWhenInstancesStartTogether() throws {
        let env = ["OOPS_ADMIN_EMAIL": "Root@Oops.example", "OOPS_ADMIN_PASSWORD": "root pass phrase 9"]
        let ps = ProcessSet(env: env)
        sets.append(ps)
        let errors = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 3) { i in
            do { try ps.start("auth", instance: i) } catch { errors.withLock { $0.append("\(error)") } }
        }
        XCTAssertEqual(errors.current, [])
        let c = RPCClient(runDir: ps.runDir, service: "auth")
        clients.append(c)
        XCTAssertEqual(c.instancePaths().count, 3)
        let s = try login(c, "root@oops.example", "root pass phrase 9")
        XCTAssertEqual(s["user"]?["role"], "admin")
        let r = try c.call("users.ensureAdmin", ["email": "root@oops.example", "password": "root pass phrase 9", "name": "Root"],
                           ctx: ctx(.system))
        XCTAssertEqual(r["created"], false)
        XCTAssertEqual(r["user"]?["id"]?.stringValue, userId(s))
    }

    func testPromotingAnExistingUserResetsItsPasswordAndSessions() throws {
        let (_, c) = try startAuth()
        let m = try register(c, "squatter@example.com", password: "squatter pass 1")
        let r = try c.call("users.ensureAdmin", ["email": "squatter@example.com", "password": "operator pass 1", "name": "Ops"],
                           ctx: ctx(.system))
        XCTAssertEqual(r["created"], false)
        XCTAssertEqual(r["user"]?["id"]?.stringValue, userId(m))
        XCTAssertEqual(r["user"]?["role"], "admin")
        assertError(err(c, "auth.login", ["email": "squatter@example.com", "password": "squatter pass 1"], actor: nil), code: -32001)
        assertError(err(c, "auth.refresh", ["refreshToken": m["refreshToken"]!], actor: nil), code: -32001)
        XCTAssertEqual(try login(c, "squatter@example.com", "operator pass 1")["user"]?["role"], "admin")
    }

    func testDiscoverDescribesEveryMethod() throws {
        let (_, c) = try startAuth()
        let doc = try c.call("rpc.discover", [:], ctx: ctx(nil))
        let names = Set((doc["methods"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue })
        for m in ["auth.register", "auth.login", "auth.refresh", "auth.logout", "auth.me", "kyc.submit", "kyc.get", "kyc.list",
                  "kyc.approve", "kyc.reject", "kyc.status", "users.ensureAdmin"] {
            XCTAssertTrue(names.contains(m), m)
        }
        let health = try c.call("rpc.health", [:], ctx: ctx(nil))
        XCTAssertEqual(health["status"], "ok")
        XCTAssertEqual(health["checks"]?["store"]?["ok"], true)
    }
}
