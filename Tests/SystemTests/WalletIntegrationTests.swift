import Foundation
import XCTest
import JSON
import RPC
import Runtime
import TestSupport

/// WalletSvc as real processes on real sockets over a real store (a SQLite file here, MongoDB in
/// the subclass): concurrency, replays, two instances on one store, kill -9 at random and at
/// every step of the apply protocol.
class WalletIntegrationTests: XCTestCase {
    class var backend: StoreBackend { .sqlite }
    var ps: ProcessSet!
    var clients: [RPCClient] = []

    static let merchantA = Actor(userId: "usr_merchant_a", role: .merchant)
    static let merchantB = Actor(userId: "usr_merchant_b", role: .merchant)
    static let admin = Actor(userId: "usr_admin", role: .admin)

    override func setUpWithError() throws {
        ps = try ProcessSet(backend: Self.backend)
    }

    override func tearDown() {
        for c in clients { c.closeAll() }
        clients = []
        ps?.cleanup()
    }

    // MARK: helpers

    func client() -> WalletRPC {
        let c = RPCClient(runDir: ps.runDir, service: "wallet", poolSize: 4)
        // Scan the run dir once up front: while a fresh client's first scan runs, concurrent
        // callers see an empty instance list (reported to the RPC owner).
        _ = c.instancePaths()
        clients.append(c)
        return WalletRPC(client: c, runDir: ps.runDir)
    }

    /// Restarts an instance after it died (or was stopped), and waits until it answers.
    @discardableResult
    func restartWallet(instance: Int = 0, extraEnv: [String: String] = [:]) throws -> WalletRPC {
        // The dead process's socket file is still there; remove it so "started" means listening.
        unlink("\(ps.runDir)/wallet-\(instance).sock")
        try ps.start("wallet", instance: instance, extraEnv: extraEnv)
        let c = client()
        XCTAssertTrue(waitUntil(timeoutMs: 15_000) {
            if case .success = c.call("rpc.health", [:], as: .system, instance: instance) { return true }
            return false
        })
        return c
    }

    // MARK: tests

    func testTwoHundredParallelChargesAgainstHundredRupeesChargeExactlyHundred() throws {
        try ps.start("wallet")
        let c = client()
        let uid = Self.merchantA.userId
        _ = try c.topup(Self.merchantA, 10_000, key: "fund")

        let t = c.chargeStorm(userId: uid, n: 200, amount: 100)
        XCTAssertEqual(t.other, [])
        XCTAssertEqual(t.ok, 100)
        XCTAssertEqual(t.refused, 100)
        XCTAssertEqual(try c.balance(uid), 0)
        let entries = try c.allEntries(uid)
        let debits = entries.filter { $0["type"] == "debit" }
        XCTAssertEqual(debits.count, 100)
        XCTAssertEqual(Set(debits.compactMap { $0["orderId"]?.stringValue }).count, 100)
        // Every balanceAfter is distinct: each debit saw the one before it, none overlapped.
        XCTAssertEqual(Set(debits.compactMap { $0["balanceAfterPaise"]?.intValue }), Set((0..<100).map { Int64($0) * 100 }))
        try c.assertReconciled()
    }

    func testFiftyParallelReplaysOfOneTopupKeyCreateOneEntry() throws {
        try ps.start("wallet")
        let c = client()
        let results = Locked([Result<JSON, RPCError>]())
        inParallel(50) { _ in
            let r = c.call("wallet.topup", ["amountPaise": 25_000, "idempotencyKey": "same-key"], as: Self.merchantA)
            results.withLock { $0.append(r) }
        }
        let all = results.current.compactMap { try? $0.get() }
        XCTAssertEqual(all.count, 50, "every replay answers, failures: \(results.current.filter { (try? $0.get()) == nil })")
        XCTAssertEqual(all.filter { $0["created"] == .bool(true) }.count, 1)
        XCTAssertEqual(Set(all.compactMap { $0["entry"]?["id"] }).count, 1, "all replays return the first entry")
        XCTAssertEqual(Set(all.compactMap { $0["balancePaise"] }), [.int(25_000)])
        XCTAssertEqual(try c.balance(Self.merchantA.userId), 25_000)
        XCTAssertEqual(try c.allEntries(Self.merchantA.userId).count, 1)
        try c.assertReconciled()
    }

