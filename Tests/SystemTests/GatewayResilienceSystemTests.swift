import XCTest
import Foundation
import JSON
import Runtime
import TestSupport

/// The Gateway when things go wrong around it: rate limits (per address, per user, stricter on
/// login and sign-up), a flood of sign-ups, a killed service, a frozen one. Its own process set,
/// since services are killed here; extra Gateways with small limits share that set's sockets and
/// keys.
final class GatewayResilienceSystemTests: XCTestCase {
    nonisolated(unsafe) static var system: OOPSSystem?
    var sys: OOPSSystem { Self.system! }
    static let rpcTimeoutMs = 1500

    override class func setUp() {
        do {
            system = try OOPSSystem(extraEnv: ["OOPS_RPC_TIMEOUT_MS": String(rpcTimeoutMs)])
        } catch {
            XCTFail("system did not start: \(error)")
        }
    }

    override class func tearDown() {
        system?.stop()
        system = nil
    }

    override func setUpWithError() throws {
        try XCTSkipIf(Self.system == nil, "system did not start")
    }

    /// Another Gateway over the same services, with its own settings; returns its port.
    func extraGateway(_ key: String, _ env: [String: String]) throws -> UInt16 {
        let port = try sys.startExtraGateway(key, extraEnv: env).httpPort
        // Wait by connecting only: a request would spend a token of the buckets under test.
        let up = waitUntil(timeoutMs: 15_000, intervalMs: 50) { (try? RawHTTPConnection(port: port)) != nil }
        XCTAssertTrue(up, "gateway \(key) did not listen: \(sys.procs.log(key).suffix(500))")
        return port
    }

