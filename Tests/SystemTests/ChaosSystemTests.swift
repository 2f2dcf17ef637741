import XCTest
import JSON
import RPC
import Runtime
import TestSupport

/// The proof run: a steady load of creates, replays and cancels while every kind of process is
/// killed with SIGKILL in turn, redis-server is restarted and the provider turns slow and
/// failing; then, once the system settles, every invariant of docs/orders.md ("Invariants") is checked
/// and printed with its count. Bounded to about three minutes; runs in CI.
class ChaosSystemTests: XCTestCase {
    class var backend: StoreBackend { .sqlite }

    func testChaosRunKeepsEveryInvariant() throws {
        let r = CheckReport("chaos (\(Self.backend)): kill -9 every process kind, restart redis, slow and failing provider, under load")
        let sys = try OOPSSystem(extraEnv: ParcelXCrashSystemTests.workerEnv, backend: Self.backend)
        defer { sys.stop() }
        let probe = SystemProbe(sys)
        let merchants = makeMerchants(sys, count: 4, topupPaise: 100_000_000, tag: "chaos")
        for m in merchants { XCTAssertEqual(try probe.balance(m.userId), m.topupPaise, "merchant set up") }

        let load = OrderLoad(sys: sys, merchants: merchants, replayShare: 0.2, cancelShare: 0.12)
        let loadStart = Date()
        load.start(threads: 6, pauseMs: 20...80)
        r.say("load started: 6 threads, 4 merchants, creates / replays (20 %) / cancels (12 %)")

        // The script: (seconds after the load started, what to do). Each step waits for its time.
        let steps: [(Double, String, () throws -> Void)] = [
            (4, "kill -9 AuthSvc, restart", { try sys.procs.crashAndRestart("auth") }),
            (9, "kill -9 WalletSvc, restart", { try sys.procs.crashAndRestart("wallet") }),
            (14, "kill -9 ParcelXSvc, restart", { try sys.procs.crashAndRestart("parcelx") }),
            (19, "kill -9 OrderSvc, restart", { try sys.procs.crashAndRestart("order") }),
            (24, "kill -9 Gateway, restart", { XCTAssertTrue(try sys.crashAndRestartGateway(), "the Gateway came back") }),
            (29, "kill -9 redis-server, restart it on its AOF", { try sys.redis.restart() }),
            (34, "provider slow (400 ms) and failing (30 %)", { XCTAssertEqual(sys.configureSandbox(latencyMs: 400, failureRate: 0.3), 200) }),
            (46, "provider healthy again", { XCTAssertEqual(sys.configureSandbox(latencyMs: 0, failureRate: 0), 200) }),
            (50, "kill -9 OrderSvc and WalletSvc together, restart", {
                try sys.procs.crashAndRestart("order")
                try sys.procs.crashAndRestart("wallet")
            }),
            // ParcelXSvc is killed once only: a job running at two kills is failed by the stalled
            // checker without running (see ChaosKnownBugsSystemTests), and each kill costs up to
            // 60 s of stalled-job recovery with the queue's default timings.
            (58, "stop the load", { load.stop() }),
        ]
        try load.run(steps, from: loadStart, r)
        r.say("load stopped after \(load.log.all.count) requests\n" + load.log.summary())

        // Cancels refused for good send an order back to where it was (placed or pending).
        let (settled, counts) = probe.settle(allowed: Invariants.terminal, timeoutMs: 90_000, report: r)
        r.say("settled=\(settled): orders by status \(counts)")

        let orders = try probe.allOrders()
        XCTAssertGreaterThan(orders.count, 100, "the load made orders")
        Invariants.ordersMatchAnswers(orders, load.log, r)
        Invariants.finished(orders, r)
        let byId = Dictionary(orders.map { ($0["id"]?.stringValue ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        let cancels = load.log.all.filter { $0.kind == .cancel && (200..<300).contains($0.status) }
        let cancelIds = Set(cancels.compactMap(\.orderId))
        r.check("every accepted cancel ends cancelled, or its order back with the provider's refusal recorded", count: cancelIds.count,
                cancelIds.compactMap { id in
                    guard let o = byId[id] else { return "\(id) vanished" }
                    if o["status"] == "cancelled" { return nil }
                    if o["providerSyncStatus"] == "failed" { return nil }
                    return "\(id) is \(o["status"] ?? .null)/\(o["providerSyncStatus"] ?? .null) after an accepted cancel"
                })
        let shipments = sys.sandboxShipments()
        Invariants.shipments(orders, shipments, r)
        let stats = HTTP.request("GET", sys.sandbox + "/__sandbox/stats").body
        let dupCreates = Int(stats["endpoints"]?["create_order"]?["outcomes"]?["duplicate"]?.intValue ?? 0)
        r.check("no second create sent for a booked order (lookup first)", count: Int(stats["endpoints"]?["create_order"]?["calls"]?.intValue ?? 0),
                dupCreates == 0 ? [] : ["\(dupCreates) creates refused as duplicates"])
        try Invariants.money(orders, merchants: merchants, probe: probe, r)
        let q = try probe.queueCounts()
        Invariants.queuesDrained(q, shipments: shipments.count, r)
        r.say("orders by status: \(counts); cancels accepted: \(cancelIds.count); shipments at the provider: \(shipments.count) "
              + "(\(shipments.filter { $0["status_code"]?.intValue == 227 }.count) cancelled); queues: \(q.mapValues { $0.serialized() })")
        for f in r.failed { XCTFail(f) }
        if !r.failed.isEmpty {
            for k in ["order-0", "parcelx-0", "wallet-0"] { print("---- \(k)\n" + sys.procs.allLogs(k).suffix(3000)) }
        }
        r.say("done")
    }
}

/// The same run with every service's data in MongoDB.
final class ChaosMongoSystemTests: ChaosSystemTests {
    override class var backend: StoreBackend { .mongodb }
    override func testChaosRunKeepsEveryInvariant() throws { try super.testChaosRunKeepsEveryInvariant() }
}
