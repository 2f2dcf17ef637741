import XCTest
import JSON
import RPC
import Runtime
import TestSupport

/// ParcelXSvc killed with SIGKILL while it books 200 shipments with a slow provider: the jobs it
/// held are recovered by the queue's stalled checker, and the provider ends with exactly one
/// shipment per order, every order placed, each charged once.
final class ParcelXCrashSystemTests: XCTestCase {
    /// Worker timings for ParcelXSvc. The queue defaults (30 s lock, 30 s stalled check) make
    /// recovery take 30–60 s after the kill; these names are what ParcelXSvc would read to
    /// shorten that (ignored while it does not).
    static let workerEnv = ["OOPS_QUEUE_LOCK_DURATION_MS": "5000", "OOPS_QUEUE_STALLED_INTERVAL_MS": "2000"]

    func testKillingParcelXSvcMidBatchLeavesOneShipmentPerOrder() throws {
        try killMidBatch(orders: 200, latencyMs: 200) { sys, _ in sys.sandboxShipments().count >= 60 }
    }

    /// Hundreds of provider calls in flight on one process (the provider answers after 8 s), killed.
    func testKillingParcelXSvcWithHundredsOfCallsInFlightLeavesOneShipmentPerOrder() throws {
        try killMidBatch(orders: 600, latencyMs: 8000, extraEnv: ["OOPS_RATE_USER_PER_S": "100000", "OOPS_RATE_USER_BURST": "100000",
                                                                   "OOPS_RATE_IP_PER_S": "100000", "OOPS_RATE_IP_BURST": "100000",
                                                                   "PARCELX_TIMEOUT_MS": "10000", "PARCELX_TOTAL_TIMEOUT_MS": "15000"]) { _, probe in
            ((try? probe.queueCounts()["parcelx-orders-queue"]?["active"]?.intValue) ?? 0) >= 300
        }
    }

    private func killMidBatch(orders total: Int, latencyMs: Int, extraEnv: [String: String] = [:],
                              killWhen: (OOPSSystem, SystemProbe) -> Bool) throws {
        let r = CheckReport("ParcelXSvc kill -9 in the middle of \(total) creates, provider latency \(latencyMs) ms")
        let sys = try OOPSSystem(extraEnv: Self.workerEnv.merging(extraEnv) { a, _ in a })
        defer { sys.stop() }
        let probe = SystemProbe(sys)
        XCTAssertEqual(sys.configureSandbox(latencyMs: latencyMs), 200)
        let topup: Int64 = 10_000_000
        let m = sys.merchant("pxcrash", balancePaise: topup)
        let merchant = LoadMerchant(userId: m.userId, token: m.token, topupPaise: topup)
        XCTAssertEqual(try probe.balance(m.userId), topup, "merchant set up")

        let log = LoadLog()
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for i in 0..<(total / 8) {
                let coid = "PX-\(t)-\(i)"
                let res = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody(coid))
                log.add(.init(kind: .create, merchant: m.userId, clientOrderId: coid, orderId: res.body["id"]?.stringValue, status: res.status,
                              reason: res.body["error"]?["code"]?.stringValue))
            }
        }
        r.say("\(total) creates sent\n" + log.summary())
        XCTAssertEqual(log.all.filter { $0.status == 201 }.count, total, log.summary())

        // Kill once the workers hold many jobs at the provider.
        XCTAssertTrue(waitUntil(timeoutMs: 60_000, intervalMs: 20) { killWhen(sys, probe) }, "the workers take jobs")
        let before = try probe.queueCounts()["parcelx-orders-queue"] ?? .null
        let shipmentsAtKill = sys.sandboxShipments().count
        let pid = sys.procs.child("parcelx-0")?.pid ?? 0
        let killedAt = Date()
        try sys.procs.crashAndRestart("parcelx")
        r.say("killed ParcelXSvc pid \(pid) with \(shipmentsAtKill) shipments booked, queue then \(before.serialized()); restarted as pid \(sys.procs.child("parcelx-0")?.pid ?? 0)")
        let activeAtKill = Int(before["active"]?.intValue ?? 0)
        XCTAssertGreaterThan(activeAtKill, 0, "the kill hit jobs in flight")

        let (settled, counts) = probe.settle(allowed: ["placed"], timeoutMs: 180_000, report: r)
        let recoveryS = Date().timeIntervalSince(killedAt)
        r.say("settled=\(settled) \(String(format: "%.1f", recoveryS)) s after the kill: orders by status \(counts)")

        let orders = try probe.allOrders()
        r.check("\(total) orders", count: orders.count, orders.count == total ? [] : ["\(orders.count) orders"])
        Invariants.ordersMatchAnswers(orders, log, r)
        Invariants.finished(orders, r, allowed: ["placed"])
        let shipments = sys.sandboxShipments()
        var perOrder: [String: Int] = [:]
        for s in shipments { perOrder[s["client_order_id"]?.stringValue ?? "", default: 0] += 1 }
        r.check("exactly one shipment per order at the provider", count: orders.count,
                orders.compactMap { o in
                    let id = o["id"]?.stringValue ?? ""
                    return perOrder[id] == 1 ? nil : "\(id) has \(perOrder[id] ?? 0)"
                })
        Invariants.shipments(orders, shipments, r)
        let stats = HTTP.request("GET", sys.sandbox + "/__sandbox/stats").body
        let dupCreates = Int(stats["endpoints"]?["create_order"]?["outcomes"]?["duplicate"]?.intValue ?? 0)
        r.check("no second create sent for a booked order (lookup first)", count: Int(stats["endpoints"]?["create_order"]?["calls"]?.intValue ?? 0),
                dupCreates == 0 ? [] : ["\(dupCreates) creates refused as duplicates"])
        try Invariants.money(orders, merchants: [merchant], probe: probe, r)
        let stalled = try probe.queueEvents("parcelx-orders-queue").filter { $0["event"] == "stalled" }
        r.say("stalled-job recoveries in the events stream: \(stalled.count) (active at the kill: \(activeAtKill))")
        let q = try probe.queueCounts()
        r.check("no job left in active", count: q.count, q.filter { ($0.value["active"]?.intValue ?? 0) > 0 }.map { "\($0.key): \($0.value.serialized())" })
        for f in r.failed { XCTFail(f) }
        if !r.failed.isEmpty { print(sys.procs.allLogs("parcelx-0").suffix(4000)) }
        r.say("done")
    }
}