    func testTopupKeyReusedWithDifferentAmountIsConflict() throws {
        try ps.start("wallet")
        let c = client()
        let first = try c.topup(Self.merchantA, 5_000, key: "k-1")
        XCTAssertEqual(first["created"], .bool(true))
        let again = c.call("wallet.topup", ["amountPaise": 5_001, "idempotencyKey": "k-1"], as: Self.merchantA)
        guard case .failure(let e) = again else { return XCTFail("a reused key with another amount must be refused: \(again)") }
        XCTAssertEqual(e.code, ErrorCode.conflict.rawValue)
        XCTAssertEqual(e.reason, "idempotency_key_reused")
        // The same key in another merchant's wallet is a different top-up.
        XCTAssertEqual(try c.topup(Self.merchantB, 7_000, key: "k-1")["created"], .bool(true))
        XCTAssertEqual(try c.balance(Self.merchantA.userId), 5_000)
        XCTAssertEqual(try c.balance(Self.merchantB.userId), 7_000)
        let replay = try c.topup(Self.merchantA, 5_000, key: "k-1")
        XCTAssertEqual(replay["created"], .bool(false))
        XCTAssertEqual(replay["entry"]?["id"], first["entry"]?["id"])
    }

    func testRefundRacingChargeOfSameOrderStaysConsistent() throws {
        try ps.start("wallet")
        let c = client()
        let uid = Self.merchantA.userId
        _ = try c.topup(Self.merchantA, 1_000_000, key: "fund")
        let orders = 40
        let refundApplied = Locked(Set<Int>())
        let problems = Locked([String]())
        inParallel(orders * 2) { i in
            let order = i / 2
            if i % 2 == 0 {
                if case .failure(let e) = c.charge(uid, order: "ord_race_\(order)", 1_000) { problems.withLock { $0.append("charge: \(e)") } }
            } else {
                switch c.call("wallet.refund", ["userId": .string(uid), "orderId": .string("ord_race_\(order)")], as: .system) {
                case .success(let j):
                    if j["entry"]?["amountPaise"] != .int(1_000) { problems.withLock { $0.append("refund amount: \(j.serialized())") } }
                    refundApplied.withLock { _ = $0.insert(order) }
                case .failure(let e) where e.reason == "not_charged": break
                case .failure(let e): problems.withLock { $0.append("refund: \(e)") }
                }
            }
        }
        XCTAssertEqual(problems.current, [])
        let refunded = refundApplied.current.count
        XCTAssertEqual(try c.balance(uid), 1_000_000 - Int64(orders - refunded) * 1_000)
        let entries = try c.allEntries(uid)
        XCTAssertEqual(entries.filter { $0["reason"] == "order_charge" }.count, orders)
        XCTAssertEqual(entries.filter { $0["reason"] == "order_refund" }.count, refunded)

        // Refunding again: exactly one refund per order in the end, never two.
        for o in 0..<orders {
            let r = c.call("wallet.refund", ["userId": .string(uid), "orderId": .string("ord_race_\(o)")], as: .system)
            let j = try r.get()
            XCTAssertEqual(j["created"], .bool(!refundApplied.current.contains(o)))
        }
        XCTAssertEqual(try c.balance(uid), 1_000_000)
        XCTAssertEqual(try c.allEntries(uid).filter { $0["reason"] == "order_refund" }.count, orders)
        XCTAssertEqual(WalletRPC.reason(c.call("wallet.refund", ["userId": .string(uid), "orderId": "ord_never"], as: .system)), "not_charged")
        // Another merchant cannot get this merchant's charge refunded to them.
        XCTAssertEqual(WalletRPC.reason(c.call("wallet.refund", ["userId": .string(Self.merchantB.userId), "orderId": "ord_race_0"], as: .system)),
                       "not_charged")
        try c.assertReconciled()
    }