    func assertRateLimited(_ r: RawResponse, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 429, "\(what): \(r.text)", file: file, line: line)
        XCTAssertEqual(r.errorCode, "rate_limited", what, file: file, line: line)
        let ra = Int(r.header("Retry-After") ?? "") ?? 0
        XCTAssertGreaterThanOrEqual(ra, 1, "\(what): Retry-After \(r.header("Retry-After") ?? "missing")", file: file, line: line)
        XCTAssertEqual(r.json["error"]?["retryAfter"]?.intValue, Int64(ra), what, file: file, line: line)
        XCTAssertNotNil(r.header("X-Request-Id"), file: file, line: line)
    }

    // MARK: - rate limits

    func testPerAddressLimitAnswers429WithRetryAfterAndSparesOtherAddresses() throws {
        let port = try extraGateway("gw-ip", ["OOPS_RATE_IP_PER_S": "1", "OOPS_RATE_IP_BURST": "5"])
        for i in 0..<5 {
            XCTAssertEqual(rawRequest(port: port, "GET", "/healthz").status, 200, "request \(i) is within the burst")
        }
        let refused = rawRequest(port: port, "GET", "/healthz")
        assertRateLimited(refused, "sixth request from 127.0.0.1")
        XCTAssertEqual(refused.header("Retry-After"), "1", "one token per second comes back in a second")
        // Unknown routes and authenticated ones count against the address too.
        assertRateLimited(rawRequest(port: port, "GET", "/auth/me"), "authenticated route from the same address")
        // Another client address has a bucket of its own.
        let other = rawRequest(port: port, "GET", "/healthz", sourceAddress: "127.0.0.2")
        XCTAssertEqual(other.status, 200, "127.0.0.2 is limited by 127.0.0.1's traffic: \(other.text)")
        // And the bucket refills.
        usleep(1_200_000)
        XCTAssertEqual(rawRequest(port: port, "GET", "/healthz").status, 200, "a token is back after Retry-After")
    }

    func testPerUserLimitAnswers429ToThatUserOnly() throws {
        let a = sys.register("rl-a"), b = sys.register("rl-b")
        let port = try extraGateway("gw-user", ["OOPS_RATE_USER_PER_S": "1", "OOPS_RATE_USER_BURST": "3"])
        for i in 0..<3 {
            XCTAssertEqual(rawRequest(port: port, "GET", "/auth/me", token: a.access).status, 200, "request \(i) within A's burst")
        }
        assertRateLimited(rawRequest(port: port, "GET", "/auth/me", token: a.access), "A's fourth request")
        assertRateLimited(rawRequest(port: port, "GET", "/wallet", token: a.access), "A on another route")
        XCTAssertEqual(rawRequest(port: port, "GET", "/auth/me", token: b.access).status, 200, "B from the same address is not limited by A")
        XCTAssertEqual(rawRequest(port: port, "GET", "/healthz").status, 200, "anonymous routes are not per-user limited")
    }

    func testLoginHasAStricterLimitOfItsOwn() throws {
        let a = sys.register("rl-login")
        let port = try extraGateway("gw-login", ["OOPS_RATE_LOGIN_PER_MIN": "2", "OOPS_RATE_LOGIN_BURST": "2"])
        let creds: JSON = ["email": .string(a.email), "password": .string(a.password)]
        for i in 0..<2 {
            XCTAssertEqual(rawRequest(port: port, "POST", "/auth/login", json: creds).status, 200, "login \(i) within the burst")
        }
        let refused = rawRequest(port: port, "POST", "/auth/login", json: creds)
        assertRateLimited(refused, "third login in a minute")
        XCTAssertGreaterThanOrEqual(Int(refused.header("Retry-After") ?? "") ?? 0, 20, "2 per minute: the next token is ~30 s away")
        // Correct credentials do not bypass it, other routes are unaffected, other addresses too.
        XCTAssertEqual(rawRequest(port: port, "GET", "/auth/me", token: a.access).status, 200)
        XCTAssertEqual(rawRequest(port: port, "POST", "/auth/refresh", json: ["refreshToken": .string(a.refresh)]).status, 200)
        XCTAssertEqual(rawRequest(port: port, "POST", "/auth/login", json: creds, sourceAddress: "127.0.0.2").status, 200)
    }

    /// Issue 18: sign-ups cost an argon2id hash like logins; 40 parallel ones from one address
    /// all got 201. Now the address's burst gets through and the rest get 429 with Retry-After.
    func testRegistrationHasAPerAddressLimitOfItsOwn() throws {
        let a = sys.register("rl-reg")
        let port = try extraGateway("gw-register", ["OOPS_RATE_REGISTER_PER_MIN": "1", "OOPS_RATE_REGISTER_BURST": "3"])
        @Sendable func signUp(_ tag: String, from address: String? = nil) -> RawResponse {
            rawRequest(port: port, "POST", "/auth/register", json: ["email": .string("\(tag)-\(UInt32.random(in: 0...UInt32.max))@shop.test"),
                                                                    "password": "correct-horse-42", "name": "Shop", "phone": "9876543210"],
                       sourceAddress: address, timeoutS: 30)
        }
        let answers = Locked<[RawResponse]>([])
        DispatchQueue.concurrentPerform(iterations: 12) { i in
            let r = signUp("burst\(i)")
            answers.withLock { $0.append(r) }
        }
        let statuses = answers.current.map(\.status)
        XCTAssertEqual(statuses.filter { $0 == 201 }.count, 3, "the burst of 3 gets through: \(statuses)")
        XCTAssertEqual(statuses.filter { $0 == 429 }.count, 9, "the rest are refused: \(statuses)")
        for r in answers.current where r.status != 201 {
            assertRateLimited(r, "sign-up beyond the burst")
            XCTAssertGreaterThanOrEqual(Int(r.header("Retry-After") ?? "") ?? 0, 30, "1 per minute: the next token is ~60 s away")
        }
        // Another address has its own bucket; logins and other routes from this one are unaffected.
        XCTAssertEqual(signUp("other", from: "127.0.0.2").status, 201)
        XCTAssertEqual(rawRequest(port: port, "POST", "/auth/login", json: ["email": .string(a.email), "password": .string(a.password)]).status, 200)
        XCTAssertEqual(rawRequest(port: port, "GET", "/auth/me", token: a.access).status, 200)
    }

    /// Issue 18: with 150 parallel sign-ups, 25 got 504 after the deadline and another user's
    /// login nearly timed out. With the address limit out of the way, sign-ups beyond what
    /// AuthSvc can hash in time are refused at once (503, `overloaded`, Retry-After), none is a
    /// 504, the refused ones leave nothing behind, and a login arriving in the middle of the flood
    /// gets a hashing slot of its own.
    func testSignUpFloodIsRefusedAtOnceAndLoginsKeepTheirShare() throws {
        let bystander = sys.register("flood-bystander")
        // This system's address limits are out of the way. A long deadline, so that a slow
        // machine cannot turn waits into 504s: every refusal must come from AuthSvc's hash queue.
        let deadlineMs = 10_000
        let port = try extraGateway("gw-flood", ["OOPS_RPC_TIMEOUT_MS": String(deadlineMs)])
        let n = 60
        let answers = Locked<[(email: String, response: RawResponse)]>([])
        let flood = DispatchGroup()
        for i in 0..<n {
            flood.enter()
            Thread {
                let email = "flood\(i)-\(UInt32.random(in: 0...UInt32.max))@shop.test"
                let r = rawRequest(port: port, "POST", "/auth/register",
                                   json: ["email": .string(email), "password": "correct-horse-42", "name": "Shop", "phone": "9876543210"],
                                   timeoutS: 60)
                answers.withLock { $0.append((email, r)) }
                flood.leave()
            }.start()
        }
        // Log in once the flood has filled the sign-up line (the first refusal says so).
        _ = waitUntil(timeoutMs: 60_000, intervalMs: 5) { answers.withLock { a in a.count == n || a.contains { $0.response.status == 503 } } }
        let login = rawRequest(port: port, "POST", "/auth/login", json: ["email": .string(bystander.email), "password": .string(bystander.password)],
                               timeoutS: 60)
        XCTAssertEqual(flood.wait(timeout: .now() + 120), .success, "the flood was not answered")

        XCTAssertEqual(login.status, 200, "a login during the flood: \(login.text)")
        XCTAssertEqual(login.json["user"]?["id"]?.stringValue, bystander.userId)
        let all = answers.current
        let statuses = all.map(\.response.status)
        XCTAssertFalse(statuses.contains(504), "no sign-up may wait out the deadline: \(statuses)")
        XCTAssertEqual(statuses.filter { $0 != 201 && $0 != 503 }.count, 0, "only 201 or 503: \(statuses)")
        XCTAssertGreaterThan(statuses.filter { $0 == 201 }.count, 0, "some sign-ups get through: \(statuses)")
        let refused = all.filter { $0.response.status == 503 }
        XCTAssertGreaterThan(refused.count, 0, "\(n) parallel sign-ups exceed the hash queue; nothing was refused: \(statuses)")
        for (_, r) in refused {
            XCTAssertEqual(r.errorCode, "overloaded", r.text)
            XCTAssertGreaterThanOrEqual(Int(r.header("Retry-After") ?? "") ?? 0, 1, "503 without Retry-After: \(r.headers)")
            XCTAssertNotNil(r.header("X-Request-Id"))
        }
        // A refused sign-up created nothing: the same email registers now.
        if let (email, _) = refused.first {
            let again = rawRequest(port: port, "POST", "/auth/register",
                                   json: ["email": .string(email), "password": "correct-horse-42", "name": "Shop", "phone": "9876543210"])
            XCTAssertEqual(again.status, 201, "the refused sign-up left an account behind: \(again.text)")
        }
    }

    // MARK: - services down or slow

    func testKilledWalletSvcGives503WithRetryAfterQuicklyAndRecoversWithoutARestart() throws {
        let m = sys.merchant("down", balancePaise: 10_000)
        XCTAssertEqual(sys.call("GET", "/wallet", token: m.token).status, 200)
        let wallet = try XCTUnwrap(sys.procs.child("wallet-0"))
        wallet.kill9()

        for (method, path, body, headers) in [("GET", "/wallet", nil, []), ("GET", "/wallet/transactions", nil, []),
                                             ("POST", "/wallet/topup", ["amountPaise": 5] as JSON?, [("Idempotency-Key", "while-down")])] {
            let t0 = Date()
            let r = rawRequest(port: sys.port, method, path, token: m.token, json: body, headers: headers, timeoutS: 10)
            let elapsed = Date().timeIntervalSince(t0)
            XCTAssertEqual(r.status, 503, "\(method) \(path): \(r.text)")
            XCTAssertEqual(r.errorCode, "unavailable")
            XCTAssertEqual(r.header("Retry-After"), "1")
            XCTAssertNotNil(r.header("X-Request-Id"))
            XCTAssertLessThan(elapsed, Double(Self.rpcTimeoutMs) / 1000, "\(path) waited for the deadline instead of failing fast")
            for leak in [sys.procs.runDir, ".sock", "errno", "ECONNREFUSED", "Error("] {
                XCTAssertFalse(r.text.contains(leak), "\(path) leaks internals (\(leak)): \(r.text)")
            }
        }
        // What does not need the wallet still works.
        XCTAssertEqual(sys.call("GET", "/orders", token: m.token).status, 200)
        XCTAssertEqual(sys.call("GET", "/auth/me", token: m.token).status, 200)
        // An order needs the wallet for its charge: refused as unavailable, never a 500.
        let create = rawRequest(port: sys.port, "POST", "/orders/create", token: m.token, json: OOPSSystem.orderBody("DOWN-1"), timeoutS: 10)
        XCTAssertTrue([503, 504].contains(create.status), "order while the wallet is down: \(create.status) \(create.text)")
        let ready = rawRequest(port: sys.port, "GET", "/readyz", timeoutS: 10)
        XCTAssertEqual(ready.status, 503, ready.text)
        XCTAssertEqual(rawRequest(port: sys.adminPort, "GET", "/readyz", timeoutS: 10).json["services"]?["wallet"]?["healthy"], 0)

        // Back up: the Gateway notices the new instance by itself.
        try sys.procs.start("wallet")
        XCTAssertTrue(waitUntil(timeoutMs: 10_000, intervalMs: 100) { self.sys.call("GET", "/wallet", token: m.token).status == 200 },
                      "the Gateway did not find the restarted WalletSvc")
        XCTAssertEqual(sys.call("GET", "/wallet", token: m.token).body["balancePaise"], 10_000)
    }

    func testFrozenWalletSvcGives504WithinTheDeadline() throws {
        let m = sys.merchant("slow", balancePaise: 10_000)
        XCTAssertEqual(sys.call("GET", "/wallet", token: m.token).status, 200)
        let wallet = try XCTUnwrap(sys.procs.child("wallet-0"))
        XCTAssertEqual(kill(wallet.pid, SIGSTOP), 0)
        var resumed = false
        defer { if !resumed { kill(wallet.pid, SIGCONT) } }
        // A loaded machine may let a running thread finish a call after kill() returned: wait
        // until the kernel reports the whole process stopped.
        XCTAssertTrue(waitUntilStopped(wallet.pid), "WalletSvc did not stop")

        let deadline = Double(Self.rpcTimeoutMs) / 1000
        for path in ["/wallet", "/wallet/transactions"] {
            let t0 = Date()
            let r = rawRequest(port: sys.port, "GET", path, token: m.token, timeoutS: 15)
            let elapsed = Date().timeIntervalSince(t0)
            XCTAssertEqual(r.status, 504, "\(path): \(r.text)")
            XCTAssertEqual(r.errorCode, "deadline_exceeded")
            XCTAssertNotNil(r.header("X-Request-Id"))
            XCTAssertEqual(r.header("Retry-After"), "1", "a 504 says when to retry")
            XCTAssertGreaterThanOrEqual(elapsed, deadline * 0.9, "\(path) gave up before the deadline")
            XCTAssertLessThan(elapsed, deadline + 1.0, "\(path) hung past the \(Self.rpcTimeoutMs) ms deadline")
        }
        // Readiness answers in bounded time too, and says the wallet is not healthy.
        let t0 = Date()
        let ready = rawRequest(port: sys.port, "GET", "/readyz", timeoutS: 15)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 4.0)
        XCTAssertEqual(ready.status, 503, ready.text)
        // Other services are not held up by the frozen one.
        XCTAssertEqual(rawRequest(port: sys.port, "GET", "/auth/me", token: m.token).status, 200)

        kill(wallet.pid, SIGCONT)
        resumed = true
        XCTAssertTrue(waitUntil(timeoutMs: 10_000, intervalMs: 100) { self.sys.call("GET", "/wallet", token: m.token).status == 200 })
        XCTAssertEqual(sys.call("GET", "/wallet", token: m.token).body["balancePaise"], 10_000)
    }
}
