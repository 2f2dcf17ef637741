import XCTest
import JSON
import RPC
import Runtime
import TestSupport

/// OrderSvc killed with SIGKILL at random instants under a load of creates and replays: no order
/// is lost, doubled or charged twice, and every accepted order still reaches the provider.
class OrderCrashSystemTests: XCTestCase {
    class var backend: StoreBackend { .sqlite }

    func testKillingOrderSvcUnderLoadLosesAndDoublesNothing() throws {
        let r = CheckReport("OrderSvc kill -9 under load (\(Self.backend))")
        let sys = try OOPSSystem(backend: Self.backend)
        defer { sys.stop() }
        let probe = SystemProbe(sys)
        let merchants = makeMerchants(sys, count: 3, topupPaise: 100_000_000, tag: "ocrash")
        for m in merchants { XCTAssertEqual(try probe.balance(m.userId), m.topupPaise, "merchant set up") }

        let load = OrderLoad(sys: sys, merchants: merchants, replayShare: 0.3)
        load.start(threads: 6)
        var kills = 0
        for _ in 0..<5 {
            usleep(UInt32.random(in: 700_000...2_000_000))
            let pid = sys.procs.child("order-0")?.pid ?? 0
            try sys.procs.crashAndRestart("order")
            kills += 1
            r.say("killed OrderSvc pid \(pid) (kill \(kills)) and restarted it as pid \(sys.procs.child("order-0")?.pid ?? 0); \(load.log.all.count) requests so far")
        }
        // Enough orders for the checks to mean something, however slow the machine or store.
        XCTAssertTrue(waitUntil(timeoutMs: 90_000, intervalMs: 200) { load.log.all.filter { $0.kind == .create && $0.status == 201 }.count > 60 },
                      "the load made orders")
        load.stop()
        r.say("load stopped after \(load.log.all.count) requests\n" + load.log.summary())

        // The recovery pass (every second, for orders idle > 3 s) and the workers finish the rest.
        let (settled, counts) = probe.settle(allowed: ["placed"], timeoutMs: 60_000, report: r)
        r.say("settled=\(settled): orders by status \(counts)")

        let orders = try probe.allOrders()
        XCTAssertGreaterThan(orders.count, 50, "the load made orders")
        XCTAssertGreaterThan(load.log.all.filter { $0.status == 0 || $0.status >= 500 }.count, 0,
                             "the kills interrupted some requests (otherwise this test proved nothing)")
        Invariants.ordersMatchAnswers(orders, load.log, r)
        Invariants.finished(orders, r, allowed: ["placed"])
        try Invariants.money(orders, merchants: merchants, probe: probe, r)
        Invariants.shipments(orders, sys.sandboxShipments(), r)
        let stale = try probe.queueCounts()
        r.check("no job left in active", count: stale.count, stale.filter { ($0.value["active"]?.intValue ?? 0) > 0 }.map { "\($0.key): \($0.value.serialized())" })
        for f in r.failed { XCTFail(f) }
        if !r.failed.isEmpty { print(sys.procs.allLogs("order-0").suffix(4000)) }
        r.say("done")
    }
}

/// The same run with the orders, wallets and logs in MongoDB.
final class OrderCrashMongoSystemTests: OrderCrashSystemTests {
    override class var backend: StoreBackend { .mongodb }
    override func testKillingOrderSvcUnderLoadLosesAndDoublesNothing() throws { try super.testKillingOrderSvcUnderLoadLosesAndDoublesNothing() }
}
