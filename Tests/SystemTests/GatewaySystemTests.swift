import XCTest
import Foundation
import JSON
import Runtime
import TestSupport

/// A registered account as the tests use it.
struct Account {
    let userId: String
    let email: String
    let password: String
    let access: String
    let refresh: String
}

/// Helpers shared by the Gateway test classes.
extension OOPSSystem {
    var port: UInt16 { httpPort }

    func register(_ tag: String) -> Account {
        let email = "\(tag)-\(UInt32.random(in: 0...UInt32.max))@shop.test"
        let r = call("POST", "/auth/register", body: ["email": .string(email), "password": "correct-horse-42", "name": .string("Shop \(tag)"), "phone": "9876543210"])
        return Account(userId: r.body["user"]?["id"]?.stringValue ?? "", email: email, password: "correct-horse-42",
                       access: r.body["accessToken"]?.stringValue ?? "", refresh: r.body["refreshToken"]?.stringValue ?? "")
    }

    /// A fresh refresh token of `a` (each login starts a new family).
    func freshRefresh(_ email: String, _ password: String) -> String {
        call("POST", "/auth/login", body: ["email": .string(email), "password": .string(password)]).body["refreshToken"]?.stringValue ?? ""
    }
}

/// HTTP-level tests of the Gateway against the whole process set: every route of the
/// HTTP API (and the dashboard's) for every kind of caller, the HTTP edge cases, and the
/// OpenAPI document against the router.
final class GatewaySystemTests: XCTestCase {
    nonisolated(unsafe) static var system: OOPSSystem?
    nonisolated(unsafe) static var fx: Fixtures?
    var sys: OOPSSystem { Self.system! }
    var f: Fixtures { Self.fx! }
    static let maxBody = 16_384

    /// Accounts and resources made once for the class.
    struct Fixtures {
        let a: Account, b: Account
        let admin: Account
        let orderA: String
    }