    func testTwoInstancesOnOneStoreStillChargeExactlyHundred() throws {
        try ps.start("wallet", instance: 0)
        try ps.start("wallet", instance: 1)
        let c = client()
        XCTAssertEqual(c.client.instancePaths().count, 2)
        let uid = Self.merchantA.userId
        _ = try c.topup(Self.merchantA, 10_000, key: "fund")

        // Alternate explicitly so both processes race on the same wallet row.
        let t = c.chargeStorm(userId: uid, n: 200, amount: 100, instances: [0, 1])
        XCTAssertEqual(t.other, [])
        XCTAssertEqual(t.ok, 100)
        XCTAssertEqual(t.refused, 100)
        XCTAssertEqual(try c.balance(uid), 0)
        let debits = try c.allEntries(uid).filter { $0["type"] == "debit" }
        XCTAssertEqual(debits.count, 100)
        XCTAssertEqual(Set(debits.compactMap { $0["balanceAfterPaise"]?.intValue }).count, 100)
        try c.assertReconciled()
    }

    func testKill9DuringChargeStreamLosesAndDoublesNothing() throws {
        let wallet = try ps.start("wallet")
        let c = client()
        let uid = Self.merchantA.userId
        let funded: Int64 = 10_000_000
        _ = try c.topup(Self.merchantA, funded, key: "fund")

        let succeeded = Locked(Set<String>())
        let attempted = Locked(Set<String>())
        let stop = Locked(false)
        let group = DispatchGroup()
        for worker in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                var i = 0
                while !stop.current {
                    let order = "ord_k\(worker)_\(i)"
                    i += 1
                    attempted.withLock { _ = $0.insert(order) }
                    if case .success(let j) = c.charge(uid, order: order, 100), j["created"] == .bool(true) {
                        succeeded.withLock { _ = $0.insert(order) }
                    }
                }
                group.leave()
            }
        }
        // The MongoDB test server (secantusd-py) scans the collection for every findAndModify,
        // so there the stream stops earlier, keeping the ledger small.
        let target = Self.backend == .sqlite ? 150 : 40
        XCTAssertTrue(waitUntil(timeoutMs: 60_000) { succeeded.current.count >= target })
        // Each worker's call in flight at the kill fails. The workers are told to stop first:
        // told after, they looped on the dead socket while kill9 waited for the exit, and each
        // of those (hundreds of) failed attempts is retried one by one below.
        stop.withLock { $0 = true }
        wallet.kill9()
        group.wait()

        let c2 = try restartWallet()
        let entries = try c2.allEntries(uid)
        let charges = entries.filter { $0["reason"] == "order_charge" }
        var perOrder: [String: Int] = [:]
        for e in charges { perOrder[e["orderId"]!.stringValue!, default: 0] += 1 }
        XCTAssertTrue(perOrder.values.allSatisfy { $0 == 1 }, "no order charged twice")
        for o in succeeded.current { XCTAssertEqual(perOrder[o], 1, "acknowledged charge \(o) has exactly one entry") }
        XCTAssertTrue(Set(perOrder.keys).isSubset(of: attempted.current))
        XCTAssertEqual(try c2.balance(uid), funded - Int64(charges.count) * 100)
        try c2.assertReconciled()

        // Retrying every attempted charge (what a caller with an unknown outcome does) ends with
        // exactly one entry per order.
        for o in attempted.current {
            let r = c2.charge(uid, order: o, 100)
            XCTAssertNotNil(try? r.get(), "retry of \(o): \(r)")
            if perOrder[o] != nil { XCTAssertEqual(try? r.get()["created"], .bool(false)) }
        }
        let after = try c2.allEntries(uid).filter { $0["reason"] == "order_charge" }
        XCTAssertEqual(after.count, attempted.current.count)
        XCTAssertEqual(try c2.balance(uid), funded - Int64(attempted.current.count) * 100)
        try c2.assertReconciled()
    }

    /// Kills the process between each pair of protocol steps (deterministically, through the
    /// test failpoint) and checks that a restarted process finishes or undoes the operation.
    func testCrashBetweenAnyTwoStepsIsRecoveredOnRestart() throws {
        let uid = Self.merchantA.userId
        try ps.start("wallet")
        var c = client()
        _ = try c.topup(Self.merchantA, 1_000, key: "fund")
        ps.child("wallet-0")?.stop()

        var expected: Int64 = 1_000
        for (n, step) in ["after_insert", "after_lock", "after_release"].enumerated() {
            // A charge the balance covers: after recovery it is applied exactly once.
            let order = "ord_crash_\(n)"
            c = try restartWallet(extraEnv: ["OOPS_WALLET_FAILPOINT": "\(step):order:\(order):"])
            let r = c.charge(uid, order: order, 300)
            guard case .failure(let e) = r else { return XCTFail("\(step): the process should have died mid-charge: \(r)") }
            XCTAssertEqual(e.code, ErrorCode.unavailable.rawValue, "\(step)")
            XCTAssertTrue(waitUntil { !(ps.child("wallet-0")?.isRunning ?? false) })
            c = try restartWallet()
            expected -= 300
            XCTAssertEqual(try c.balance(uid), expected, "\(step)")
            try c.assertReconciled()
            let retry = try c.charge(uid, order: order, 300).get()
            XCTAssertEqual(retry["created"], .bool(false), "\(step): the crashed charge was applied, the retry replays it")
            XCTAssertEqual(retry["entry"]?["balanceAfterPaise"], .int(expected))
            ps.child("wallet-0")?.stop()
        }
        XCTAssertEqual(expected, 100)

        for (n, step) in ["after_insert", "after_lock", "after_release"].enumerated() {
            // A charge the balance cannot cover: after recovery it is gone, and the balance untouched.
            let order = "ord_void_\(n)"
            c = try restartWallet(extraEnv: ["OOPS_WALLET_FAILPOINT": "\(step):order:\(order):"])
            let r = c.charge(uid, order: order, 5_000)
            guard case .failure(let e) = r else { return XCTFail("\(step): the process should have died mid-charge: \(r)") }
            XCTAssertEqual(e.code, ErrorCode.unavailable.rawValue, "\(step)")
            XCTAssertTrue(waitUntil { !(ps.child("wallet-0")?.isRunning ?? false) })
            c = try restartWallet()
            XCTAssertEqual(try c.balance(uid), expected, "\(step)")
            try c.assertReconciled()
            XCTAssertEqual(WalletRPC.reason(c.charge(uid, order: order, 5_000)), "insufficient_balance", "\(step)")
            // The refused ref is free again: after a top-up the same order can be charged.
            _ = try c.topup(Self.merchantA, 5_000, key: "refill-\(n)")
            XCTAssertEqual(try c.charge(uid, order: order, 5_000).get()["created"], .bool(true), "\(step)")
            XCTAssertEqual(try c.balance(uid), expected, "\(step)")
            ps.child("wallet-0")?.stop()
        }
        c = try restartWallet()
        XCTAssertEqual(try c.allEntries(uid).filter { $0["type"] == "debit" }.count, 6)
        try c.assertReconciled()
    }

    /// A sibling instance's periodic sweep settles what a dead instance left, without a restart.
    func testLiveInstanceSweepSettlesAnEntryStrandedByADeadOne() throws {
        let uid = Self.merchantA.userId
        let fast = ["OOPS_WALLET_SWEEP_MS": "200", "OOPS_WALLET_RECOVER_AFTER_MS": "300"]
        try ps.start("wallet", instance: 0, extraEnv: fast)
        let c = client()
        _ = try c.topup(Self.merchantA, 1_000, key: "fund")
        try ps.start("wallet", instance: 1, extraEnv: fast.merging(["OOPS_WALLET_FAILPOINT": "after_insert:order:ord_stranded:"]) { $1 })
        let r = c.charge(uid, order: "ord_stranded", 400, instance: 1)
        guard case .failure = r else { return XCTFail("instance 1 should have died: \(r)") }
        XCTAssertTrue(waitUntil { !(ps.child("wallet-1")?.isRunning ?? false) })
        // Nobody restarts instance 1; its sibling's periodic sweep alone must settle the entry.
        XCTAssertTrue(waitUntil(timeoutMs: 10_000) {
            let page = try? c.call("wallet.transactions", ["userId": .string(uid)], as: Self.admin, instance: 0).get()
            return (page?["items"]?.arrayValue ?? []).contains { $0["orderId"] == "ord_stranded" }
        }, "instance 0 applies the stranded charge")
        XCTAssertEqual(ps.child("wallet-1")?.isRunning, false)
        XCTAssertEqual(try c.balance(uid), 600)
        try c.assertReconciled()
    }

    func testMerchantSeesOnlyOwnWallet() throws {
        try ps.start("wallet")
        let c = client()
        _ = try c.topup(Self.merchantA, 4_200, key: "a")
        let a = Self.merchantA.userId

        // B naming A's wallet gets "not found", exactly as for a wallet that does not exist.
        for method in ["wallet.get", "wallet.transactions"] {
            let r = c.call(method, ["userId": .string(a)], as: Self.merchantB)
            guard case .failure(let e) = r else { return XCTFail("\(method) leaked another merchant's wallet: \(r)") }
            XCTAssertEqual(e.code, ErrorCode.notFound.rawValue)
        }
        let own = try c.ok("wallet.get", [:], as: Self.merchantB)
        XCTAssertEqual(own["userId"], .string(Self.merchantB.userId))
        XCTAssertEqual(own["balancePaise"], 0)
        XCTAssertEqual(own["currency"], "INR")
        XCTAssertEqual(try c.ok("wallet.transactions", [:], as: Self.merchantB)["items"], [])
        // A merchant sees their own, an admin sees anyone's.
        XCTAssertEqual(try c.ok("wallet.get", ["userId": .string(a)], as: Self.merchantA)["balancePaise"], 4_200)
        XCTAssertEqual(try c.ok("wallet.get", ["userId": .string(a)], as: Self.admin)["balancePaise"], 4_200)
        // Money moves only through the roles allowed to move it, and a top-up cannot name a wallet.
        let forbidden = c.call("wallet.charge", ["userId": .string(a), "orderId": "x", "amountPaise": 1], as: Self.merchantB)
        guard case .failure(let fe) = forbidden else { return XCTFail("a merchant charged a wallet") }
        XCTAssertEqual(fe.code, ErrorCode.forbidden.rawValue)
        let named = c.call("wallet.topup", ["userId": .string(a), "amountPaise": 1, "idempotencyKey": "z"], as: Self.merchantB)
        guard case .failure(let ne) = named else { return XCTFail("a merchant topped up a named wallet") }
        XCTAssertEqual(ne.code, ErrorCode.invalidParams.rawValue)
        XCTAssertEqual(try c.charge(a, order: "x", 1).get()["created"], .bool(true))
        XCTAssertEqual(try c.balance(a), 4_199)
    }

    func testTransactionsPagingIsStableWhileNewEntriesArrive() throws {
        try ps.start("wallet")
        let c = client()
        let uid = Self.merchantA.userId
        for i in 0..<25 { _ = try c.topup(Self.merchantA, Int64(100 + i), key: "t\(i)") }

        var seen: [String] = []
        var cursor: JSON = .null
        var pages = 0
        repeat {
            var p: [String: JSON] = ["limit": 7]
            if !cursor.isNull { p["cursor"] = cursor }
            let page = try c.ok("wallet.transactions", .object(p), as: Self.merchantA)
            let items = page["items"]?.arrayValue ?? []
            XCTAssertLessThanOrEqual(items.count, 7)
            seen += items.compactMap { $0["id"]?.stringValue }
            cursor = page["nextCursor"] ?? .null
            pages += 1
            // Entries arriving while paging show up on top, never inside pages already walked.
            _ = try c.topup(Self.merchantA, 1, key: "late\(pages)")
        } while !cursor.isNull
        XCTAssertEqual(pages, 4)
        XCTAssertEqual(seen.count, 25)
        XCTAssertEqual(Set(seen).count, 25)
        XCTAssertEqual(seen, seen.sorted(by: >), "newest first")

        let fresh = try c.allEntries(uid, pageSize: 100)
        XCTAssertEqual(fresh.count, 25 + pages)
        XCTAssertEqual(fresh.first?["amountPaise"], 1)
        XCTAssertEqual(Array(fresh.compactMap { $0["id"]?.stringValue }.suffix(25)), seen)
        XCTAssertEqual(fresh.last?["amountPaise"], 100, "the oldest entry is the first top-up")

        let bad = c.call("wallet.transactions", ["limit": 101], as: Self.merchantA)
        guard case .failure(let e) = bad else { return XCTFail("limit over 100 accepted") }
        XCTAssertEqual(e.code, ErrorCode.invalidParams.rawValue)
    }

    func testAdminAdjustmentsAreIdempotentAndNeverGoBelowZero() throws {
        try ps.start("wallet")
        let c = client()
        let uid = Self.merchantA.userId
        _ = try c.topup(Self.merchantA, 1_000, key: "fund")
        let credit = try c.ok("wallet.adjust", ["userId": .string(uid), "amountPaise": 250, "reason": "goodwill", "adjustmentId": "adj_1"],
                            as: Self.admin)
        XCTAssertEqual(credit["type"], "credit")
        XCTAssertEqual(credit["note"], "goodwill")
        XCTAssertEqual(credit["balanceAfterPaise"], 1_250)
        let replay = try c.ok("wallet.adjust", ["userId": .string(uid), "amountPaise": 250, "reason": "goodwill", "adjustmentId": "adj_1"],
                            as: Self.admin)
        XCTAssertEqual(replay["id"], credit["id"])
        let tooMuch = c.call("wallet.adjust", ["userId": .string(uid), "amountPaise": -1_251, "reason": "fix", "adjustmentId": "adj_2"], as: Self.admin)
        XCTAssertEqual(WalletRPC.reason(tooMuch), "insufficient_balance")
        let debit = try c.ok("wallet.adjust", ["userId": .string(uid), "amountPaise": -1_250, "reason": "fix", "adjustmentId": "adj_2"], as: Self.admin)
        XCTAssertEqual(debit["type"], "debit")
        XCTAssertEqual(debit["amountPaise"], 1_250)
        XCTAssertEqual(try c.balance(uid), 0)
        let zero = c.call("wallet.adjust", ["userId": .string(uid), "amountPaise": 0, "reason": "noop", "adjustmentId": "adj_3"], as: Self.admin)
        guard case .failure(let e) = zero else { return XCTFail("a zero adjustment was accepted") }
        XCTAssertEqual(e.code, ErrorCode.invalidParams.rawValue)
        let reused = c.call("wallet.adjust", ["userId": .string(uid), "amountPaise": 5, "reason": "other", "adjustmentId": "adj_1"], as: Self.admin)
        guard case .failure(let ce) = reused else { return XCTFail("a reused adjustmentId was accepted") }
        XCTAssertEqual(ce.code, ErrorCode.conflict.rawValue)
        try c.assertReconciled()
    }
}

