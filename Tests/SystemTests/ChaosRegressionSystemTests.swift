import XCTest
import JSON
import RPC
import Runtime
import TestSupport

/// Invariant breaks the chaos runs once found, kept as regression tests: a provider down for a
/// whole retry window, and a job caught in two worker crashes, must still end the order.
final class ChaosRegressionSystemTests: XCTestCase {
    /// A provider that answers HTTP 500 for the whole retry window of a create (5 attempts,
    /// ~15 s): attempts 2-5 only look the order up, the lookup's error escapes before the
    /// last-attempt handling, and the order stays `pending` with its charge for ever.
    func testProviderDownForEveryCreateAttemptStillEndsTheOrder() throws {
        let sys = try OOPSSystem()
        defer { sys.stop() }
        let probe = SystemProbe(sys)
        let m = sys.merchant("outage", balancePaise: 100_000)
        XCTAssertEqual(sys.configureSandbox(failureRate: 1.0), 200)
        let c = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("OUT-1"))
        XCTAssertEqual(c.status, 201, c.text)
        let id = c.body["id"]?.stringValue ?? ""
        let jobDone = waitUntil(timeoutMs: 40_000, intervalMs: 500) {
            ((try? probe.call(probe.parcelx, "queues.job", ["queue": "parcelx-orders-queue", "jobId": .string("create-\(id)")]))?["state"]) == "failed"
        }
        XCTAssertTrue(jobDone, "the create job used up its attempts")
        XCTAssertEqual(sys.configureSandbox(failureRate: 0), 200)
        var o: JSON = .null
        _ = waitUntil(timeoutMs: 10_000, intervalMs: 500) {
            o = sys.call("GET", "/orders/\(id)", token: m.token).body
            return Invariants.terminal.contains(o["status"]?.stringValue ?? "")
        }
        XCTAssertTrue(Invariants.terminal.contains(o["status"]?.stringValue ?? ""),
                      "an order whose create job gave up ends placed or failed (refunded), not \(o["status"] ?? .null)")
    }

    /// The same for a cancel of an order that was never booked: the cancel job's lookup fails on
    /// every attempt and the order stays `cancel_requested`, charged, for ever.
    func testProviderDownForEveryCancelAttemptStillEndsTheOrder() throws {
        let sys = try OOPSSystem()
        defer { sys.stop() }
        let probe = SystemProbe(sys)
        let m = sys.merchant("outage", balancePaise: 100_000)
        XCTAssertEqual(sys.configureSandbox(failureRate: 1.0), 200)
        let id = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("OUT-2")).body["id"]?.stringValue ?? ""
        usleep(300_000)
        XCTAssertEqual(sys.call("POST", "/orders/\(id)/cancel", token: m.token).status, 202)
        let jobDone = waitUntil(timeoutMs: 40_000, intervalMs: 500) {
            ((try? probe.call(probe.parcelx, "queues.job", ["queue": "parcelx-order-cancellation-queue", "jobId": .string("cancel-\(id)-1")]))?["state"]) == "failed"
        }
        XCTAssertTrue(jobDone, "the cancel job used up its attempts")
        XCTAssertEqual(sys.configureSandbox(failureRate: 0), 200)
        usleep(5_000_000)
        let o = sys.call("GET", "/orders/\(id)", token: m.token).body
        XCTAssertTrue(Invariants.terminal.contains(o["status"]?.stringValue ?? ""),
                      "an order whose cancel job gave up ends cancelled (or placed/failed), not \(o["status"] ?? .null)")
    }

    /// A create job whose worker is killed twice while it runs must run again (it once was failed
    /// by the stalled checker unrun, "job stalled more than allowable limit", leaving the order
    /// `pending` with its charge for ever).
    func testJobStalledTwiceStillEndsTheOrder() throws {
        let sys = try OOPSSystem(extraEnv: ParcelXCrashSystemTests.workerEnv.merging(
            ["PARCELX_TIMEOUT_MS": "120000", "PARCELX_TOTAL_TIMEOUT_MS": "120000"]) { a, _ in a })
        defer { sys.stop() }
        let probe = SystemProbe(sys)
        let m = sys.merchant("stall", balancePaise: 100_000)
        XCTAssertEqual(sys.configureSandbox(latencyMs: 100_000), 200)
        let id = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("ST-1")).body["id"]?.stringValue ?? ""
        func job() -> JSON { (try? probe.call(probe.parcelx, "queues.job", ["queue": "parcelx-orders-queue", "jobId": .string("create-\(id)")])) ?? .null }
        func stalls() -> Int { ((try? probe.queueEvents("parcelx-orders-queue")) ?? []).filter { $0["event"] == "stalled" && $0["jobId"]?.stringValue == "create-\(id)" }.count }
        for round in 1...2 {
            XCTAssertTrue(waitUntil(timeoutMs: 90_000, intervalMs: 200) { job()["state"] == "active" && stalls() == round - 1 }, "job active, round \(round)")
            usleep(500_000)
            // Before the last kill the provider becomes fast again, so the run after it can finish.
            if round == 2 { XCTAssertEqual(sys.configureSandbox(latencyMs: 0), 200) }
            try sys.procs.crashAndRestart("parcelx")
            print("killed ParcelXSvc while create-\(id) was active (round \(round))")
        }
        XCTAssertTrue(waitUntil(timeoutMs: 90_000, intervalMs: 500) { stalls() == 2 }, "second stall detected")
        var o: JSON = .null
        _ = waitUntil(timeoutMs: 20_000, intervalMs: 500) {
            o = sys.call("GET", "/orders/\(id)", token: m.token).body
            return Invariants.terminal.contains(o["status"]?.stringValue ?? "")
        }
        XCTAssertTrue(Invariants.terminal.contains(o["status"]?.stringValue ?? ""),
                      "order \(o["status"] ?? .null); job \(job()["state"] ?? .null): \(job()["failedReason"] ?? .null)")
    }
}
