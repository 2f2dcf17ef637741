import XCTest
import JSON
import RPC
import Runtime
import TestSupport

/// Two cells (each its own run dir, sockets, Gateway and ParcelXSvc), as two hosts would run
/// them, sharing one MongoDB-wire server, one Redis under Sentinel (master, replica, three
/// sentinels) and the provider, with nginx in front.
final class CellsSystemTests: XCTestCase {
    /// Everything two cells share, and the cells.
    final class Deployment {
        let mongo: MongoServer
        let redis: RedisSentinelSet
        let infra: ProcessSet
        let sandbox: String
        var cells: [OOPSCell] = []
        var nginx: NginxBalancer?
        let adminEmail = "admin@oops.test", adminPassword = "admin-password-123"
        var env: [String: String] = [:]

        init(cells n: Int = 2) throws {
            mongo = try MongoServer(testCommands: true)
            do { redis = try RedisSentinelSet() } catch { mongo.stop(); throw error }
            let sandboxPort = freePort()
            sandbox = "http://127.0.0.1:\(sandboxPort)"
            infra = ProcessSet(env: ["OOPS_SANDBOX_ADDR": "127.0.0.1:\(sandboxPort)"])
            env = redis.env.merging([
                "OOPS_MONGODB_URI": mongo.uri(database: "oops_cells\(UInt32.random(in: 0...UInt32.max))"),
                // Shared by every cell: tokens from one AuthSvc verify at every Gateway, KYC
                // data stored by one cell reads in the other.
                "OOPS_TOKEN_SECRET": Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString(),
                "OOPS_KYC_KEY": Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString(),
                "PARCELX_BASE_URL": sandbox, "OOPS_ADMIN_EMAIL": adminEmail, "OOPS_ADMIN_PASSWORD": adminPassword,
                "PARCELX_TIMEOUT_MS": "1500", "PARCELX_TOTAL_TIMEOUT_MS": "2000", "OOPS_ORDER_RECOVERY_MS": "1000",
                "OOPS_ORDER_RECONCILE_MS": "2000", "OOPS_ORDER_RECONCILE_AFTER_MS": "5000",
                "OOPS_RATE_IP_PER_S": "100000", "OOPS_RATE_IP_BURST": "100000", "OOPS_RATE_LOGIN_PER_MIN": "100000",
                "OOPS_RATE_LOGIN_BURST": "100000", "OOPS_RATE_REGISTER_PER_MIN": "100000", "OOPS_RATE_REGISTER_BURST": "100000",
            ].merging(ParcelXCrashSystemTests.workerEnv) { a, _ in a }) { a, _ in a }
            do {
                try infra.startBinary("ParcelXSandbox", key: "sandbox")
                for i in 0..<n { cells.append(try OOPSCell(name: ["A", "B", "C", "D"][i % 4], sharedEnv: env)) }
                nginx = try NginxBalancer(gateways: cells.map { "127.0.0.1:\($0.httpPort)" })
            } catch {
                stop()
                throw error
            }
        }

        var base: String { nginx?.base ?? "" }
        func adminToken(via base: String) -> String { OOPSSystem.adminToken(base: base, email: adminEmail, password: adminPassword) }
        func shipments() -> [JSON] { HTTP.request("GET", sandbox + "/__sandbox/shipments").body["shipments"]?.arrayValue ?? [] }

        func stop() {
            nginx?.stop()
            for c in cells { c.stop() }
            infra.cleanup()
            redis.stop()
            mongo.stop()
        }
    }

    func testEverythingAMerchantDoesWorksThroughEitherCell() throws {
        let d = try Deployment()
        defer { d.stop() }
        let (a, b) = (d.cells[0], d.cells[1])
        let admin = d.adminToken(via: a.base)
        XCTAssertFalse(admin.isEmpty)
        // Registered and topped up through A; the token AuthSvc of A signed is accepted by B.
        let m = OOPSSystem.merchant(base: a.base, adminToken: admin, "cells", balancePaise: 1_000_000)
        let wallet = HTTP.request("GET", b.base + "/wallet", headers: ["Authorization": "Bearer \(m.token)"])
        XCTAssertEqual(wallet.status, 200, wallet.text)
        XCTAssertEqual(wallet.body["balancePaise"]?.intValue, 1_000_000)

        // The same clientOrderId to both cells at the same instant: one order, one charge.
        for round in 0..<5 {
            let coid = "BOTH-\(round)"
            let answers = Locked<[Int: HTTPResult]>([:])
            let bases = [a.base, b.base]
            inParallel(2) { i in
                let r = HTTP.request("POST", bases[i] + "/orders/create", headers: ["Authorization": "Bearer \(m.token)"],
                                     body: OOPSSystem.orderBody(coid))
                answers.withLock { $0[i] = r }
            }
            let rs = answers.current.values.sorted { $0.status < $1.status }
            XCTAssertEqual(rs.map(\.status), [200, 201], "\(coid): one creates, one replays: \(rs.map(\.text))")
            XCTAssertEqual(Set(rs.map { $0.body["id"]?.stringValue ?? "" }).count, 1, "\(coid): the same order both times")
        }
        let orders = HTTP.request("GET", d.base + "/orders?limit=100", headers: ["Authorization": "Bearer \(m.token)"]).body["items"]?.arrayValue ?? []
        XCTAssertEqual(orders.count, 5, "five orders")
        let ledger = HTTP.request("GET", d.base + "/wallet/transactions?limit=100", headers: ["Authorization": "Bearer \(m.token)"])
        let charges = (ledger.body["items"]?.arrayValue ?? []).filter { $0["reason"] == "order_charge" }
        XCTAssertEqual(charges.count, 5, "one charge per order: \(ledger.text)")

        // Created through A, cancelled through B.
        let created = HTTP.request("POST", a.base + "/orders/create", headers: ["Authorization": "Bearer \(m.token)"], body: OOPSSystem.orderBody("A-THEN-B"))
        XCTAssertEqual(created.status, 201, created.text)
        let id = try XCTUnwrap(created.body["id"]?.stringValue)
        let cancel = HTTP.request("POST", b.base + "/orders/\(id)/cancel", headers: ["Authorization": "Bearer \(m.token)"])
        XCTAssertTrue((200..<300).contains(cancel.status), cancel.text)
        XCTAssertTrue(waitUntil(timeoutMs: 60_000, intervalMs: 200) {
            HTTP.request("GET", a.base + "/orders/\(id)", headers: ["Authorization": "Bearer \(m.token)"]).body["status"] == "cancelled"
        }, "cancelled")

        // An admin token signed by B's AuthSvc works at A's Gateway.
        let login = HTTP.request("POST", b.base + "/auth/login", body: ["email": .string(d.adminEmail), "password": .string(d.adminPassword)])
        let tokenB = try XCTUnwrap(login.body["accessToken"]?.stringValue)
        let logs = HTTP.request("GET", a.base + "/admin/orders/\(id)/provider-logs", headers: ["Authorization": "Bearer \(tokenB)"])
        XCTAssertEqual(logs.status, 200, logs.text)

        // Every order settles once; the provider holds at most one shipment per order.
        let probe = SystemProbe(runDir: a.procs.runDir)
        let r = CheckReport("two cells")
        let (settled, counts) = probe.settle(allowed: Invariants.terminal, timeoutMs: 90_000, report: r)
        XCTAssertTrue(settled, "settled: \(counts)")
        Invariants.shipments(try probe.allOrders(), d.shipments(), r)
        XCTAssertEqual(try probe.balance(m.userId), 1_000_000 - 5 * (charges.first?["amountPaise"]?.intValue ?? 0), "the cancelled order was refunded")
        for f in r.failed { XCTFail(f) }
    }