/// Calls WalletSvc the way another service does; Sendable so racing threads can share it.
struct WalletRPC: Sendable {
    let client: RPCClient
    let runDir: String

    func ctx(_ actor: Actor) -> RPCContext { .new(actor: actor, timeoutMs: 30_000) }

    /// One call; the error, if any, is returned rather than thrown so races can be tallied.
    func call(_ method: String, _ params: JSON, as actor: Actor, instance: Int? = nil) -> Result<JSON, RPCError> {
        do throws(RPCError) {
            if let instance {
                return .success(try client.call(instancePath: "\(runDir)/wallet-\(instance).sock", method, params, ctx: ctx(actor)))
            }
            return .success(try client.call(method, params, ctx: ctx(actor)))
        } catch {
            return .failure(error)
        }
    }

    func ok(_ method: String, _ params: JSON, as actor: Actor, file: StaticString = #filePath, line: UInt = #line) throws -> JSON {
        switch call(method, params, as: actor) {
        case .success(let j): return j
        case .failure(let e):
            XCTFail("\(method) failed: \(e)", file: file, line: line)
            throw e
        }
    }

    func balance(_ userId: String) throws -> Int64 {
        try XCTUnwrap(try ok("wallet.get", ["userId": .string(userId)], as: WalletIntegrationTests.admin)["balancePaise"]?.intValue)
    }

