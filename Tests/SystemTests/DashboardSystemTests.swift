import XCTest
import Foundation
import JSON
import Runtime
import Queue
import Redis
import TestSupport
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The queue dashboard through the real Gateway, services, Redis and sandbox: who may see it,
/// what it shows, and that its actions change the queues only with a valid CSRF token.
final class DashboardSystemTests: XCTestCase {
    nonisolated(unsafe) static var system: OOPSSystem?
    nonisolated(unsafe) static var shop: (userId: String, token: String)?
    var sys: OOPSSystem { Self.system! }
    let ordersQ = "parcelx-orders-queue"
    let cancelQ = "parcelx-order-cancellation-queue"
    let trackQ = "parcelx-tracking-queue"

    override class func setUp() {
        do {
            system = try OOPSSystem()
            shop = system!.merchant("dash", balancePaise: 1_000_000)
        } catch { XCTFail("system did not start: \(error)") }
    }

    override class func tearDown() {
        system?.stop()
        system = nil
    }

    // MARK: - helpers

    /// One request as a browser-less client sees it: no redirects followed, no cookie jar.
    func req(_ method: String, _ path: String, token: String? = nil, cookie: String? = nil, json: JSON? = nil,
             form: [(String, String)]? = nil, headers: [String: String] = [:]) -> DashReply {
        var h = headers
        if let t = token { h["Authorization"] = "Bearer \(t)" }
        if let c = cookie { h["Cookie"] = c }
        var body: [UInt8]?
        if let j = json {
            body = j.serializedBytes()
            h["Content-Type"] = "application/json"
        } else if let f = form {
            // As a browser encodes an HTML form.
            var allowed = CharacterSet.alphanumerics
            allowed.insert(charactersIn: "-._~")
            body = Array(f.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&").utf8)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        }
        return NoRedirectHTTP.request(method, sys.base + path, headers: h, body: body)
    }

    /// Signs in through the form endpoint; returns the cookie pair and the page's CSRF token.
    func browserSession() throws -> (cookie: String, csrf: String) {
        let r = req("POST", "/admin/login", form: [("next", "/admin/queues"), ("email", sys.adminEmail), ("password", sys.adminPassword)],
                    headers: ["Origin": sys.base])
        XCTAssertEqual(r.status, 303, r.text)
        let setCookie = try XCTUnwrap(r.header("Set-Cookie"))
        let cookie = String(setCookie.prefix { $0 != ";" })
        let page = req("GET", "/admin/queues", cookie: cookie)
        XCTAssertEqual(page.status, 200)
        let csrf = try XCTUnwrap(firstMatch(#"name="csrf" value="([^"]+)""#, page.text))
        return (cookie, csrf)
    }

    func firstMatch(_ pattern: String, _ text: String) -> String? {
        let re = try! NSRegularExpression(pattern: pattern)
        guard let m = re.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)), let r = Range(m.range(at: 1), in: text) else { return nil }
        return String(text[r])
    }

    /// Every `data-count="queue:state">N<` on a page.
    func renderedCounts(_ html: String) -> [String: Int] {
        let re = try! NSRegularExpression(pattern: #"data-count="([^"]+)">(\d+)<"#)
        var out: [String: Int] = [:]
        for m in re.matches(in: html, range: NSRange(html.startIndex..., in: html)) {
            out[String(html[Range(m.range(at: 1), in: html)!])] = Int(html[Range(m.range(at: 2), in: html)!])
        }
        return out
    }

    func job(_ queue: String, _ id: String) -> JSON {
        req("GET", "/admin/queues/api/\(queue)/jobs/\(id)", token: sys.adminToken()).body
    }

    /// Creates an order the sandbox refuses for good and waits until its job is failed.
    func failedOrderJob(_ consignee: String) -> (orderId: String, jobId: String) {
        let shop = Self.shop!
        let r = sys.call("POST", "/orders/create", token: shop.token,
                         body: OOPSSystem.orderBody("D-\(UInt32.random(in: 0...UInt32.max))", name: consignee))
        XCTAssertEqual(r.status, 201, r.text)
        let orderId = r.body["id"]?.stringValue ?? ""
        let jobId = "create-\(orderId)"
        XCTAssertTrue(waitUntil(timeoutMs: 15_000, intervalMs: 100) { self.job(self.ordersQ, jobId)["state"] == "failed" },
                      "job never failed: \(job(ordersQ, jobId).serialized())")
        return (orderId, jobId)
    }

    func queue(_ name: String) throws -> JobQueue { try JobQueue(name: name, redisURL: sys.redis.url) }

    // MARK: - access

    func testAnonymousVisitorsAreSentToSignInAndGetNoQueueData() {
        let page = req("GET", "/admin/queues/\(ordersQ)/failed?page=2")
        XCTAssertEqual(page.status, 303)
        XCTAssertEqual(page.header("Location"), "/admin/login?next=%2Fadmin%2Fqueues%2F\(ordersQ)%2Ffailed%3Fpage%3D2")
        XCTAssertEqual(req("GET", "/admin/queues").header("Location"), "/admin/login?next=%2Fadmin%2Fqueues")
        XCTAssertFalse(page.text.contains("data-count"))

        let api = req("GET", "/admin/queues/api/overview")
        XCTAssertEqual(api.status, 401)
        XCTAssertEqual(api.body["error"]?["code"], "unauthenticated")
        XCTAssertEqual(req("GET", "/admin/queues/api/\(ordersQ)/jobs/x").status, 401)
        XCTAssertEqual(req("GET", "/admin/queues", cookie: "oops_admin_session=forged.token.value").status, 303)

        let pause = req("POST", "/admin/queues/\(ordersQ)/actions/pause", json: ["csrf": "x"])
        XCTAssertEqual(pause.status, 401)
        XCTAssertEqual(job(ordersQ, "none")["error"]?["code"], "not_found")
        XCTAssertEqual(req("GET", "/admin/queues/api/overview", token: sys.adminToken()).body["queues"]?.arrayValue?.first?["paused"], false, "nothing changed")

        let login = req("GET", "/admin/login?next=/admin/queues")
        XCTAssertEqual(login.status, 200)
        XCTAssertTrue(login.text.contains("<form method=\"post\" action=\"/admin/login\">"))
        XCTAssertEqual(login.header("X-Frame-Options"), "DENY")
        XCTAssertTrue(login.header("Content-Security-Policy")?.contains("script-src 'self'") == true)
        XCTAssertEqual(req("GET", "/admin/queues/assets/app.js").header("Content-Type"), "text/javascript; charset=utf-8")
    }

    func testMerchantsAreRefusedWithBearerAndWithTheSignInForm() {
        let m = Self.shop!
        let page = req("GET", "/admin/queues", token: m.token)
        XCTAssertEqual(page.status, 403)
        XCTAssertFalse(page.text.contains("data-count"))
        XCTAssertEqual(req("GET", "/admin/queues/api/overview", token: m.token).status, 403)
        XCTAssertEqual(req("GET", "/admin/queues/\(ordersQ)/failed", token: m.token).status, 403)
        XCTAssertEqual(req("POST", "/admin/queues/\(ordersQ)/actions/pause", token: m.token).status, 403)

        // A merchant with the right password still gets no session.
        let email = "dash-form-\(UInt32.random(in: 0...UInt32.max))@shop.test"
        let reg = sys.call("POST", "/auth/register", body: ["email": .string(email), "password": "correct-horse-42", "name": "Shop", "phone": "9876543210"])
        XCTAssertEqual(reg.status, 201, reg.text)
        let form = req("POST", "/admin/login", json: ["email": .string(email), "password": "correct-horse-42"])
        XCTAssertEqual(form.status, 403)
        XCTAssertNil(form.header("Set-Cookie"))
        XCTAssertTrue(form.text.contains("administrators only"))
    }

    func testSignInSetsAHardenedSessionCookieAndSignOutEndsIt() throws {
        let bad = req("POST", "/admin/login", json: ["email": .string(sys.adminEmail), "password": "wrong-password"])
        XCTAssertEqual(bad.status, 401)
        XCTAssertNil(bad.header("Set-Cookie"))
        XCTAssertTrue(bad.text.contains("Wrong email or password"))

        let crossSite = req("POST", "/admin/login", json: ["email": .string(sys.adminEmail), "password": .string(sys.adminPassword)],
                            headers: ["Origin": "https://evil.example"])
        XCTAssertEqual(crossSite.status, 403)
        XCTAssertNil(crossSite.header("Set-Cookie"))

        let ok = req("POST", "/admin/login", json: ["email": .string(sys.adminEmail), "password": .string(sys.adminPassword),
                                                    "next": .string("/admin/queues/\(ordersQ)/failed")])
        XCTAssertEqual(ok.status, 303)
        XCTAssertEqual(ok.header("Location"), "/admin/queues/\(ordersQ)/failed")
        let sc = try XCTUnwrap(ok.header("Set-Cookie"))
        for attr in ["oops_admin_session=", "HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=900"] {
            XCTAssertTrue(sc.contains(attr), "\(attr) missing in \(sc)")
        }
        let open = req("POST", "/admin/login", json: ["email": .string(sys.adminEmail), "password": .string(sys.adminPassword), "next": "https://evil.example/"])
        XCTAssertEqual(open.header("Location"), "/admin/queues", "no open redirect")

        let s = try browserSession()
        XCTAssertEqual(req("GET", "/admin/queues/api/overview", cookie: s.cookie).status, 200)
        XCTAssertEqual(req("POST", "/admin/logout", cookie: s.cookie, json: [:]).status, 403, "sign-out needs the CSRF token")
        let out = req("POST", "/admin/logout", cookie: s.cookie, json: ["csrf": .string(s.csrf)])
        XCTAssertEqual(out.status, 303)
        XCTAssertTrue(out.header("Set-Cookie")?.contains("Max-Age=0") == true)
    }

    /// Regression (issue 18): signing out cleared the cookie in the browser only; the old cookie
    /// value kept working until it expired. The session now ends on the server, and for every
    /// Gateway sharing the Redis: a second Gateway process here signs in and out for the first.
    func testSignOutEndsTheSessionOnTheServerForEveryGateway() throws {
        let s = try browserSession()
        XCTAssertEqual(req("GET", "/admin/queues/api/overview", cookie: s.cookie).status, 200)
        // The cookie holds a session id, not a token: it opens nothing outside the dashboard.
        let value = String(s.cookie.drop { $0 != "=" }.dropFirst())
        XCTAssertEqual(sys.call("GET", "/admin/kyc", token: value).status, 401, "the cookie value is no bearer token")

        let out = req("POST", "/admin/logout", cookie: s.cookie, json: ["csrf": .string(s.csrf)])
        XCTAssertEqual(out.status, 303, out.text)
        XCTAssertEqual(out.header("Location"), "/admin/login?done=signed-out")
        // The old cookie, replayed as is (a copied cookie, a shared machine), is refused everywhere.
        let api = req("GET", "/admin/queues/api/overview", cookie: s.cookie)
        XCTAssertEqual(api.status, 401, api.text)
        XCTAssertEqual(api.body["error"]?["code"], "unauthenticated")
        XCTAssertEqual(req("GET", "/admin/queues", cookie: s.cookie).status, 303, "the HTML page sends it to sign in")
        XCTAssertEqual(req("GET", "/admin/queues/\(ordersQ)/failed", cookie: s.cookie).header("Location")?.hasPrefix("/admin/login"), true)
        let pause = req("POST", "/admin/queues/\(ordersQ)/actions/pause", cookie: s.cookie, json: ["csrf": .string(s.csrf)],
                        headers: ["Origin": sys.base])
        XCTAssertEqual(pause.status, 401, pause.text)
        XCTAssertEqual(req("GET", "/admin/queues/api/overview", token: sys.adminToken()).body["queues"]?.arrayValue?.first?["paused"], false,
                       "the replayed action changed nothing")

        // A second Gateway on the same Redis (its own public and admin ports).
        let (port2, admin2) = try sys.startExtraGateway("gateway-2")
        defer { _ = sys.procs.child("gateway-2")?.stop() }
        let base2 = "http://127.0.0.1:\(port2)"
        XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 100) { HTTP.request("GET", base2 + "/healthz", timeoutS: 2).status == 200 },
                      sys.procs.log("gateway-2"))
        XCTAssertEqual(HTTP.request("GET", "http://127.0.0.1:\(admin2)/healthz", timeoutS: 5).status, 200, "its own admin listener")
        let fresh = try browserSession()
        XCTAssertEqual(NoRedirectHTTP.request("GET", base2 + "/admin/queues/api/overview", headers: ["Cookie": fresh.cookie], body: nil).status, 200,
                       "a session started on one Gateway is good on another")
        let out2 = NoRedirectHTTP.request("POST", base2 + "/admin/logout", headers: ["Cookie": fresh.cookie, "Content-Type": "application/json"],
                                          body: JSON.object(["csrf": .string(fresh.csrf)]).serializedBytes())
        XCTAssertEqual(out2.status, 303, out2.text)
        XCTAssertEqual(req("GET", "/admin/queues/api/overview", cookie: fresh.cookie).status, 401, "signed out on one Gateway, refused by the other")
        XCTAssertEqual(sys.procs.child("gateway")?.isRunning, true)
    }

    // MARK: - what it shows

    func testAdminSeesCountsOfBothQueuesThatMatchRedis() throws {
        _ = failedOrderJob("Counted [sandbox:http401]")
        let admin = sys.adminToken()
        let qs = [ordersQ, cancelQ, trackQ]
        // Counts are compared once nothing is moving.
        XCTAssertTrue(waitUntil(timeoutMs: 10_000, intervalMs: 100) {
            qs.allSatisfy { (try? self.queue($0).counts()).map { $0.active == 0 && $0.waiting == 0 } ?? false }
        })
        let page = req("GET", "/admin/queues", token: admin)
        XCTAssertEqual(page.status, 200, page.text)
        XCTAssertEqual(page.header("X-Frame-Options"), "DENY")
        XCTAssertEqual(page.header("Content-Security-Policy")?.hasPrefix("default-src 'self'; script-src 'self'"), true)
        XCTAssertFalse(page.text.contains("<script>"), "no inline script")
        let shown = renderedCounts(page.text)
        let overview = req("GET", "/admin/queues/api/overview", token: admin).body["queues"]?.arrayValue ?? []
        XCTAssertEqual(overview.count, 3, "the two provider queues and the tracking queue")
        for q in qs {
            let c = try queue(q).counts()
            let redis = ["waiting": c.waiting, "active": c.active, "delayed": c.delayed, "prioritized": c.prioritized,
                         "completed": c.completed, "failed": c.failed, "paused": c.paused]
            for (st, n) in redis {
                XCTAssertEqual(shown["\(q):\(st)"], n, "\(q) \(st) on the page")
                XCTAssertEqual(overview.first { $0["name"]?.stringValue == q }?["counts"]?[st]?.intValue, Int64(n), "\(q) \(st) in the API")
            }
        }
        XCTAssertGreaterThanOrEqual(shown["\(ordersQ):failed"] ?? 0, 1)
    }

    func testFailedJobPageShowsReasonAndOrderAndEscapesTheConsigneeName() throws {
        let (orderId, jobId) = failedOrderJob("<script>alert(1)</script> [sandbox:reject]")
        let api = job(ordersQ, jobId)
        let reason = try XCTUnwrap(api["failedReason"]?.stringValue)
        XCTAssertFalse(reason.isEmpty)

        let page = req("GET", "/admin/queues/\(ordersQ)/jobs/\(jobId)", token: sys.adminToken())
        XCTAssertEqual(page.status, 200, page.text)
        XCTAssertTrue(page.text.contains("data-job-state=\"failed\""))
        XCTAssertTrue(page.text.contains(DashboardEscape.h(reason)), "the failure reason is shown")
        XCTAssertTrue(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt; [sandbox:reject]"), "the consignee name is shown escaped")
        XCTAssertFalse(page.text.contains("<script>alert(1)"), "markup from job data never reaches the page as markup")
        XCTAssertTrue(page.text.contains("href=\"/admin/orders/\(orderId)/provider-logs\""))
        XCTAssertTrue(page.text.contains("<span data-job-attempts>1</span> made of 5 allowed"), "attempts made and allowed")
        XCTAssertTrue(page.text.contains("&quot;orderId&quot;: &quot;\(orderId)&quot;"), "job data, escaped like the rest")
        XCTAssertTrue(page.text.contains("name=\"csrf\""))
        XCTAssertTrue(page.text.contains("/admin/queues/\(ordersQ)/jobs/\(jobId)/retry"))

        let calls = req("GET", "/admin/queues/orders/\(orderId)/provider-logs", token: sys.adminToken())
        XCTAssertEqual(calls.status, 200, calls.text)
        XCTAssertTrue(calls.text.contains("business_failure"), "the refused call is listed")
        XCTAssertTrue(calls.text.contains("&lt;script&gt;alert(1)"), "the payload is shown escaped")
        XCTAssertFalse(calls.text.contains("<script>alert(1)"))
        XCTAssertEqual(req("GET", "/admin/queues/orders/\(orderId)/provider-logs").status, 303)

        let list = req("GET", "/admin/queues/\(ordersQ)/failed", token: sys.adminToken())
        XCTAssertEqual(list.status, 200)
        XCTAssertTrue(list.text.contains("href=\"/admin/queues/\(ordersQ)/jobs/\(jobId)\""))
        XCTAssertEqual(req("GET", "/admin/queues/\(ordersQ)/jobs/nope", token: sys.adminToken()).status, 404)
        XCTAssertEqual(req("GET", "/admin/queues/no-such-queue/failed", token: sys.adminToken()).status, 404)
    }

    // MARK: - actions

    func testActionsWithoutTheCSRFTokenChangeNothingAndWithItRetryTheJob() throws {
        let (_, jobId) = failedOrderJob("Retry Me [sandbox:http401]")
        let s = try browserSession()
        let retry = "/admin/queues/\(ordersQ)/jobs/\(jobId)/retry"

        XCTAssertEqual(req("POST", retry, cookie: s.cookie, form: [("back", "/admin/queues")]).status, 403)
        XCTAssertEqual(req("POST", retry, cookie: s.cookie).status, 403)
        XCTAssertEqual(req("POST", retry, cookie: s.cookie, json: ["csrf": "forged"]).status, 403)
        XCTAssertEqual(req("POST", retry, cookie: s.cookie, json: ["csrf": .string(s.csrf)], headers: ["Origin": "https://evil.example"]).status, 403)
        XCTAssertEqual(req("POST", "/admin/queues/\(ordersQ)/actions/pause", cookie: s.cookie, json: [:]).status, 403)
        usleep(300_000)
        let still = job(ordersQ, jobId)
        XCTAssertEqual(still["state"], "failed", "a refused action changes nothing")
        XCTAssertEqual(still["attemptsMade"], 1)
        XCTAssertEqual(try queue(ordersQ).isPaused(), false)

        // Paused, the retried job waits where the test can see it; resumed, it runs (and fails) again.
        let pause = req("POST", "/admin/queues/\(ordersQ)/actions/pause", cookie: s.cookie,
                        json: ["csrf": .string(s.csrf), "back": "/admin/queues"], headers: ["Origin": sys.base])
        XCTAssertEqual(pause.status, 303, pause.text)
        XCTAssertEqual(pause.header("Location"), "/admin/queues?done=paused")
        XCTAssertEqual(try queue(ordersQ).isPaused(), true)
        let r = req("POST", retry, cookie: s.cookie, form: [("csrf", s.csrf), ("back", "/admin/queues/\(ordersQ)/jobs/\(jobId)")],
                    headers: ["Origin": sys.base, "Referer": sys.base + "/admin/queues/\(ordersQ)/jobs/\(jobId)"])
        XCTAssertEqual(r.status, 303, r.text)
        XCTAssertEqual(r.header("Location"), "/admin/queues/\(ordersQ)/jobs/\(jobId)?done=retried")
        XCTAssertNotEqual(job(ordersQ, jobId)["state"], "failed")
        let shown = req("GET", r.header("Location")!, cookie: s.cookie)
        XCTAssertTrue(shown.text.contains("The job is queued again."))

        let resume = req("POST", "/admin/queues/\(ordersQ)/actions/resume", cookie: s.cookie, json: ["csrf": .string(s.csrf)])
        XCTAssertEqual(resume.status, 303)
        XCTAssertEqual(try queue(ordersQ).isPaused(), false)
        // The order failed for good already, so the second run finds nothing to do and completes.
        XCTAssertTrue(waitUntil(timeoutMs: 10_000, intervalMs: 100) {
            let j = self.job(self.ordersQ, jobId)
            return j["state"] == "completed" && j["attemptsMade"] == 2
        }, "the retried job ran again: \(job(ordersQ, jobId).serialized())")
    }

    func testPromoteRemoveRetryAllAndCleanWithABearerToken() throws {
        let admin = sys.adminToken()
        let q = try queue(cancelQ)
        let a = try q.add(name: "cancel-order", dataJSON: #"{"orderId":"ord_missing_a"}"#, options: JobOptions(delayMs: 600_000))
        let b = try q.add(name: "cancel-order", dataJSON: #"{"orderId":"ord_missing_b"}"#, options: JobOptions(delayMs: 600_000))
        XCTAssertEqual(job(cancelQ, a)["state"], "delayed")
        let jobPage = req("GET", "/admin/queues/\(cancelQ)/jobs/\(a)", token: admin)
        XCTAssertTrue(jobPage.text.contains("/admin/queues/\(cancelQ)/jobs/\(a)/promote"), "a delayed job offers promote")

        // Scripts with a bearer token need no CSRF token: browsers never attach that header on their own.
        let p = req("POST", "/admin/queues/\(cancelQ)/jobs/\(a)/promote", token: admin)
        XCTAssertEqual(p.status, 303)
        XCTAssertEqual(p.header("Location"), "/admin/queues/\(cancelQ)/jobs/\(a)?done=promoted")
        XCTAssertNotEqual(job(cancelQ, a)["state"], "delayed")

        let rm = req("POST", "/admin/queues/\(cancelQ)/jobs/\(b)/remove", token: admin, json: ["back": .string("/admin/queues/\(cancelQ)/delayed")])
        XCTAssertEqual(rm.header("Location"), "/admin/queues/\(cancelQ)/delayed?done=removed")
        XCTAssertEqual(job(cancelQ, b)["error"]?["code"], "not_found")

        // The promoted job cannot find its order and ends failed; retry all, then clean.
        XCTAssertTrue(waitUntil(timeoutMs: 15_000, intervalMs: 100) { self.job(self.cancelQ, a)["state"] == "failed" }, job(cancelQ, a).serialized())
        let ra = req("POST", "/admin/queues/\(cancelQ)/actions/retry-all", token: admin)
        XCTAssertEqual(ra.header("Location"), "/admin/queues?done=retried-all&n=1")
        XCTAssertTrue(waitUntil(timeoutMs: 15_000, intervalMs: 100) { self.job(self.cancelQ, a)["attemptsMade"]?.intValue ?? 0 >= 2 && self.job(self.cancelQ, a)["state"] == "failed" })
        let bad = req("POST", "/admin/queues/\(cancelQ)/actions/clean", token: admin, json: ["state": "failed", "age": "-1", "unit": "days"])
        XCTAssertEqual(bad.header("Location"), "/admin/queues?error=invalid")
        XCTAssertEqual(try q.counts().failed, 1, "an invalid clean removes nothing")
        let clean = req("POST", "/admin/queues/\(cancelQ)/actions/clean", token: admin,
                        json: ["state": "failed", "age": "0", "unit": "minutes", "back": .string("/admin/queues/\(cancelQ)/failed?page=1")])
        XCTAssertEqual(clean.header("Location"), "/admin/queues/\(cancelQ)/failed?page=1&done=cleaned&n=1")
        XCTAssertEqual(try q.counts().failed, 0)
    }

    /// Removing a job a worker holds is refused with 409 and the reason (it was "Redis
    /// unavailable"), and the job stays where it is.
    func testRemovingAJobAWorkerHoldsIsAConflict() throws {
        let admin = sys.adminToken()
        let q = try queue(cancelQ)
        // A job no consumer takes yet (delayed), then held the way a worker holds one: active and locked.
        let id = try q.add(name: "cancel-order", dataJSON: #"{"orderId":"ord_held"}"#, options: JobOptions(delayMs: 600_000))
        let c = try RedisClient(url: sys.redis.url)
        _ = try c.run(["ZREM", q.base + "delayed", id])
        _ = try c.run(["LPUSH", q.base + "active", id])
        _ = try c.run(["SET", q.base + id + ":lock", "another-worker:1", "PX", "600000"])
        defer {
            _ = try? c.run(["DEL", q.base + id + ":lock"])
            _ = try? q.remove(id: id)
        }
        let rm = req("POST", "/admin/queues/\(cancelQ)/jobs/\(id)/remove", token: admin)
        XCTAssertEqual(rm.status, 409, rm.text)
        XCTAssertTrue(rm.text.contains("Job \(id) is being processed by a worker; it can be removed once it has finished"), rm.text)
        XCTAssertEqual(job(cancelQ, id)["state"], "active", "nothing was removed")
        XCTAssertEqual(try c.run(["EXISTS", q.base + id + ":lock"]).intValue, 1)
    }

    func testJobListsArePagedNewestFirst() throws {
        let admin = sys.adminToken()
        let q = try queue(cancelQ)
        var ids: [String] = []
        for i in 0..<23 {
            ids.append(try q.add(name: "cancel-order", dataJSON: #"{"orderId":"ord_page_\#(i)"}"#,
                                 options: JobOptions(delayMs: 600_000 + i * 1000)))
        }
        defer { for id in ids { _ = try? q.remove(id: id) } }
        let p1 = req("GET", "/admin/queues/\(cancelQ)/delayed", token: admin)
        XCTAssertEqual(p1.status, 200)
        XCTAssertTrue(p1.text.contains("Page 1 of 2 · 23 jobs"), p1.text)
        let p1ids = p1.text.components(separatedBy: "/jobs/").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        let p2 = req("GET", "/admin/queues/\(cancelQ)/delayed?page=2", token: admin)
        XCTAssertTrue(p2.text.contains("Page 2 of 2"))
        let p2ids = p2.text.components(separatedBy: "/jobs/").dropFirst().map { String($0.prefix { $0 != "\"" }) }
        XCTAssertEqual(p1ids.count, 20)
        XCTAssertEqual(p2ids.count, 3)
        XCTAssertEqual(p1ids.first, ids.last, "the newest job comes first")
        XCTAssertEqual(p2ids.last, ids.first)
        XCTAssertEqual(Set(p1ids + p2ids), Set(ids))
    }
}

/// One HTTP answer: status, headers (repeats joined by the client), body as JSON and text.
struct DashReply {
    let status: Int
    let headers: [String: String]
    let body: JSON
    let text: String
    func header(_ n: String) -> String? { headers.first { $0.key.lowercased() == n.lowercased() }?.value }
}

/// HTML escaping as the dashboard must apply it, restated here so the test does not trust the code under test.
enum DashboardEscape {
    static func h(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;")
    }
}

/// A synchronous HTTP client that neither follows redirects nor keeps cookies, so a test sees
/// each 303 and each Set-Cookie as the server sent it.
enum NoRedirectHTTP {
    final class Delegate: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
        func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void) {
            completionHandler(nil)
        }
    }

    static let session: URLSession = {
        let c = URLSessionConfiguration.ephemeral
        c.httpShouldSetCookies = false
        c.httpCookieAcceptPolicy = .never
        c.httpCookieStorage = nil
        return URLSession(configuration: c, delegate: Delegate(), delegateQueue: nil)
    }()

    static func request(_ method: String, _ url: String, headers: [String: String], body: [UInt8]?) -> DashReply {
        var r = URLRequest(url: URL(string: url)!)
        r.httpMethod = method
        r.timeoutInterval = 30
        for (k, v) in headers { r.setValue(v, forHTTPHeaderField: k) }
        if let b = body { r.httpBody = Data(b) }
        let sem = DispatchSemaphore(value: 0)
        let box = Locked<(Int, [String: String], Data)>((0, [:], Data()))
        session.dataTask(with: r) { data, resp, _ in
            let h = resp as? HTTPURLResponse
            var hs: [String: String] = [:]
            for (k, v) in h?.allHeaderFields ?? [:] { hs["\(k)"] = "\(v)" }
            box.withLock { $0 = (h?.statusCode ?? 0, hs, data ?? Data()) }
            sem.signal()
        }.resume()
        sem.wait()
        let (status, hs, data) = box.current
        return DashReply(status: status, headers: hs, body: (try? JSONParser.parse([UInt8](data))) ?? .null, text: String(decoding: data, as: UTF8.self))
    }
}