    override class func setUp() {
        do {
            let s = try OOPSSystem(extraEnv: ["OOPS_HTTP_MAX_BODY": String(maxBody), "OOPS_RATE_USER_PER_S": "100000", "OOPS_RATE_USER_BURST": "100000"])
            system = s
            let adminLogin = s.call("POST", "/auth/login", body: ["email": .string(s.adminEmail), "password": .string(s.adminPassword)])
            let admin = Account(userId: adminLogin.body["user"]?["id"]?.stringValue ?? "", email: s.adminEmail, password: s.adminPassword,
                                access: adminLogin.body["accessToken"]?.stringValue ?? "", refresh: adminLogin.body["refreshToken"]?.stringValue ?? "")
            var accounts: [Account] = []
            for (tag, money) in [("ma", Int64(100_000)), ("mb", Int64(50_000))] {
                let m = s.register(tag)
                _ = s.call("POST", "/kyc", token: m.access, body: OOPSSystem.kycBody)
                _ = s.call("POST", "/admin/kyc/\(m.userId)/approve", token: admin.access)
                _ = s.call("POST", "/wallet/topup", token: m.access, body: ["amountPaise": .int(money)], headers: ["Idempotency-Key": "seed-\(tag)"])
                accounts.append(m)
            }
            let order = s.call("POST", "/orders/create", token: accounts[0].access, body: OOPSSystem.orderBody("GW-A-1"))
            fx = Fixtures(a: accounts[0], b: accounts[1], admin: admin, orderA: order.body["id"]?.stringValue ?? "")
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
        XCTAssertFalse(f.orderA.isEmpty, "fixture order was not created")
    }

    func req(_ method: String, _ path: String, token: String? = nil, json: JSON? = nil, body: [UInt8]? = nil,
             headers: [(String, String)] = []) -> RawResponse {
        rawRequest(port: sys.port, method, path, token: token, json: json, body: body, headers: headers)
    }

    // MARK: - authorization matrix

    enum Caller: String, CaseIterable { case anonymous, merchantA, merchantB, admin }

    /// One route: its documented method and template, what each caller gets, how to call it.
    struct Row {
        let method: String
        let template: String
        let expect: [Caller: Int]
        let send: (Caller) -> RawResponse
        var check: ((Caller, RawResponse) -> Void)? = nil
    }

    func token(_ c: Caller) -> String? {
        switch c {
        case .anonymous: return nil
        case .merchantA: return f.a.access
        case .merchantB: return f.b.access
        case .admin: return f.admin.access
        }
    }

    func all(_ s: Int) -> [Caller: Int] { [.anonymous: s, .merchantA: s, .merchantB: s, .admin: s] }
    func userOnly(_ a: Int, _ b: Int, _ admin: Int) -> [Caller: Int] { [.anonymous: 401, .merchantA: a, .merchantB: b, .admin: admin] }
    var adminOnly: [Caller: Int] { [.anonymous: 401, .merchantA: 403, .merchantB: 403, .admin: 200] }

    func matrix() -> [Row] {
        let f = self.f, sys = self.sys
        let q = "parcelx-orders-queue"
        let job = "create-\(f.orderA)"
        // Users whose KYC waits for review, one per admin decision.
        let toApprove = sys.register("ka"), toReject = sys.register("kr")
        for u in [toApprove, toReject] { _ = sys.call("POST", "/kyc", token: u.access, body: OOPSSystem.kycBody) }
        let toCancel = sys.call("POST", "/orders/create", token: f.a.access, body: OOPSSystem.orderBody("GW-A-CANCEL")).body["id"]?.stringValue ?? ""
        let own: [Caller: String] = [.merchantA: f.a.userId, .merchantB: f.b.userId, .admin: f.admin.userId]
        func simple(_ m: String, _ p: String, _ t: String, _ e: [Caller: Int], json: JSON? = nil,
                    check: ((Caller, RawResponse) -> Void)? = nil) -> Row {
            Row(method: m, template: t, expect: e, send: { c in self.req(m, p, token: self.token(c), json: json) }, check: check)
        }
        return [
            Row(method: "POST", template: "/auth/register", expect: all(201), send: { c in
                self.req("POST", "/auth/register", token: self.token(c), json: ["email": .string("reg-\(c)-\(UInt32.random(in: 0...UInt32.max))@shop.test"),
                                                                              "password": "correct-horse-42", "name": "New Shop", "phone": "9876543210"])
            }, check: { _, r in XCTAssertEqual(r.json["user"]?["role"], "merchant", "nobody registers as anything but a merchant") }),
            simple("POST", "/auth/login", "/auth/login", all(200), json: ["email": .string(f.a.email), "password": .string(f.a.password)],
                   check: { _, r in XCTAssertEqual(r.json["user"]?["id"]?.stringValue, f.a.userId) }),
            Row(method: "POST", template: "/auth/refresh", expect: all(200), send: { c in
                self.req("POST", "/auth/refresh", token: self.token(c), json: ["refreshToken": .string(sys.freshRefresh(f.a.email, f.a.password))])
            }, check: { _, r in XCTAssertNotNil(r.json["refreshToken"]?.stringValue) }),
            Row(method: "POST", template: "/auth/logout", expect: userOnly(204, 404, 204), send: { c in
                // B presents A's refresh token: someone else's token is "not found", and survives.
                let rt: String
                switch c {
                case .admin: rt = sys.freshRefresh(f.admin.email, f.admin.password)
                default: rt = sys.freshRefresh(f.a.email, f.a.password)
                }
                let r = self.req("POST", "/auth/logout", token: self.token(c), json: ["refreshToken": .string(rt)])
                if c == .merchantB || c == .anonymous {
                    XCTAssertEqual(sys.call("POST", "/auth/refresh", body: ["refreshToken": .string(rt)]).status, 200, "\(c) revoked A's session")
                }
                return r
            }),
            simple("GET", "/auth/me", "/auth/me", userOnly(200, 200, 200), check: { c, r in
                XCTAssertEqual(r.json["user"]?["id"]?.stringValue, own[c], "\(c) sees its own profile")
            }),
            Row(method: "POST", template: "/kyc", expect: userOnly(422, 422, 403), send: { c in
                self.req("POST", "/kyc", token: self.token(c), json: OOPSSystem.kycBody)
            }, check: { c, r in if c != .admin { XCTAssertEqual(r.errorCode?.hasPrefix("kyc_"), true, r.text) } }),
            simple("GET", "/kyc", "/kyc", userOnly(200, 200, 403), check: { c, r in
                guard c != .admin else { return }
                XCTAssertEqual(r.json["userId"]?.stringValue, own[c], "\(c) sees its own KYC")
                XCTAssertEqual(r.json["status"], "approved")
                XCTAssertFalse(r.text.contains("ABCDE1234F") || r.text.contains("123456789012"), "numbers are shown masked")
            }),
            simple("GET", "/admin/kyc", "/admin/kyc", adminOnly),
            simple("POST", "/admin/kyc/\(toApprove.userId)/approve", "/admin/kyc/{userId}/approve", adminOnly,
                   check: { c, r in if c == .admin { XCTAssertEqual(r.json["status"], "approved") } }),
            simple("POST", "/admin/kyc/\(toReject.userId)/reject", "/admin/kyc/{userId}/reject", adminOnly, json: ["reason": "PAN image unreadable"],
                   check: { c, r in if c == .admin { XCTAssertEqual(r.json["status"], "rejected") } }),
            Row(method: "GET", template: "/wallet", expect: userOnly(200, 200, 403), send: { c in
                // B names A's wallet in a body: a GET takes no body, so B still sees only its own.
                self.req("GET", "/wallet", token: self.token(c), json: c == .merchantB ? ["userId": .string(f.a.userId)] : nil)
            }, check: { c, r in
                guard c != .admin else { return }
                XCTAssertEqual(r.json["userId"]?.stringValue, own[c])
                let plain = sys.call("GET", "/wallet", token: self.token(c)).body["balancePaise"]
                XCTAssertEqual(r.json["balancePaise"], plain, r.text)
            }),
            simple("GET", "/wallet/transactions", "/wallet/transactions", userOnly(200, 200, 403), check: { c, r in
                guard c != .admin else { return }
                let items = r.json["items"]?.arrayValue ?? []
                XCTAssertFalse(items.isEmpty, r.text)
                XCTAssertTrue(items.allSatisfy { $0["userId"]?.stringValue == own[c] }, "\(c) sees only its own ledger: \(r.text)")
            }),
            Row(method: "POST", template: "/wallet/topup", expect: userOnly(201, 201, 403), send: { c in
                self.req("POST", "/wallet/topup", token: self.token(c), json: ["amountPaise": 100], headers: [("Idempotency-Key", "matrix-\(c)")])
            }),
            Row(method: "POST", template: "/orders/create", expect: userOnly(201, 201, 403), send: { c in
                self.req("POST", "/orders/create", token: self.token(c), json: OOPSSystem.orderBody("GW-M-\(c)"))
            }),
            simple("POST", "/orders/\(toCancel)/cancel", "/orders/{id}/cancel", userOnly(202, 404, 403)),
            simple("GET", "/orders/\(f.orderA)", "/orders/{id}", userOnly(200, 404, 200), check: { c, r in
                if c == .merchantA { XCTAssertEqual(r.json["id"]?.stringValue, f.orderA) }
                if c == .merchantB { XCTAssertEqual(r.errorCode, "not_found"); XCTAssertFalse(r.text.contains(f.a.userId)) }
            }),
            simple("GET", "/orders", "/orders", userOnly(200, 200, 200), check: { c, r in
                let ids = (r.json["items"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
                if c == .merchantA { XCTAssertTrue(ids.contains(f.orderA)) }
                if c == .merchantB { XCTAssertFalse(ids.contains(f.orderA), "B's list shows A's order") }
            }),
            simple("GET", "/admin/orders/\(f.orderA)/provider-logs", "/admin/orders/{id}/provider-logs", adminOnly),
            simple("GET", "/orders/\(f.orderA)/timeline", "/orders/{id}/timeline", userOnly(200, 404, 200), check: { c, r in
                if c == .merchantA { XCTAssertEqual(r.json["orderId"]?.stringValue, f.orderA) }
                if c == .merchantB { XCTAssertEqual(r.errorCode, "not_found"); XCTAssertFalse(r.text.contains(f.a.userId)) }
            }),
            // Webhooks: merchants only, each its own endpoint (an address that cannot be checked is refused).
            simple("POST", "/webhooks/endpoint", "/webhooks/endpoint", userOnly(422, 422, 403), json: ["url": "https://no-such-host.invalid/hook"]),
            simple("GET", "/webhooks/endpoint", "/webhooks/endpoint", userOnly(404, 404, 403)),
            simple("DELETE", "/webhooks/endpoint", "/webhooks/endpoint", userOnly(404, 404, 403)),
            simple("GET", "/webhooks/deliveries", "/webhooks/deliveries", userOnly(200, 200, 403)),
            simple("POST", "/webhooks/deliveries/evt_\(f.orderA)_1/replay", "/webhooks/deliveries/{eventId}/replay", userOnly(404, 404, 403)),
            simple("GET", "/admin/orders?q=\(f.orderA)", "/admin/orders", adminOnly,
                   check: { c, r in if c == .admin { XCTAssertEqual(r.json["items"]?.arrayValue?.first?["id"]?.stringValue, f.orderA) } }),
            simple("GET", "/healthz", "/healthz", all(200)),
            simple("GET", "/readyz", "/readyz", all(200), check: { _, r in XCTAssertEqual(r.json, ["status": "ok"], "no operator data") }),
            simple("GET", "/openapi.json", "/openapi.json", all(200)),
            // The queue dashboard: HTML pages send anonymous browsers to sign in (303), its JSON
            // API answers 401; merchants get 403 everywhere.
            simple("GET", "/admin/queues", "/admin/queues", [.anonymous: 303, .merchantA: 403, .merchantB: 403, .admin: 200],
                   check: { c, r in if c == .anonymous { XCTAssertEqual(r.header("Location")?.hasPrefix("/admin/login"), true) } }),
            simple("GET", "/admin/queues/\(q)/completed", "/admin/queues/{queue}/{state}", [.anonymous: 303, .merchantA: 403, .merchantB: 403, .admin: 200]),
            simple("GET", "/admin/queues/\(q)/jobs/\(job)", "/admin/queues/{queue}/jobs/{jobId}", [.anonymous: 303, .merchantA: 403, .merchantB: 403, .admin: 200]),
            simple("GET", "/admin/queues/orders/\(f.orderA)/provider-logs", "/admin/queues/orders/{id}/provider-logs",
                   [.anonymous: 303, .merchantA: 403, .merchantB: 403, .admin: 200]),
            simple("GET", "/admin/queues/orders?q=\(f.orderA)", "/admin/queues/orders", [.anonymous: 303, .merchantA: 403, .merchantB: 403, .admin: 200]),
            simple("GET", "/admin/queues/orders/\(f.orderA)/timeline", "/admin/queues/orders/{id}/timeline",
                   [.anonymous: 303, .merchantA: 403, .merchantB: 403, .admin: 200]),
            simple("GET", "/admin/queues/api/overview", "/admin/queues/api/overview", adminOnly),
            simple("GET", "/admin/queues/api/\(q)/completed", "/admin/queues/api/{queue}/{state}", adminOnly),
            simple("GET", "/admin/queues/api/\(q)/jobs/\(job)", "/admin/queues/api/{queue}/jobs/{jobId}", adminOnly),
            simple("POST", "/admin/queues/\(q)/actions/resume", "/admin/queues/{queue}/actions/{action}", [.anonymous: 401, .merchantA: 403, .merchantB: 403, .admin: 303]),
            simple("POST", "/admin/queues/\(q)/jobs/\(job)/promote", "/admin/queues/{queue}/jobs/{jobId}/{action}", [.anonymous: 401, .merchantA: 403, .merchantB: 403, .admin: 303]),
            simple("GET", "/admin/queues/assets/app.js", "/admin/queues/assets/app.js", all(200)),
            simple("GET", "/admin/queues/assets/app.css", "/admin/queues/assets/app.css", all(200)),
            simple("GET", "/admin/login", "/admin/login", [.anonymous: 200, .merchantA: 200, .merchantB: 200, .admin: 303]),
            Row(method: "POST", template: "/admin/login", expect: all(401), send: { c in
                self.req("POST", "/admin/login", token: self.token(c), json: ["email": .string("nobody-\(c)@shop.test"), "password": "wrong-password-1"])
            }),
            simple("POST", "/admin/logout", "/admin/logout", all(303)),
        ]
    }

    func testAuthorizationMatrixOverEveryRouteAndCaller() {
        let rows = matrix()
        var failures: [String] = []
        for row in rows {
            for c in Caller.allCases {
                guard let want = row.expect[c] else { continue }
                let r = row.send(c)
                if r.status != want { failures.append("\(row.method) \(row.template) as \(c): \(r.status), want \(want): \(r.text.prefix(200))") }
                XCTAssertNotNil(r.header("X-Request-Id"), "\(row.method) \(row.template) as \(c) has no X-Request-Id")
                XCTAssertNotEqual(r.status, 500, "\(row.method) \(row.template) as \(c)")
                if want == 401 && r.header("Content-Type")?.hasPrefix("application/json") == true {
                    XCTAssertEqual(r.errorCode, "unauthenticated", "\(row.method) \(row.template): \(r.text)")
                    XCTAssertEqual(r.header("WWW-Authenticate"), "Bearer", "\(row.method) \(row.template)")
                }
                if r.status == want && c != .anonymous { row.check?(c, r) }
            }
        }
        XCTAssertEqual(failures, [], failures.joined(separator: "\n"))

        // The matrix covers every documented operation, and nothing undocumented.
        let doc = req("GET", "/openapi.json").json
        var documented = Set<String>()
        for (p, item) in doc["paths"]?.objectValue ?? [:] {
            for m in (item.objectValue ?? [:]).keys { documented.insert("\(m.uppercased()) \(p)") }
        }
        let covered = Set(rows.map { "\($0.method) \($0.template)" })
        XCTAssertEqual(documented.subtracting(covered), [], "documented routes missing from the matrix")
        XCTAssertEqual(covered.subtracting(documented), [], "matrix routes missing from the document")
    }

    func testTamperedMalformedAndRefreshTokensAreRefusedAsBearer401() {
        let parts = f.a.access.split(separator: ".")
        let tampered = parts[0] + "." + parts[1] + "." + String(parts[2].reversed())
        for t in [String(tampered), "not-a-jwt", f.a.refresh] {
            let r = req("GET", "/auth/me", token: t)
            XCTAssertEqual(r.status, 401, "\(t.prefix(20)): \(r.text)")
            XCTAssertEqual(r.errorCode, "invalid_token")
        }
        for h in ["Basic YTpi", "Bearer", "Bearer ", "Bearer\t" + f.a.access, "Bearers " + f.a.access] {
            XCTAssertEqual(req("GET", "/auth/me", headers: [("Authorization", h)]).status, 401, h.prefix(12) + "…")
        }
        // The scheme is case-insensitive and blanks around the token do not matter (RFC 9110).
        for h in ["bearer " + f.a.access, "BEARER   " + f.a.access + " \t"] {
            let r = req("GET", "/auth/me", headers: [("Authorization", h)])
            XCTAssertEqual(r.status, 200, h.prefix(12) + "…: \(r.text)")
            XCTAssertEqual(r.json["user"]?["id"]?.stringValue, f.a.userId)
        }
    }

    // MARK: - each route's own failures

    func testEveryRouteAnswersItsDocumentedFailures() {
        let a = f.a.access, admin = f.admin.access
        let cases: [(String, String, String?, JSON?, [(String, String)], Int, String)] = [
            ("POST", "/auth/register", nil, ["email": "not-an-email", "password": "correct-horse-42", "name": "X", "phone": "9876543210"], [], 400, "validation_failed"),
            ("POST", "/auth/register", nil, ["email": .string(f.a.email), "password": "correct-horse-42", "name": "X", "phone": "9876543210"], [], 409, ""),
            ("POST", "/auth/login", nil, ["email": .string(f.a.email), "password": "wrong-password-9"], [], 401, "invalid_credentials"),
            ("POST", "/auth/login", nil, [:], [], 400, "validation_failed"),
            ("POST", "/auth/refresh", nil, ["refreshToken": "rt_not_a_real_token"], [], 401, ""),
            ("POST", "/auth/refresh", nil, nil, [], 400, "validation_failed"),
            ("POST", "/auth/logout", a, nil, [], 400, "validation_failed"),
            ("POST", "/kyc", f.b.access, ["businessType": "proprietorship"], [], 400, "validation_failed"),
            ("GET", "/admin/kyc?status=nope", admin, nil, [], 400, "validation_failed"),
            ("GET", "/admin/kyc?limit=many", admin, nil, [], 400, "validation_failed"),
            ("POST", "/admin/kyc/usr_does_not_exist/approve", admin, nil, [], 404, "not_found"),
            ("POST", "/admin/kyc/\(f.a.userId)/approve", admin, nil, [], 422, ""),
            ("POST", "/admin/kyc/\(f.a.userId)/reject", admin, nil, [], 400, "validation_failed"),
            ("GET", "/wallet/transactions?cursor=bogus", a, nil, [], 400, "validation_failed"),
            ("GET", "/wallet/transactions?limit=0", a, nil, [], 400, "validation_failed"),
            ("POST", "/wallet/topup", a, ["amountPaise": 100], [], 400, "validation_failed"),
            ("POST", "/wallet/topup", a, ["amountPaise": 0], [("Idempotency-Key", "zero")], 400, "validation_failed"),
            ("POST", "/wallet/topup", a, ["amountPaise": 777], [("Idempotency-Key", "seed-ma")], 409, ""),
            ("POST", "/orders/create", a, ["clientOrderId": "x"], [], 400, "validation_failed"),
            ("POST", "/orders/ord_does_not_exist/cancel", a, nil, [], 404, "not_found"),
            ("GET", "/orders/ord_does_not_exist", a, nil, [], 404, "not_found"),
            ("GET", "/orders?status=lost", a, nil, [], 400, "validation_failed"),
            ("GET", "/orders?limit=1000", a, nil, [], 400, "validation_failed"),
            ("GET", "/admin/queues/api/no-such-queue/failed", admin, nil, [], 404, "not_found"),
        ]
        for (m, p, t, body, h, want, code) in cases {
            let r = req(m, p, token: t, json: body, headers: h)
            XCTAssertEqual(r.status, want, "\(m) \(p) \(body?.serialized() ?? ""): \(r.text)")
            if !code.isEmpty { XCTAssertEqual(r.errorCode, code, "\(m) \(p): \(r.text)") }
            XCTAssertNotNil(r.json["error"]?["message"]?.stringValue, "\(m) \(p): error body \(r.text)")
            XCTAssertEqual(r.json["error"]?["requestId"]?.stringValue, r.header("X-Request-Id"), "\(m) \(p)")
        }
        // Replays answer 200 with the first result.
        let key = [("Idempotency-Key", "replay-\(UInt32.random(in: 0...UInt32.max))")]
        let first = req("POST", "/wallet/topup", token: f.b.access, json: ["amountPaise": 5], headers: key)
        let again = req("POST", "/wallet/topup", token: f.b.access, json: ["amountPaise": 5], headers: key)
        XCTAssertEqual([first.status, again.status], [201, 200], again.text)
        XCTAssertEqual(first.json["entry"]?["id"], again.json["entry"]?["id"])
        // Logout revokes: the same refresh token no longer refreshes.
        let rt = sys.freshRefresh(f.b.email, f.b.password)
        XCTAssertEqual(req("POST", "/auth/logout", token: f.b.access, json: ["refreshToken": .string(rt)]).status, 204)
        XCTAssertEqual(req("POST", "/auth/refresh", json: ["refreshToken": .string(rt)]).status, 401)
    }

    // MARK: - HTTP edge

    func testBodyOverTheLimitIs413AndAtTheLimitIsRead() throws {
        let limit = Self.maxBody
        var big = Array("{\"email\":\"".utf8)
        big += [UInt8](repeating: 0x61, count: limit + 1 - big.count - 2) + Array("\"}".utf8)
        XCTAssertEqual(big.count, limit + 1)
        let over = req("POST", "/auth/login", body: big, headers: [("Content-Type", "application/json")])
        XCTAssertEqual(over.status, 413, over.text)
        XCTAssertEqual(over.errorCode, "payload_too_large")

        let exact = Array(big.dropFirst())
        let at = req("POST", "/auth/login", body: exact, headers: [("Content-Type", "application/json")])
        XCTAssertNotEqual(at.status, 413, "a body of exactly the limit is read")
        XCTAssertEqual(at.status, 400, "and then found to be malformed: \(at.text)")

        // A chunked body that grows past the limit is refused too, without the server reading on.
        let c = try RawHTTPConnection(port: sys.port)
        c.send(RawHTTPConnection.requestBytes("POST", "/auth/login", headers: [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]))
        let chunk = [UInt8](repeating: 0x20, count: 4096)
        for _ in 0..<(limit / 4096 + 2) {
            if !c.send(Array(String(chunk.count, radix: 16).utf8) + [13, 10] + chunk + [13, 10]) { break }
        }
        c.send(Array("0\r\n\r\n".utf8))
        if let r = c.readResponse() {
            XCTAssertEqual(r.status, 413, r.text)
        } else {
            XCTAssertTrue(c.peerClosed(), "no 413 and the connection was not closed either")
        }
    }

    func testNonJSONContentTypeIs415() {
        for ct in ["text/plain", "application/x-www-form-urlencoded", ""] {
            var h: [(String, String)] = []
            if !ct.isEmpty { h.append(("Content-Type", ct)) }
            let r = req("POST", "/auth/login", body: Array("email=a&password=b".utf8), headers: h)
            XCTAssertEqual(r.status, 415, "\(ct): \(r.text)")
            XCTAssertEqual(r.errorCode, "unsupported_media_type")
        }
        let charset = req("POST", "/auth/login", body: Array("{}".utf8), headers: [("Content-Type", "application/json; charset=utf-8")])
        XCTAssertEqual(charset.status, 400, "JSON with a charset is JSON: \(charset.text)")
        XCTAssertEqual(charset.errorCode, "validation_failed")
    }

    func testMalformedJSONIs400WithTheBytePosition() {
        let text = "{\"email\": \"a@b.in\", \"password\": }"
        let r = req("POST", "/auth/login", body: Array(text.utf8), headers: [("Content-Type", "application/json")])
        XCTAssertEqual(r.status, 400, r.text)
        XCTAssertEqual(r.errorCode, "malformed_json")
        let msg = r.json["error"]?["message"]?.stringValue ?? ""
        let offset = text.utf8.distance(from: text.utf8.startIndex, to: text.utf8.firstIndex(of: UInt8(ascii: "}"))!)
        XCTAssertTrue(msg.contains("at byte \(offset)"), "the message names the position \(offset): \(msg)")

        for bad in ["[1, 2]", "\"text\"", "42", "null"] {
            let r = req("POST", "/auth/login", body: Array(bad.utf8), headers: [("Content-Type", "application/json")])
            XCTAssertEqual(r.status, 400, "\(bad): \(r.text)")
            XCTAssertEqual(r.errorCode, "validation_failed", "\(bad) is valid JSON but not an object")
        }
    }

    func testUnknownRouteIs404AndWrongMethodIs405WithAllow() {
        for p in ["/nope", "/orders/a/b/c", "/wallet/topup/extra", "/orders/bad%20id", "/admin"] {
            let r = req("GET", p, token: f.a.access)
            XCTAssertEqual(r.status, 404, "\(p): \(r.text)")
            XCTAssertEqual(r.errorCode, "route_not_found", p)
        }
        let cases: [(String, String, Set<String>)] = [
            ("DELETE", "/wallet", ["GET"]),
            ("GET", "/auth/login", ["POST"]),
            ("PUT", "/kyc", ["GET", "POST"]),
            ("GET", "/orders/create", ["POST"]),
            ("DELETE", "/orders/ord_1", ["GET"]),
            ("GET", "/orders/ord_1/cancel", ["POST"]),
            ("PATCH", "/admin/queues/api/overview", ["GET"]),
        ]
        for (m, p, allowed) in cases {
            let r = req(m, p, token: f.a.access)
            XCTAssertEqual(r.status, 405, "\(m) \(p): \(r.text)")
            XCTAssertEqual(r.errorCode, "method_not_allowed")
            let allow = Set((r.header("Allow") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            XCTAssertEqual(allow, allowed, "\(m) \(p)")
        }
        // HEAD is served wherever GET is.
        XCTAssertEqual(rawRequest(port: sys.port, "HEAD", "/healthz").status, 200)
    }

    func testRequestIdIsEchoedWhenGivenAndGeneratedWhenNot() {
        let given = "client-req_42.a:b"
        for (m, p, t) in [("GET", "/healthz", nil), ("GET", "/auth/me", nil), ("GET", "/nope", nil), ("GET", "/wallet", f.a.access)] as [(String, String, String?)] {
            let r = req(m, p, token: t, headers: [("X-Request-Id", given)])
            XCTAssertEqual(r.header("X-Request-Id"), given, "\(p)")
            if r.status >= 400 { XCTAssertEqual(r.json["error"]?["requestId"]?.stringValue, given) }
        }
        let a = req("GET", "/healthz"), b = req("GET", "/healthz")
        let ida = a.header("X-Request-Id") ?? "", idb = b.header("X-Request-Id") ?? ""
        XCTAssertFalse(ida.isEmpty)
        XCTAssertNotEqual(ida, idb, "each request gets its own id")
        // Unsafe or oversized ids are replaced, never reflected.
        for bad in [String(repeating: "x", count: 200), "a b", "<script>"] {
            let r = req("GET", "/healthz", headers: [("X-Request-Id", bad)])
            let id = r.header("X-Request-Id") ?? ""
            XCTAssertNotEqual(id, bad)
            XCTAssertFalse(id.isEmpty)
        }
        // The id reaches the services: an error from one carries it.
        let e = req("GET", "/orders/ord_missing", token: f.a.access, headers: [("X-Request-Id", "trace-me-1")])
        XCTAssertEqual(e.json["error"]?["requestId"], "trace-me-1")
    }

    func testKeepAliveServesManyRequestsOnOneConnectionIncludingErrorsAndPipelining() throws {
        let c = try RawHTTPConnection(port: sys.port)
        let sequence: [(String, String, Int)] = [("GET", "/healthz", 200), ("GET", "/nope", 404), ("GET", "/auth/me", 401), ("DELETE", "/wallet", 405), ("GET", "/healthz", 200)]
        for (m, p, want) in sequence {
            XCTAssertTrue(c.send(RawHTTPConnection.requestBytes(m, p)), "connection closed before \(m) \(p)")
            let r = c.readResponse()
            XCTAssertEqual(r?.status, want, "\(m) \(p)")
            XCTAssertNotEqual(r?.header("Connection")?.lowercased(), "close", "\(m) \(p) closed the connection")
        }
        let token = f.a.access
        let authed = RawHTTPConnection.requestBytes("GET", "/wallet", headers: [("Authorization", "Bearer \(token)")])
        let body = RawHTTPConnection.requestBytes("POST", "/auth/login", headers: [("Content-Type", "application/json")],
                                                  body: Array("{\"email\":\"\(f.a.email)\",\"password\":\"\(f.a.password)\"}".utf8))
        // Pipelined: three requests in one write, three answers in order.
        c.send(authed + body + RawHTTPConnection.requestBytes("GET", "/healthz"))
        XCTAssertEqual(c.readResponse()?.json["userId"]?.stringValue, f.a.userId)
        XCTAssertEqual(c.readResponse()?.status, 200)
        XCTAssertEqual(c.readResponse()?.json["status"], "ok")
    }

    func testHealthReadinessAndMetricsAreServed() {
        let h = req("GET", "/healthz")
        XCTAssertEqual(h.status, 200)
        XCTAssertEqual(h.json["status"], "ok")
        let r = req("GET", "/readyz")
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertEqual(r.json["status"], "ok")
        let m = rawRequest(port: sys.adminPort, "GET", "/metrics")
        XCTAssertEqual(m.status, 200)
        XCTAssertEqual(m.header("Content-Type")?.hasPrefix("text/plain"), true)
        XCTAssertFalse(m.body.isEmpty)
    }

    /// Operator data (metrics, which instances run and how they fare, alerts) is served only on
    /// the admin listener; the public one keeps a bare liveness and readiness for load balancers.
    func testMetricsAndInstanceDetailsAreOnlyOnTheAdminListener() {
        let pubMetrics = req("GET", "/metrics")
        XCTAssertEqual(pubMetrics.status, 404, pubMetrics.text)
        XCTAssertEqual(pubMetrics.errorCode, "route_not_found")
        XCTAssertFalse(pubMetrics.text.contains("oops_"), "no metric on the public listener")
        for c in Caller.allCases {
            let r = req("GET", "/readyz", token: token(c))
            XCTAssertEqual(r.status, 200, r.text)
            XCTAssertEqual(r.json, ["status": "ok"], "public /readyz as \(c) says only ready or not: \(r.text)")
            for leak in ["services", "instance", "redis", "alerts", "parcelx-0", "auth-0"] {
                XCTAssertFalse(r.text.contains(leak), "public /readyz leaks \(leak): \(r.text)")
            }
        }
        XCTAssertNil(req("GET", "/openapi.json").json["paths"]?["/metrics"], "the public document does not offer /metrics")

        let m = rawRequest(port: sys.adminPort, "GET", "/metrics")
        XCTAssertEqual(m.status, 200, m.text)
        XCTAssertEqual(m.header("Content-Type")?.hasPrefix("text/plain"), true)
        XCTAssertTrue(m.text.contains("oops_http_requests_total{route=\"GET /readyz\",status=\"200\"}"), "public traffic is counted")
        XCTAssertTrue(m.text.contains("oops_service_up{service=\"wallet\",instance=\"0\"} 1"))
        XCTAssertNotNil(m.header("X-Request-Id"))
        let ready = rawRequest(port: sys.adminPort, "GET", "/readyz")
        XCTAssertEqual(ready.status, 200, ready.text)
        for s in ["auth", "wallet", "order", "parcelx"] { XCTAssertEqual(ready.json["services"]?[s]?["healthy"], 1, "\(s): \(ready.text)") }
        XCTAssertEqual(ready.json["redis"]?["ok"], true)
        XCTAssertEqual(rawRequest(port: sys.adminPort, "GET", "/healthz").json["status"], "ok")
        // The admin listener has its own small route table: no API there.
        let api = rawRequest(port: sys.adminPort, "GET", "/orders", token: f.a.access)
        XCTAssertEqual(api.status, 404, api.text)
        XCTAssertEqual(api.errorCode, "route_not_found")
    }

    // MARK: - integers and cursors from requests

    /// A 400 `validation_failed` naming `param`, in the Gateway's JSON error body.
    func assertRefused(_ r: RawResponse, _ param: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 400, "\(what): \(r.text)", file: file, line: line)
        XCTAssertEqual(r.errorCode, "validation_failed", "\(what): \(r.text)", file: file, line: line)
        XCTAssertEqual(r.json["error"]?["fields"]?.arrayValue?.first?["path"]?.stringValue, param, "\(what): \(r.text)", file: file, line: line)
        XCTAssertNotNil(r.json["error"]?["requestId"]?.stringValue, what, file: file, line: line)
        XCTAssertNotNil(r.header("X-Request-Id"), what, file: file, line: line)
    }

    /// Regression (issue 18, defect 1): `page=9223372036854775807` on the dashboard's job lists
    /// trapped on `(page - 1) * pageSize` and took the whole Gateway down. Every out-of-range or
    /// malformed integer of a request is now a 400, and the Gateway keeps serving.
    func testHugePageAndLimitValuesGet400AndTheGatewayStaysUp() throws {
        let gateway = try XCTUnwrap(sys.procs.child("gateway"))
        let q = "parcelx-orders-queue"
        let bad = ["9223372036854775807", "461168601842738792", "9223372036854775808", "-9223372036854775808", "99999999999999999999",
                   "50002", "0", "-1", "abc", "+2", "1e3", "0x10", "%201"]
        for v in bad {
            assertRefused(req("GET", "/admin/queues/api/\(q)/failed?page=\(v)", token: f.admin.access), "page", "JSON list, page=\(v)")
            assertRefused(req("GET", "/admin/queues/\(q)/failed?page=\(v)", token: f.admin.access), "page", "HTML list, page=\(v)")
            // The link an anonymous visitor is sent: refused at once, not carried through the sign-in.
            assertRefused(req("GET", "/admin/queues/\(q)/failed?page=\(v)"), "page", "HTML list, anonymous, page=\(v)")
        }
        XCTAssertTrue(gateway.isRunning, "the Gateway survived every page value")
        // The whole range stays usable: the last page queues.jobs can reach, and the first.
        XCTAssertEqual(req("GET", "/admin/queues/api/\(q)/failed?page=50001", token: f.admin.access).status, 200)
        let last = req("GET", "/admin/queues/\(q)/failed?page=50001", token: f.admin.access)
        XCTAssertEqual(last.status, 200, last.text)
        XCTAssertTrue(last.text.contains("Page 50001 of"), last.text.prefix(300).description)
        XCTAssertEqual(req("GET", "/admin/queues/api/\(q)/failed", token: f.admin.access).status, 200)

        // The same rule for `limit` on every cursor-paged list.
        for v in ["9223372036854775807", "9223372036854775808", "0", "101", "-1", "ten"] {
            assertRefused(req("GET", "/orders?limit=\(v)", token: f.a.access), "limit", "/orders limit=\(v)")
            assertRefused(req("GET", "/wallet/transactions?limit=\(v)", token: f.a.access), "limit", "/wallet/transactions limit=\(v)")
            assertRefused(req("GET", "/admin/kyc?limit=\(v)", token: f.admin.access), "limit", "/admin/kyc limit=\(v)")
        }
        XCTAssertEqual(req("GET", "/orders?limit=100", token: f.a.access).status, 200)

        XCTAssertTrue(gateway.isRunning, "the Gateway process is still the same, alive one")
        XCTAssertEqual(req("GET", "/healthz").status, 200)
        XCTAssertEqual(req("GET", "/auth/me", token: f.a.access).json["user"]?["id"]?.stringValue, f.a.userId)
    }

    /// Regression (issue 18): `GET /orders?cursor=<garbage>` answered 200 with some page, where
    /// `/wallet/transactions` answers 400. One paging rule now holds for both.
    func testGarbageCursorsGet400OnOrdersAsOnTheWallet() throws {
        for c in ["garbage", "ord_", "ord_%3Cscript%3E", "txn_01ARZ3NDEKTSV4RRFFQ69G5FAV", "ord_01ARZ3NDEKTSV4RRFFQ69G5FAVX", String(repeating: "z", count: 65)] {
            assertRefused(req("GET", "/orders?cursor=\(c)", token: f.a.access), "cursor", "/orders cursor=\(c)")
            assertRefused(req("GET", "/orders?cursor=\(c)", token: f.admin.access), "cursor", "/orders as admin, cursor=\(c)")
        }
        for c in ["garbage", "ord_01ARZ3NDEKTSV4RRFFQ69G5FAV"] {
            assertRefused(req("GET", "/wallet/transactions?cursor=\(c)", token: f.a.access), "cursor", "/wallet/transactions cursor=\(c)")
        }
        // A cursor the list handed out still pages on.
        _ = sys.call("POST", "/orders/create", token: f.a.access, body: OOPSSystem.orderBody("GW-CURSOR-\(UInt32.random(in: 0...UInt32.max))"))
        let first = req("GET", "/orders?limit=1", token: f.a.access)
        XCTAssertEqual(first.status, 200, first.text)
        let next = try XCTUnwrap(first.json["nextCursor"]?.stringValue, first.text)
        let second = req("GET", "/orders?limit=1&cursor=\(next)", token: f.a.access)
        XCTAssertEqual(second.status, 200, second.text)
        XCTAssertNotEqual(second.json["items"]?.arrayValue?.first?["id"], first.json["items"]?.arrayValue?.first?["id"])
    }

    // MARK: - OpenAPI

    /// A concrete path for a template, with values the document's own parameter schemas accept.
    static func sample(_ template: String) -> String {
        template.split(separator: "/", omittingEmptySubsequences: false).map { s -> String in
            s.hasPrefix("{") ? "x1" : String(s)
        }.joined(separator: "/")
    }

    static func matches(_ template: String, _ path: String) -> Bool {
        let t = template.split(separator: "/"), p = path.split(separator: "/")
        guard t.count == p.count else { return false }
        return zip(t, p).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
    }

    func testRouterAndOpenAPIListTheSameRoutes() {
        let doc = req("GET", "/openapi.json").json
        let paths = doc["paths"]?.objectValue ?? [:]
        var ops: [String: Set<String>] = [:]
        for (p, item) in paths { ops[p] = Set((item.objectValue ?? [:]).keys.map { $0.uppercased() }) }
        // Every route of the HTTP API (Sources/GatewayCore/Routes.swift) is documented.
        let design = ["POST /auth/register", "POST /auth/login", "POST /auth/refresh", "POST /auth/logout", "GET /auth/me", "POST /kyc", "GET /kyc",
                      "GET /admin/kyc", "POST /admin/kyc/{userId}/approve", "POST /admin/kyc/{userId}/reject", "GET /wallet", "GET /wallet/transactions",
                      "POST /wallet/topup", "POST /orders/create", "POST /orders/{id}/cancel", "GET /orders/{id}", "GET /orders",
                      "GET /admin/orders/{id}/provider-logs", "GET /admin/queues", "GET /healthz", "GET /readyz", "GET /openapi.json"]
        for d in design {
            let parts = d.split(separator: " ")
            XCTAssertTrue(ops[String(parts[1])]?.contains(String(parts[0])) == true, "\(d) is not in /openapi.json")
        }
        // Every documented operation is routed (not 404 route_not_found, not 405), and on every
        // documented path the router allows exactly the documented methods.
        let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        for (template, documented) in ops {
            let path = Self.sample(template)
            var expectedAllow = Set<String>()
            // A concrete path may fit several templates; the most literal one owns it.
            let owners = ops.keys.filter { Self.matches($0, path) }
            let best = owners.max { a, b in
                let sa = a.split(separator: "/").map { !$0.hasPrefix("{") }, sb = b.split(separator: "/").map { !$0.hasPrefix("{") }
                for (x, y) in zip(sa, sb) where x != y { return y }
                return false
            }
            for o in owners where o.split(separator: "/").map({ !$0.hasPrefix("{") }) == best?.split(separator: "/").map({ !$0.hasPrefix("{") }) {
                expectedAllow.formUnion(ops[o] ?? [])
            }
            XCTAssertEqual(best, template, "\(template) is shadowed by \(best ?? "")")
            for m in methods {
                let r = req(m, path, token: f.admin.access, json: m == "GET" ? nil : [:])
                if documented.contains(m) {
                    XCTAssertNotEqual(r.errorCode, "route_not_found", "\(m) \(template) is documented but not routed")
                    XCTAssertNotEqual(r.status, 405, "\(m) \(template) is documented but refused: \(r.text)")
                } else {
                    XCTAssertEqual(r.status, 405, "\(m) \(template) is routed but not documented: \(r.status) \(r.text.prefix(120))")
                    let allow = Set((r.header("Allow") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                    XCTAssertEqual(allow, expectedAllow, "Allow of \(m) \(template)")
                }
            }
        }
    }

    func testOpenAPIIsAnOpenAPI31DocumentWithResponsesOnEveryOperation() {
        let r = req("GET", "/openapi.json")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("Content-Type")?.hasPrefix("application/json"), true)
        let doc = r.json
        XCTAssertEqual(doc["openapi"]?.stringValue?.hasPrefix("3.1."), true)
        XCTAssertNotNil(doc["info"]?["title"]?.stringValue)
        XCTAssertNotNil(doc["info"]?["version"]?.stringValue)
        let schemes = doc["components"]?["securitySchemes"]?.objectValue ?? [:]
        let schemas = doc["components"]?["schemas"]?.objectValue ?? [:]
        var operationIds = Set<String>()
        let paths = doc["paths"]?.objectValue ?? [:]
        XCTAssertGreaterThanOrEqual(paths.count, 20)
        for (p, item) in paths {
            XCTAssertTrue(p.hasPrefix("/"), p)
            let vars = Set(p.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) })
            for (m, op) in item.objectValue ?? [:] {
                let name = "\(m) \(p)"
                XCTAssertTrue(["get", "put", "post", "delete", "options", "head", "patch", "trace"].contains(m), name)
                if let id = op["operationId"]?.stringValue {
                    XCTAssertFalse(operationIds.contains(id), "duplicate operationId \(id)")
                    operationIds.insert(id)
                } else {
                    XCTFail("\(name) has no operationId")
                }
                let responses = op["responses"]?.objectValue ?? [:]
                XCTAssertFalse(responses.isEmpty, "\(name) has no responses")
                XCTAssertTrue(responses.keys.contains { $0.hasPrefix("2") }, "\(name) has no success response")
                for (code, resp) in responses {
                    XCTAssertTrue(code == "default" || (Int(code).map { (100...599).contains($0) } ?? false), "\(name) response \(code)")
                    XCTAssertNotNil(resp["description"]?.stringValue, "\(name) \(code) has no description")
                    for (_, media) in resp["content"]?.objectValue ?? [:] {
                        if let ref = media["schema"]?["$ref"]?.stringValue {
                            XCTAssertNotNil(schemas[String(ref.split(separator: "/").last ?? "")], "\(name) \(code): dangling \(ref)")
                        }
                    }
                }
                let params = op["parameters"]?.arrayValue ?? []
                let pathParams = Set(params.filter { $0["in"] == "path" }.compactMap { $0["name"]?.stringValue })
                XCTAssertEqual(pathParams, vars, "\(name): path parameters")
                for prm in params {
                    XCTAssertTrue(["path", "query", "header", "cookie"].contains(prm["in"]?.stringValue ?? ""), name)
                    if prm["in"] == "path" { XCTAssertEqual(prm["required"], true, name) }
                    XCTAssertNotNil(prm["schema"]?.objectValue, "\(name): parameter without schema")
                }
                if let rb = op["requestBody"] {
                    XCTAssertNotNil(rb["content"]?["application/json"]?["schema"]?.objectValue, "\(name): request body schema")
                }
                for sec in op["security"]?.arrayValue ?? [] {
                    for k in (sec.objectValue ?? [:]).keys { XCTAssertNotNil(schemes[k], "\(name): unknown security scheme \(k)") }
                }
            }
        }
        // The body schemas come from the services' own declarations.
        let register = paths["/auth/register"]?["post"]?["requestBody"]?["content"]?["application/json"]?["schema"]
        XCTAssertEqual(Set(register?["required"]?.arrayValue?.compactMap { $0.stringValue } ?? []), ["email", "password", "name", "phone"])
        let topup = paths["/wallet/topup"]?["post"]
        XCTAssertEqual(topup?["requestBody"]?["content"]?["application/json"]?["schema"]?["properties"]?["amountPaise"]?["type"], "integer")
        XCTAssertTrue(topup?["parameters"]?.arrayValue?.contains { $0["name"] == "Idempotency-Key" && $0["in"] == "header" } == true)
    }
}