    func topup(_ actor: Actor, _ amount: Int64, key: String) throws -> JSON {
        try ok("wallet.topup", ["amountPaise": .int(amount), "idempotencyKey": .string(key)], as: actor)
    }

    func charge(_ userId: String, order: String, _ amount: Int64, instance: Int? = nil) -> Result<JSON, RPCError> {
        call("wallet.charge", ["userId": .string(userId), "orderId": .string(order), "amountPaise": .int(amount)], as: .system, instance: instance)
    }

    /// Every applied entry of a wallet, walking all pages.
    func allEntries(_ userId: String, pageSize: Int = 100) throws -> [JSON] {
        var out: [JSON] = []
        var cursor: JSON = .null
        repeat {
            var p: [String: JSON] = ["userId": .string(userId), "limit": .int(Int64(pageSize))]
            if !cursor.isNull { p["cursor"] = cursor }
            let page = try ok("wallet.transactions", .object(p), as: WalletIntegrationTests.admin)
            out += page["items"]?.arrayValue ?? []
            cursor = page["nextCursor"] ?? .null
        } while !cursor.isNull
        return out
    }

    func assertReconciled(file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try ok("wallet.reconcile", [:], as: .system, file: file, line: line)
        XCTAssertEqual(r["ok"], .bool(true), "reconcile: \(r.serialized())", file: file, line: line)
        XCTAssertEqual(r["mismatches"]?.arrayValue?.count, 0, file: file, line: line)
    }

