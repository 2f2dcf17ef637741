import Foundation
import JSON
import RPC
import Runtime
import TestSupport

/// What the load threads of a crash test sent and what came back, for the checks afterwards.
final class LoadLog: @unchecked Sendable {
    /// One request and its answer (status 0: no HTTP answer at all, e.g. the Gateway was down).
    struct Entry: Sendable {
        enum Kind: String, Sendable { case create, replay, cancel }
        var kind: Kind
        var merchant: String
        var clientOrderId: String
        var orderId: String?
        var status: Int
        var reason: String?
    }

    private let entries = Locked<[Entry]>([])

    func add(_ e: Entry) { entries.withLock { $0.append(e) } }
    var all: [Entry] { entries.current }

    /// "201 x 40, 200 x 12, 503 x 3 ..." per kind, for the test log.
    func summary() -> String {
        var lines: [String] = []
        for kind in [Entry.Kind.create, .replay, .cancel] {
            let es = all.filter { $0.kind == kind }
            guard !es.isEmpty else { continue }
            var by: [String: Int] = [:]
            for e in es { by["\(e.status)\(e.reason.map { " " + $0 } ?? "")", default: 0] += 1 }
            lines.append("  \(kind.rawValue) (\(es.count)): " + by.sorted { $0.value > $1.value }.map { "\($0.key) x \($0.value)" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}

/// A merchant taking part in a load run, with its own token.
struct LoadMerchant: Sendable {
    let userId: String
    let token: String
    let topupPaise: Int64
}

/// Load that a crash test runs from several threads: new orders, replays of earlier ones with
/// the same payload, and (optionally) cancels of orders that were answered 2xx.
final class OrderLoad: @unchecked Sendable {
    /// The Gateway (or balancer) the load goes to.
    let base: String
    let merchants: [LoadMerchant]
    let log = LoadLog()
    let cancelShare: Double
    let replayShare: Double
    private let stopFlag = Locked(false)
    private let counter = Locked(0)
    private let finished = DispatchGroup()
    private let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)

    convenience init(sys: OOPSSystem, merchants: [LoadMerchant], replayShare: Double = 0.25, cancelShare: Double = 0) {
        self.init(base: sys.base, merchants: merchants, replayShare: replayShare, cancelShare: cancelShare)
    }

    init(base: String, merchants: [LoadMerchant], replayShare: Double = 0.25, cancelShare: Double = 0) {
        self.base = base
        self.merchants = merchants
        self.replayShare = replayShare
        self.cancelShare = cancelShare
    }

    /// Starts `threads` load threads, each pausing `pauseMs` between requests.
    func start(threads: Int, pauseMs: ClosedRange<Int> = 5...30) {
        for t in 0..<threads {
            finished.enter()
            let th = Thread { [self] in
                defer { finished.leave() }
                runThread(t, pauseMs: pauseMs)
            }
            th.name = "load-\(t)"
            th.start()
        }
    }

    func stop() {
        stopFlag.withLock { $0 = true }
        finished.wait()
    }

    private func runThread(_ t: Int, pauseMs: ClosedRange<Int>) {
        let m = merchants[t % merchants.count]
        var mine: [String] = []  // client order ids this thread created (answered or not)
        var placedIds: [String] = []  // order ids answered 2xx, cancel candidates
        while !stopFlag.current {
            let roll = Double.random(in: 0..<1)
            if roll < cancelShare, let id = placedIds.randomElement() {
                let r = HTTP.request("POST", "\(base)/orders/\(id)/cancel", headers: ["Authorization": "Bearer \(m.token)"], timeoutS: 10)
                log.add(.init(kind: .cancel, merchant: m.userId, clientOrderId: "", orderId: id, status: r.status,
                              reason: r.body["error"]?["code"]?.stringValue))
                if (200..<300).contains(r.status) { placedIds.removeAll { $0 == id } }
            } else if roll < cancelShare + replayShare, let coid = mine.randomElement() {
                send(.replay, m, coid, &placedIds)
            } else {
                let n = counter.withLock { c -> Int in c += 1; return c }
                let coid = "L\(tag)-\(t)-\(n)"
                mine.append(coid)
                send(.create, m, coid, &placedIds)
            }
            usleep(UInt32(Int.random(in: pauseMs)) * 1000)
        }
    }

    private func send(_ kind: LoadLog.Entry.Kind, _ m: LoadMerchant, _ coid: String, _ placedIds: inout [String]) {
        let r = HTTP.request("POST", "\(base)/orders/create", headers: ["Authorization": "Bearer \(m.token)"],
                             body: OOPSSystem.orderBody(coid), timeoutS: 10)
        let id = (200..<300).contains(r.status) ? r.body["id"]?.stringValue : nil
        log.add(.init(kind: kind, merchant: m.userId, clientOrderId: coid, orderId: id, status: r.status,
                      reason: r.body["error"]?["code"]?.stringValue))
        if let id, !placedIds.contains(id) { placedIds.append(id) }
    }

    /// Runs a chaos schedule while the load goes on: each step at its second after `start`,
    /// reported with how long it took and how many requests the load had made by then.
    func run(_ steps: [(Double, String, () throws -> Void)], from start: Date, _ r: CheckReport) throws {
        for (at, what, action) in steps {
            let wait = at - Date().timeIntervalSince(start)
            if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
            let t0 = Date()
            try action()
            r.say("\(what) (\(String(format: "%.2f", Date().timeIntervalSince(t0))) s; \(log.all.count) requests so far)")
        }
    }
}

/// Reads the system's state behind the Gateway, over RPC as operators do: every order, every
/// ledger, the reconciliation and the queues.
struct SystemProbe {
    let order: RPCClient
    let wallet: RPCClient
    let parcelx: RPCClient
    static let admin = Actor(userId: "chaos-admin", role: .admin)

    init(_ sys: OOPSSystem) { self.init(runDir: sys.procs.runDir) }

    /// Over the sockets in `runDir` (one cell's, when several share the stores).
    init(runDir: String) {
        order = RPCClient(runDir: runDir, service: "order")
        wallet = RPCClient(runDir: runDir, service: "wallet")
        parcelx = RPCClient(runDir: runDir, service: "parcelx")
    }

    func call(_ c: RPCClient, _ method: String, _ params: JSON = [:], actor: Actor = .system) throws -> JSON {
        try c.call(method, params, ctx: .new(actor: actor, timeoutMs: 10_000))
    }

    /// Every order (the full internal record, with `stage`), all merchants.
    func allOrders() throws -> [JSON] {
        var out: [JSON] = []
        var cursor: JSON = .null
        repeat {
            var p: [String: JSON] = ["limit": 100]
            if let c = cursor.stringValue { p["cursor"] = .string(c) }
            let page = try call(order, "orders.list", .object(p), actor: Self.admin)
            for o in page["items"]?.arrayValue ?? [] {
                out.append(try call(order, "orders.internal.get", ["orderId": o["id"] ?? .null]))
            }
            cursor = page["nextCursor"] ?? .null
        } while !cursor.isNull
        return out
    }

    /// Status counts of every order, e.g. `["placed": 120, "pending": 3]`.
    func statusCounts() throws -> [String: Int] {
        var by: [String: Int] = [:]
        var cursor: JSON = .null
        repeat {
            var p: [String: JSON] = ["limit": 100]
            if let c = cursor.stringValue { p["cursor"] = .string(c) }
            let page = try call(order, "orders.list", .object(p), actor: Self.admin)
            for o in page["items"]?.arrayValue ?? [] { by[o["status"]?.stringValue ?? "?", default: 0] += 1 }
            cursor = page["nextCursor"] ?? .null
        } while !cursor.isNull
        return by
    }

    /// Every applied ledger entry of one wallet.
    func ledger(_ userId: String) throws -> [JSON] {
        var out: [JSON] = []
        var cursor: JSON = .null
        repeat {
            var p: [String: JSON] = ["userId": .string(userId), "limit": 100]
            if let c = cursor.stringValue { p["cursor"] = .string(c) }
            let page = try call(wallet, "wallet.transactions", .object(p), actor: Self.admin)
            out += page["items"]?.arrayValue ?? []
            cursor = page["nextCursor"] ?? .null
        } while !cursor.isNull
        return out
    }

    func balance(_ userId: String) throws -> Int64 {
        try call(wallet, "wallet.get", ["userId": .string(userId)], actor: Self.admin)["balancePaise"]?.intValue ?? -1
    }

    func reconcile() throws -> JSON { try call(wallet, "wallet.reconcile") }

    /// Counts per state of both queues, keyed by queue name.
    func queueCounts() throws -> [String: JSON] {
        var out: [String: JSON] = [:]
        for q in try call(parcelx, "queues.overview").arrayValue ?? [] {
            out[q["name"]?.stringValue ?? "?"] = q["counts"] ?? .null
        }
        return out
    }

    /// The tracking queue holds one delayed poll per booked shipment by design (docs/orders.md,
    /// "Tracking"): its jobs are not work a settled system still owes.
    static let trackingQueue = "parcelx-tracking-queue"

    /// Jobs not finished yet (waiting, active, delayed, prioritized, paused) over the provider
    /// work queues (create and cancel; not the tracking polls waiting for their time).
    func unfinishedJobs() throws -> Int {
        var n = 0
        for (q, c) in try queueCounts() where q != Self.trackingQueue {
            for s in ["waiting", "active", "delayed", "prioritized", "paused"] { n += Int(c[s]?.intValue ?? 0) }
        }
        return n
    }

    /// Waits until every order is past its pipeline (stage `enqueued`) in one of `allowed`, and
    /// no job is waiting, active or delayed. Returns whether it happened and the last status counts.
    func settle(allowed: Set<String>, timeoutMs: Int, report: CheckReport) -> (settled: Bool, counts: [String: Int]) {
        var counts: [String: Int] = [:]
        var lastSaid = Date.distantPast
        let ok = waitUntil(timeoutMs: timeoutMs, intervalMs: 1000) {
            guard let orders = try? allOrders() else { return false }
            counts = [:]
            var unfinished = 0
            for o in orders {
                counts[o["status"]?.stringValue ?? "?", default: 0] += 1
                if o["stage"] != "enqueued" { unfinished += 1 }
            }
            let jobs = (try? unfinishedJobs()) ?? -1
            if Date().timeIntervalSince(lastSaid) > 10 {
                report.say("settling: orders \(counts), \(unfinished) not enqueued yet, \(jobs) jobs unfinished")
                lastSaid = Date()
            }
            return unfinished == 0 && jobs == 0 && counts.keys.allSatisfy { allowed.contains($0) }
        }
        return (ok, counts)
    }

    func queueEvents(_ queue: String, count: Int = 1000) throws -> [JSON] {
        try call(parcelx, "queues.events", ["queue": .string(queue), "count": .int(Int64(count))]).arrayValue ?? []
    }
}

/// Collects the outcome of each named check of a crash test, printing it with its count so the
/// test log reads as a report.
final class CheckReport: @unchecked Sendable {
    private let failures = Locked<[String]>([])
    let title: String
    let started = Date()

    init(_ title: String) {
        self.title = title
        say("== \(title)")
    }

    func say(_ s: String) {
        let t = String(format: "%6.1fs", Date().timeIntervalSince(started))
        // Unbuffered, so the progress shows in the test log as it happens.
        FileHandle.standardOutput.write(Data("[\(t)] \(s)\n".utf8))
    }

    /// Records one check: `problems` empty means it held over `count` things.
    func check(_ name: String, count: Int, _ problems: [String]) {
        if problems.isEmpty {
            say("CHECK ok   \(name): \(count)")
        } else {
            say("CHECK FAIL \(name): \(problems.count) of \(count): " + problems.prefix(8).joined(separator: "; "))
            failures.withLock { $0.append("\(name): \(problems.prefix(8).joined(separator: "; "))") }
        }
    }

    var failed: [String] { failures.current }
}

/// The invariants every crash test checks once the system has settled.
enum Invariants {
    /// Terminal states of an order once nothing is in flight.
    static let terminal: Set<String> = ["placed", "failed", "cancelled"]

    /// One order per (merchant, clientOrderId); every 2xx answer names an existing order of that
    /// merchant and client id, the same one every time.
    static func ordersMatchAnswers(_ orders: [JSON], _ log: LoadLog, _ r: CheckReport) {
        var byKey: [String: [String]] = [:]
        for o in orders {
            byKey["\(o["userId"]?.stringValue ?? "")|\(o["clientOrderId"]?.stringValue ?? "")", default: []].append(o["id"]?.stringValue ?? "")
        }
        r.check("one order per (merchant, clientOrderId)", count: byKey.count,
                byKey.filter { $0.value.count > 1 }.map { "\($0.key) -> \($0.value)" })

        let byId = Dictionary(orders.map { ($0["id"]?.stringValue ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        var problems: [String] = []
        var answered: [String: String] = [:]
        let twoXX = log.all.filter { $0.kind != .cancel && (200..<300).contains($0.status) }
        for e in twoXX {
            guard let id = e.orderId, let o = byId[id] else {
                problems.append("\(e.kind.rawValue) \(e.clientOrderId) answered \(e.status) with \(e.orderId ?? "no id"), no such order")
                continue
            }
            if o["userId"]?.stringValue != e.merchant || o["clientOrderId"]?.stringValue != e.clientOrderId {
                problems.append("order \(id) answered for \(e.clientOrderId) belongs to \(o["clientOrderId"]?.stringValue ?? "?")")
            }
            let key = "\(e.merchant)|\(e.clientOrderId)"
            if let prev = answered[key], prev != id { problems.append("\(e.clientOrderId) answered as \(prev) and as \(id)") }
            answered[key] = id
        }
        r.check("every 2xx create/replay answer has its order", count: twoXX.count, problems)
        let created201 = log.all.filter { $0.status == 201 }
        var seen201: [String: Int] = [:]
        for e in created201 { seen201["\(e.merchant)|\(e.clientOrderId)", default: 0] += 1 }
        r.check("at most one 201 per (merchant, clientOrderId)", count: created201.count,
                seen201.filter { $0.value > 1 }.map { "\($0.key) x \($0.value)" })
    }

    /// Money: each order charged exactly once with its charge, refunded at most once and only when
    /// failed or cancelled; no ledger entry for an order that does not exist; balances equal
    /// top-ups minus what the orders' final states cost.
    static func money(_ orders: [JSON], merchants: [LoadMerchant], probe: SystemProbe, _ r: CheckReport) throws {
        let byId = Dictionary(orders.map { ($0["id"]?.stringValue ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        var charges: [String: [JSON]] = [:]
        var refunds: [String: [JSON]] = [:]
        var orphans: [String] = []
        var balanceProblems: [String] = []
        var entries = 0
        for m in merchants {
            let ledger = try probe.ledger(m.userId)
            entries += ledger.count
            var sum: Int64 = 0
            for e in ledger {
                let reason = e["reason"]?.stringValue ?? ""
                let amount = e["amountPaise"]?.intValue ?? 0
                sum += e["type"] == "credit" ? amount : -amount
                guard reason == "order_charge" || reason == "order_refund" else { continue }
                let id = e["orderId"]?.stringValue ?? ""
                let ref = e["ref"]?.stringValue ?? ""
                if ref != "order:\(id):\(reason == "order_charge" ? "charge" : "refund")" { orphans.append("entry \(e["id"] ?? .null) has ref \(ref) for order \(id)") }
                guard let o = byId[id] else {
                    orphans.append("\(reason) \(ref) of \(amount) for an order that does not exist")
                    continue
                }
                if o["userId"]?.stringValue != m.userId { orphans.append("\(ref) charged to \(m.userId), order of \(o["userId"] ?? .null)") }
                if reason == "order_charge" { charges[id, default: []].append(e) } else { refunds[id, default: []].append(e) }
            }
            // What the orders' final states should have cost this merchant.
            let owed = orders.filter { $0["userId"]?.stringValue == m.userId && !["failed", "cancelled"].contains($0["status"]?.stringValue ?? "") }
                .reduce(Int64(0)) { $0 + ($1["chargePaise"]?.intValue ?? 0) }
            let bal = try probe.balance(m.userId)
            if bal != sum { balanceProblems.append("\(m.userId): balance \(bal) != ledger \(sum)") }
            if bal != m.topupPaise - owed { balanceProblems.append("\(m.userId): balance \(bal) != top-up \(m.topupPaise) - live orders \(owed)") }
        }
        r.check("no charge or refund without its order", count: entries, orphans)
        var chargeProblems: [String] = []
        var refundProblems: [String] = []
        for o in orders {
            let id = o["id"]?.stringValue ?? ""
            let c = charges[id] ?? []
            let status = o["status"]?.stringValue ?? ""
            if c.count != 1 { chargeProblems.append("\(id) (\(status)) has \(c.count) charges") }
            else if c[0]["amountPaise"]?.intValue != o["chargePaise"]?.intValue { chargeProblems.append("\(id) charged \(c[0]["amountPaise"] ?? .null), order says \(o["chargePaise"] ?? .null)") }
            let rf = refunds[id] ?? []
            let shouldRefund = status == "failed" || status == "cancelled"
            if rf.count > 1 { refundProblems.append("\(id) refunded \(rf.count) times") }
            if shouldRefund && rf.count != 1 { refundProblems.append("\(id) is \(status) but has \(rf.count) refunds") }
            if !shouldRefund && !rf.isEmpty { refundProblems.append("\(id) is \(status) but was refunded") }
        }
        r.check("every order charged exactly once, for its charge", count: orders.count, chargeProblems)
        r.check("refunds exactly for failed/cancelled orders, at most one each", count: orders.count, refundProblems)
        r.check("balances = ledger sums = top-ups - live orders' charges", count: merchants.count, balanceProblems)
        let rec = try probe.reconcile()
        r.check("wallet.reconcile ok", count: Int(rec["wallets"]?.intValue ?? 0),
                rec["ok"] == true ? [] : ["\(rec.serialized())"])
    }

    /// The provider holds at most one live shipment per order, exactly the placed ones (with the
    /// order's AWB), none for cancelled orders, and nothing for orders OOPS does not know.
    /// No job lost or stuck: nothing active, waiting or delayed in the work queues; the tracking
    /// queue holds polls waiting for their time by design, at most one per booked shipment.
    static func queuesDrained(_ q: [String: JSON], shipments: Int, _ r: CheckReport) {
        r.check("no job stuck in active (or waiting/delayed)", count: q.count,
                q.filter { c in (c.key == SystemProbe.trackingQueue ? ["active", "waiting"] : ["active", "waiting", "delayed"]).contains { (c.value[$0]?.intValue ?? 0) > 0 } }
                    .map { "\($0.key): \($0.value.serialized())" })
        let polls = Int(q[SystemProbe.trackingQueue]?["delayed"]?.intValue ?? 0)
        r.check("at most one tracking poll waiting per booked shipment", count: shipments,
                polls <= shipments ? [] : ["\(polls) polls waiting for \(shipments) shipments"])
    }

    static func shipments(_ orders: [JSON], _ shipments: [JSON], _ r: CheckReport) {
        var live: [String: [JSON]] = [:]
        var all: [String: Int] = [:]
        for s in shipments {
            let coid = s["client_order_id"]?.stringValue ?? ""
            all[coid, default: 0] += 1
            if s["status_code"]?.intValue != 227 { live[coid, default: []].append(s) }
        }
        let byId = Dictionary(orders.map { ($0["id"]?.stringValue ?? "", $0) }, uniquingKeysWith: { a, _ in a })
        r.check("at most one shipment per order at the provider", count: all.count, all.filter { $0.value > 1 }.map { "\($0.key) x \($0.value)" })
        r.check("no shipment for an unknown order", count: all.count, all.keys.filter { byId[$0] == nil }.map { "shipment for \($0)" })
        var problems: [String] = []
        for o in orders {
            let id = o["id"]?.stringValue ?? ""
            let l = live[id] ?? []
            switch o["status"]?.stringValue ?? "" {
            case "placed":
                if l.count != 1 { problems.append("placed \(id) has \(l.count) live shipments") }
                else if l[0]["awb"]?.stringValue != o["awbNumber"]?.stringValue { problems.append("placed \(id) awb \(o["awbNumber"] ?? .null) vs provider \(l[0]["awb"] ?? .null)") }
            case "cancelled", "failed":
                if !l.isEmpty { problems.append("\(o["status"] ?? .null) \(id) has a live shipment \(l[0]["awb"] ?? .null)") }
            default: break
            }
        }
        r.check("placed orders have exactly their one live shipment; cancelled/failed none", count: orders.count, problems)
    }

    /// Every order was driven to the queue and to a final state.
    static func finished(_ orders: [JSON], _ r: CheckReport, allowed: Set<String> = terminal) {
        r.check("every order's pipeline finished (stage enqueued)", count: orders.count,
                orders.filter { $0["stage"] != "enqueued" }.map { "\($0["id"] ?? .null) stage \($0["stage"] ?? .null) status \($0["status"] ?? .null)" })
        r.check("every order ends in \(allowed.sorted().joined(separator: "/"))", count: orders.count,
                orders.filter { !allowed.contains($0["status"]?.stringValue ?? "") }.map { "\($0["id"] ?? .null) is \($0["status"] ?? .null) (\($0["providerSyncStatus"] ?? .null))" })
    }
}

/// Registers `count` approved merchants with `topupPaise` each, retrying until all succeeded.
func makeMerchants(_ sys: OOPSSystem, count: Int, topupPaise: Int64, tag: String) -> [LoadMerchant] {
    makeMerchants(base: sys.base, adminToken: sys.adminToken(), count: count, topupPaise: topupPaise, tag: tag)
}

func makeMerchants(base: String, adminToken: String, count: Int, topupPaise: Int64, tag: String) -> [LoadMerchant] {
    (0..<count).map { i in
        let m = OOPSSystem.merchant(base: base, adminToken: adminToken, "\(tag)\(i)", balancePaise: topupPaise)
        return LoadMerchant(userId: m.userId, token: m.token, topupPaise: topupPaise)
    }
}
