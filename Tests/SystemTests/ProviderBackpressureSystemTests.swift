import XCTest
import JSON
import Queue
import Runtime
import TestSupport

/// The whole system against a provider that answers 429 with Retry-After: ParcelXSvc slows down
/// and sends again, and no job spends an attempt on it.
final class ProviderBackpressureSystemTests: XCTestCase {
    func testA429WithRetryAfterSlowsTheCallsAndCostsNoAttempt() throws {
        let sys = try OOPSSystem()
        defer { sys.stop() }
        // The next six provider calls answer 429 with Retry-After: 1.
        let cfg = HTTP.request("POST", sys.sandbox + "/__sandbox/config", body: ["throttleCalls": 6, "retryAfterS": 1])
        XCTAssertEqual(cfg.status, 200, cfg.text)
        let m = sys.merchant("throttle", balancePaise: 1_000_000)
        var ids: [String] = []
        for i in 0..<3 {
            let r = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("THR-\(i)"))
            XCTAssertEqual(r.status, 201, r.text)
            ids.append(r.body["id"]?.stringValue ?? "")
        }
        for id in ids {
            XCTAssertTrue(waitUntil(timeoutMs: 60_000) { sys.call("GET", "/orders/\(id)", token: m.token).body["status"] == "placed" }, "\(id) placed")
        }
        let stats = HTTP.request("GET", sys.sandbox + "/__sandbox/stats").body
        let throttled = (stats["endpoints"]?.objectValue ?? [:]).values.reduce(Int64(0)) { $0 + ($1["outcomes"]?["throttled"]?.intValue ?? 0) }
        XCTAssertEqual(throttled, 6, "the provider refused six calls: \(stats.serialized())")
        XCTAssertEqual(sys.sandboxShipments().count, 3, "one shipment per order")

        // Each order's job ran once: the 429s were waited out and sent again inside ParcelXSvc.
        let q = try JobQueue(name: "parcelx-orders-queue", prefix: "bull", redisURL: sys.redis.url)
        defer { q.close() }
        for id in ids {
            let job = try XCTUnwrap(try q.job(id: "create-\(id)"), "job of \(id)")
            XCTAssertEqual(job.attemptsMade, 1, "\(id) spent no attempt on a 429")
        }
        // The rate dropped: every refused call was sent again after the pause, and the calls
        // allowed at once were halved.
        let metrics = try ObservabilitySystemTests.parse(sys.operatorGet("/metrics").text)
        XCTAssertEqual(ObservabilitySystemTests.sum(metrics, "oops_provider_resent_total"), 6)
        XCTAssertLessThan(ObservabilitySystemTests.sum(metrics, "oops_provider_window"), 100)
        XCTAssertEqual(ObservabilitySystemTests.sum(metrics, "oops_provider_breaker_state", ["state=\"closed\""]), 1)
        // The audit log keeps the answer each job acted on, never a 429.
        let logs = sys.call("GET", "/admin/orders/\(ids[0])/provider-logs", token: sys.adminToken())
        XCTAssertEqual(logs.status, 200, logs.text)
        XCTAssertFalse(logs.text.contains("\"httpStatus\":429"), logs.text)
    }

    func testAProviderThatHangsTimesOutOnTimeAndOpensTheBreaker() throws {
        // Calls time out after 1 s; three failures in a row open the breaker for a minute.
        let sys = try OOPSSystem(extraEnv: ["PARCELX_TOTAL_TIMEOUT_MS": "1000", "PARCELX_BREAKER_FAILURES": "3",
                                            "PARCELX_BREAKER_OPEN_MS": "60000"])
        defer { sys.stop() }
        XCTAssertEqual(sys.configureSandbox(latencyMs: 20_000), 200)
        let m = sys.merchant("hang", balancePaise: 1_000_000)
        var ids: [String] = []
        for i in 0..<6 {
            let r = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("HANG-\(i)"))
            XCTAssertEqual(r.status, 201, r.text)
            ids.append(r.body["id"]?.stringValue ?? "")
        }
        func metrics() -> [String: Double] { (try? ObservabilitySystemTests.parse(sys.operatorGet("/metrics").text)) ?? [:] }
        XCTAssertTrue(waitUntil(timeoutMs: 60_000, intervalMs: 200) {
            ObservabilitySystemTests.sum(metrics(), "oops_provider_breaker_state", ["state=\"open\""]) == 1
        }, "the breaker opens")
        XCTAssertEqual(ObservabilitySystemTests.sum(metrics(), "oops_provider_breaker_opened_total"), 1)
        // Every call that went out timed out on its own timeout, long before the provider would answer.
        var timeouts: [Int64] = []
        for id in ids {
            let logs = sys.call("GET", "/admin/orders/\(id)/provider-logs", token: sys.adminToken())
            for e in logs.body["entries"]?.arrayValue ?? [] where e["response"]?["outcome"] == "timeout" {
                timeouts.append(e["response"]?["durationMs"]?.intValue ?? -1)
            }
        }
        XCTAssertGreaterThanOrEqual(timeouts.count, 3, "timed-out calls in the audit log")
        for ms in timeouts { XCTAssertTrue((900...10_000).contains(ms), "a call timed out after \(ms) ms") }
        // While it is open, nothing more is sent: the count of calls the sandbox saw stands still.
        let seen = { (HTTP.request("GET", sys.sandbox + "/__sandbox/stats").body["endpoints"]?.objectValue ?? [:]).values
            .reduce(Int64(0)) { $0 + ($1["calls"]?.intValue ?? 0) } }
        let before = seen()
        usleep(3_000_000)
        XCTAssertEqual(seen(), before, "no call goes to the provider while the breaker is open")
        XCTAssertGreaterThan(ObservabilitySystemTests.sum(metrics(), "oops_provider_calls_waiting"), 0, "calls are held, not failed")
        for id in ids { XCTAssertEqual(sys.call("GET", "/orders/\(id)", token: m.token).body["status"], "pending") }
    }
}