    static func reason(_ r: Result<JSON, RPCError>) -> String? {
        if case .failure(let e) = r { return e.reason }
        return nil
    }

    /// Runs `n` charges of `amount` at once against one wallet, spread over `instances`.
    func chargeStorm(userId: String, n: Int, amount: Int64, instances: [Int?] = [nil]) -> (ok: Int, refused: Int, other: [String]) {
        let tally = Locked((ok: 0, refused: 0, other: [String]()))
        inParallel(n) { i in
            let t0 = Clock.monotonicNanos()
            let r = charge(userId, order: "ord_storm_\(i)", amount, instance: instances[i % instances.count])
            let ms = (Clock.monotonicNanos() - t0) / 1_000_000
            tally.withLock { t in
                switch r {
                case .success(let j) where j["created"] == .bool(true): t.ok += 1
                case .failure(let e) where e.code == ErrorCode.businessRule.rawValue && e.reason == "insufficient_balance": t.refused += 1
                case .success(let j): t.other.append("unexpected replay \(j.serialized())")
                case .failure(let e): t.other.append("\(e) after \(ms) ms, instances \(client.instancePaths())")
                }
            }
        }
        return tally.current
    }

}

/// The same tests with the wallets and the ledger in MongoDB.
final class WalletIntegrationMongoTests: WalletIntegrationTests {
    override class var backend: StoreBackend { .mongodb }
    override func testTwoHundredParallelChargesAgainstHundredRupeesChargeExactlyHundred() throws { try super.testTwoHundredParallelChargesAgainstHundredRupeesChargeExactlyHundred() }
    override func testFiftyParallelReplaysOfOneTopupKeyCreateOneEntry() throws { try super.testFiftyParallelReplaysOfOneTopupKeyCreateOneEntry() }
    override func testTopupKeyReusedWithDifferentAmountIsConflict() throws { try super.testTopupKeyReusedWithDifferentAmountIsConflict() }
    override func testRefundRacingChargeOfSameOrderStaysConsistent() throws { try super.testRefundRacingChargeOfSameOrderStaysConsistent() }
    override func testTwoInstancesOnOneStoreStillChargeExactlyHundred() throws { try super.testTwoInstancesOnOneStoreStillChargeExactlyHundred() }
    override func testKill9DuringChargeStreamLosesAndDoublesNothing() throws { try super.testKill9DuringChargeStreamLosesAndDoublesNothing() }
    override func testCrashBetweenAnyTwoStepsIsRecoveredOnRestart() throws { try super.testCrashBetweenAnyTwoStepsIsRecoveredOnRestart() }
    override func testLiveInstanceSweepSettlesAnEntryStrandedByADeadOne() throws { try super.testLiveInstanceSweepSettlesAnEntryStrandedByADeadOne() }
    override func testMerchantSeesOnlyOwnWallet() throws { try super.testMerchantSeesOnlyOwnWallet() }
    override func testTransactionsPagingIsStableWhileNewEntriesArrive() throws { try super.testTransactionsPagingIsStableWhileNewEntriesArrive() }
    override func testAdminAdjustmentsAreIdempotentAndNeverGoBelowZero() throws { try super.testAdminAdjustmentsAreIdempotentAndNeverGoBelowZero() }
}