    /// Order load through nginx (creates, replays, cancels) while a whole cell is killed with
    /// `kill -9` and brought back, the Redis master is killed (Sentinel fails over) and MongoDB is
    /// restarted; then every invariant is checked and printed with its count.
    func testChaosAcrossCellsKeepsEveryInvariant() throws {
        let r = CheckReport("cells chaos: kill -9 a whole cell, kill the Redis master, restart MongoDB, under load through nginx")
        let d = try Deployment()
        defer { d.stop() }
        let (a, b) = (d.cells[0], d.cells[1])
        let probe = SystemProbe(runDir: a.procs.runDir)
        let merchants = makeMerchants(base: d.base, adminToken: d.adminToken(via: d.base), count: 4, topupPaise: 100_000_000, tag: "cells")
        for m in merchants { XCTAssertEqual(try probe.balance(m.userId), m.topupPaise, "merchant set up") }

        let load = OrderLoad(base: d.base, merchants: merchants, replayShare: 0.2, cancelShare: 0.12)
        let loadStart = Date()
        load.start(threads: 4, pauseMs: 20...80)
        r.say("load started through nginx: 4 threads, 4 merchants, creates / replays (20 %) / cancels (12 %)")
        var killedRedis: RedisServer?
        let steps: [(Double, String, () throws -> Void)] = [
            (5, "kill -9 every process of cell B", { b.killAll() }),
            (12, "start cell B again", { try b.start() }),
            (18, "kill -9 the Redis master; wait for Sentinel to promote the replica", { killedRedis = try d.redis.failover() }),
            (26, "start the old Redis master again (it rejoins as a replica)", { try killedRedis?.restart() }),
            (30, "restart the MongoDB server", { try d.mongo.restart() }),
            (38, "kill -9 every process of cell A, start it again", {
                a.killAll()
                try a.start()
            }),
            (46, "stop the load", { load.stop() }),
        ]
        try load.run(steps, from: loadStart, r)
        r.say("load stopped after \(load.log.all.count) requests\n" + load.log.summary())

        let (settled, counts) = probe.settle(allowed: Invariants.terminal, timeoutMs: 150_000, report: r)
        r.say("settled=\(settled): orders by status \(counts)")
        let orders = try probe.allOrders()
        XCTAssertGreaterThan(orders.count, 50, "the load made orders")
        Invariants.ordersMatchAnswers(orders, load.log, r)
        Invariants.finished(orders, r)
        Invariants.shipments(orders, d.shipments(), r)
        try Invariants.money(orders, merchants: merchants, probe: probe, r)
        // No job lost: every order reached a final state (above), and no job is left behind.
        let q = try probe.queueCounts()
        Invariants.queuesDrained(q, shipments: d.shipments().count, r)
        var readded = 0.0
        for c in d.cells {
            let text = HTTP.request("GET", "http://127.0.0.1:\(c.adminPort)/metrics").text
            readded += (try? ObservabilitySystemTests.sum(ObservabilitySystemTests.parse(text), "oops_orders_jobs_readded_total")) ?? 0
        }
        r.say("orders by status: \(counts); shipments at the provider: \(d.shipments().count); jobs re-added by reconciliation "
              + "(since the last restart of each cell): \(Int(readded)); Redis master now on port \(d.redis.masterPort().map(String.init) ?? "?")")
        for f in r.failed { XCTFail(f) }
        if !r.failed.isEmpty {
            for c in d.cells { for k in ["order-0", "parcelx-0", "gateway"] { print("---- \(c.name) \(k)\n" + c.procs.allLogs(k).suffix(2000)) } }
        }
        r.say("done")
    }
}
