import Foundation
import JSON
import RPC
import Runtime
import TestSupport
import XCTest

/// MongoDB faults against the real process set on the test server (secantusd-py): down at
/// start, restarted under load, slow, hung. Plus instances preparing one store at the same time.
final class MongoFaultSystemTests: XCTestCase {
    /// Threads of a process, from /proc (each client pool libmongoc keeps has a monitor thread).
    private func threads(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Threads:") } ?? ""
        return Int(line.split(separator: "\t").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") ?? -1
    }

    private func health(_ ps: ProcessSet, _ service: String) -> JSON {
        let c = RPCClient(runDir: ps.runDir, service: service)
        defer { c.closeAll() }
        return (try? c.call("rpc.health", ctx: .new())) ?? .null
    }

    func testMongoDBDownAtStartIsNotReadyThenServedWithoutLeakingAClientPoolPerRetry() throws {
        let ps = try ProcessSet(backend: .mongodb)
        defer { ps.cleanup() }
        let server = try XCTUnwrap(ps.mongo).controllableServer()
        server.kill9()
        // Fail fast while it is down, so the retries come every two seconds.
        ps.env["OOPS_MONGODB_URI"] = (ps.env["OOPS_MONGODB_URI"] ?? "") + "?serverSelectionTimeoutMS=300&connectTimeoutMS=300"
        let services = ["auth", "wallet", "order", "parcelx"]
        let redis = try RedisServer()
        defer { redis.stop() }
        ps.env["OOPS_REDIS_URL"] = redis.url
        var pids: [String: Int32] = [:]
        for s in services { pids[s] = try ps.start(s).pid }
        for s in services {
            let h = health(ps, s)
            XCTAssertEqual(h["status"], "degraded", "\(s): \(h.serialized())")
            XCTAssertEqual(h["checks"]?["startup"]?["ok"], false, "\(s)")
        }
        // A few retries in, then as many again: each retry that kept its store would keep one
        // more client pool, with its monitor thread, alive.
        // (Before the fix, AuthSvc and WalletSvc gained one thread per retry: about ten here.)
        sleep(6)
        let before = pids.mapValues { threads($0) }
        sleep(20)
        let after = pids.mapValues { threads($0) }
        for s in services {
            XCTAssertLessThanOrEqual(after[s]!, before[s]! + 4, "\(s): threads grew from \(before[s]!) to \(after[s]!) while retrying")
        }

        try server.startAgain()
        for s in services {
            XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 200) { self.health(ps, s)["status"] == "ok" },
                          "\(s) never became ready: \(health(ps, s).serialized()) \(ps.log("\(s)-0").suffix(1500))")
            XCTAssertEqual(ps.child("\(s)-0")?.pid, pids[s], "\(s) recovered without a restart of its own")
        }
        // And it serves: a top-up lands in MongoDB.
        let wallet = RPCClient(runDir: ps.runDir, service: "wallet")
        defer { wallet.closeAll() }
        let merchant = Actor(userId: "usr_down_at_start", role: .merchant)
        _ = try wallet.call("wallet.topup", ["amountPaise": 500, "idempotencyKey": "k1"], ctx: .new(actor: merchant))
        XCTAssertEqual(try wallet.call("wallet.get", ctx: .new(actor: merchant))["balancePaise"], 500)
        let store = try ps.openStore("wallet")
        defer { store.close() }
        XCTAssertEqual(try store.count("wallets"), 1)
    }

    func testTwoInstancesStartingTogetherOnAFreshStoreBothServe() throws {
        for backend in StoreBackend.allCases {
            let ps = try ProcessSet(backend: backend)
            defer { ps.cleanup() }
            let redis = try RedisServer()
            defer { redis.stop() }
            ps.env["OOPS_REDIS_URL"] = redis.url
            for s in ["wallet", "order", "auth"] {
                let failures = Locked<[String]>([])
                inParallel(2) { i in
                    do { try ps.start(s, instance: i) } catch { failures.withLock { $0.append("\(error)") } }
                }
                XCTAssertEqual(failures.current, [], "\(backend) \(s)")
                for i in 0..<2 {
                    let c = RPCClient(runDir: ps.runDir, service: s)
                    let h = (try? c.call(instancePath: "\(ps.runDir)/\(s)-\(i).sock", "rpc.health", ctx: .new())) ?? .null
                    c.closeAll()
                    XCTAssertEqual(h["status"], "ok", "\(backend) \(s)-\(i): \(h.serialized()) \(ps.log("\(s)-\(i)").suffix(1000))")
                }
            }
        }
    }

    func testMongoDBKilledAndRestartedUnderLoadLosesAndDoublesNothing() throws {
        let r = CheckReport("MongoDB kill -9 and restart under load")
        let sys = try OOPSSystem(backend: .mongodb)
        defer { sys.stop() }
        let server = try XCTUnwrap(sys.procs.mongo).controllableServer()
        let probe = SystemProbe(sys)
        let merchants = makeMerchants(sys, count: 3, topupPaise: 100_000_000, tag: "mrestart")
        let pids = ["auth-0", "wallet-0", "order-0", "parcelx-0", "gateway"].map { ($0, sys.procs.child($0)?.pid ?? 0) }

        let load = OrderLoad(sys: sys, merchants: merchants, replayShare: 0.25, cancelShare: 0.1)
        load.start(threads: 4, pauseMs: 20...60)
        for n in 1...2 {
            usleep(UInt32.random(in: 2_000_000...4_000_000))
            let t0 = Date()
            try server.restart()
            r.say("MongoDB kill -9 and restart \(n): back after \(String(format: "%.1f", Date().timeIntervalSince(t0))) s; \(load.log.all.count) requests so far")
        }
        let beforeLast = load.log.all.count
        XCTAssertTrue(waitUntil(timeoutMs: 30_000) { load.log.all.count > beforeLast + 20 }, "the load goes on after the restarts")
        load.stop()
        r.say("load stopped after \(load.log.all.count) requests\n" + load.log.summary())

        let (settled, counts) = probe.settle(allowed: Invariants.terminal, timeoutMs: 120_000, report: r)
        r.say("settled=\(settled): orders by status \(counts)")
        let orders = try probe.allOrders()
        XCTAssertGreaterThan(orders.count, 10, "the load made orders")
        Invariants.ordersMatchAnswers(orders, load.log, r)
        Invariants.finished(orders, r)
        try Invariants.money(orders, merchants: merchants, probe: probe, r)
        Invariants.shipments(orders, sys.sandboxShipments(), r)
        for (key, pid) in pids {
            XCTAssertEqual(sys.procs.child(key)?.pid, pid, "\(key) recovered without a restart of its own")
        }
        XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 200) { sys.call("GET", "/readyz").status == 200 }, sys.call("GET", "/readyz").text)
        for f in r.failed { XCTFail(f) }
        if !r.failed.isEmpty { print(sys.procs.allLogs("order-0").suffix(3000) + "\n---- mongo\n" + server.log.suffix(2000)) }
    }

    func testSlowOrHungMongoDBIsAnswered503Or504NeverAHang() throws {
        let rpcTimeoutMs = 2000
        let sys = try OOPSSystem(extraEnv: ["OOPS_RPC_TIMEOUT_MS": String(rpcTimeoutMs)], backend: .mongodb)
        defer { sys.stop() }
        let server = try XCTUnwrap(sys.procs.mongo).controllableServer()
        let m = sys.merchant("slowdb", balancePaise: 100_000)
        XCTAssertEqual(sys.call("GET", "/wallet", token: m.token).status, 200)

        func requests(_ tag: String) -> [(String, HTTPResult)] {
            [("GET /wallet", sys.call("GET", "/wallet", token: m.token)),
             ("GET /orders", sys.call("GET", "/orders", token: m.token)),
             ("POST /orders/create", sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("SLOW-\(tag)"))),
             ("POST /wallet/topup", sys.call("POST", "/wallet/topup", token: m.token, body: ["amountPaise": 100], headers: ["Idempotency-Key": "slow-\(tag)"]))]
        }
        // Slow: every read and write held 8 s by the server, longer than the Gateway's deadline.
        XCTAssertNil(server.delay(["find", "insert", "update", "delete", "findAndModify", "count", "aggregate"], ms: 8000))
        for (what, r) in requests("a") {
            // Status 0 would mean the HTTP client gave up after 30 s: a hang.
            XCTAssertTrue([503, 504].contains(r.status), "slow MongoDB, \(what): \(r.status) \(r.text)")
        }
        XCTAssertNil(server.clearDelay())
        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 200) { sys.call("GET", "/wallet", token: m.token).status == 200 })

        // Hung: the server process stopped (SIGSTOP), connections open, nothing answered.
        server.pause()
        for (what, r) in requests("b") {
            XCTAssertTrue([503, 504].contains(r.status), "hung MongoDB, \(what): \(r.status) \(r.text)")
        }
        server.resume()
        XCTAssertTrue(waitUntil(timeoutMs: 60_000, intervalMs: 200) { sys.call("GET", "/wallet", token: m.token).status == 200 },
                      "the services recovered once MongoDB answered again")

        // Nothing was charged twice: the balance is the top-ups less the charge of each order
        // that exists (an order accepted while the store was slow may exist, once).
        var orders: [JSON] = []
        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 500) {
            orders = sys.call("GET", "/orders?limit=50", token: m.token).body["items"]?.arrayValue ?? []
            return orders.allSatisfy { ["placed", "failed", "cancelled"].contains($0["status"]?.stringValue ?? "") }
        }, "orders settle: \(orders.map { $0["status"] ?? .null })")
        let entries = sys.call("GET", "/wallet/transactions?limit=100", token: m.token).body["items"]?.arrayValue ?? []
        let signed = entries.reduce(Int64(0)) { sum, e in
            let amount = e["amountPaise"]?.intValue ?? 0
            return sum + (e["type"] == "credit" ? amount : -amount)
        }
        XCTAssertEqual(sys.call("GET", "/wallet", token: m.token).body["balancePaise"]?.intValue, signed, "the balance is the sum of the ledger")
        var perOrder: [String: Int] = [:]
        for e in entries where e["reason"] == "order_charge" { perOrder[e["orderId"]?.stringValue ?? "", default: 0] += 1 }
        XCTAssertTrue(perOrder.values.allSatisfy { $0 == 1 }, "one charge per order: \(perOrder)")
        XCTAssertLessThanOrEqual(orders.filter { $0["clientOrderId"] == "SLOW-a" }.count, 1)
        XCTAssertLessThanOrEqual(orders.filter { $0["clientOrderId"] == "SLOW-b" }.count, 1)
    }
}
