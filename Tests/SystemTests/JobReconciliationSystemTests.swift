import XCTest
import JSON
import Queue
import Redis
import Runtime
import TestSupport

/// A create job that vanishes from Redis (what a Sentinel failover loses when the old master had
/// not replicated it) does not leave its order pending for ever: OrderSvc's reconciliation adds
/// it again under the same id, and the order is placed exactly once.
final class JobReconciliationSystemTests: XCTestCase {
    func testAnOrderWhoseJobVanishedIsStillPlacedExactlyOnce() throws {
        let sys = try OOPSSystem(extraEnv: ["OOPS_ORDER_RECONCILE_MS": "300", "OOPS_ORDER_RECONCILE_AFTER_MS": "1000"])
        defer { sys.stop() }
        let q = try JobQueue(name: "parcelx-orders-queue", prefix: "bull", redisURL: sys.redis.url)
        defer { q.close() }
        let m = sys.merchant("vanish", balancePaise: 1_000_000)
        try q.pause()  // keep the worker away while the job is removed

        let r = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("VANISH-1"))
        XCTAssertEqual(r.status, 201, r.text)
        let id = try XCTUnwrap(r.body["id"]?.stringValue)
        let jobId = "create-\(id)"
        XCTAssertEqual(try q.state(id: jobId), .waiting)

        // Behind OOPS's back, as a lost write would: the job hash and its place in `wait` are gone.
        let raw = try RedisClient(url: sys.redis.url)
        try raw.run(["DEL", "bull:parcelx-orders-queue:\(jobId)"])
        try raw.run(["LREM", "bull:parcelx-orders-queue:wait", "0", jobId])
        XCTAssertEqual(try q.state(id: jobId), .unknown)

        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 100) { (try? q.state(id: jobId)) == .waiting }, "the job is added again")
        try q.resume()
        XCTAssertTrue(waitUntil(timeoutMs: 60_000) { sys.call("GET", "/orders/\(id)", token: m.token).body["status"] == "placed" },
                      "placed: \(sys.call("GET", "/orders/\(id)", token: m.token).text)")
        let shipments = sys.sandboxShipments().filter { $0["client_order_id"]?.stringValue == id }
        XCTAssertEqual(shipments.count, 1, "one shipment at the provider: \(shipments)")
        XCTAssertTrue(sys.procs.log("order-0").contains("added again"), "the re-add is logged")

        // An order that has its job, or is already placed, is left alone.
        let metrics = try ObservabilitySystemTests.parse(sys.operatorGet("/metrics").text)
        XCTAssertEqual(ObservabilitySystemTests.sum(metrics, "oops_orders_jobs_readded_total"), 1)
    }
}
