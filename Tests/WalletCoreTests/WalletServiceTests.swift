import JSON
import RPC
import Runtime
import Store
import TestSupport
import XCTest
@testable import WalletCore

/// WalletSvc in-process: its handlers behind a Dispatcher (roles, params and deadlines checked as
/// on the socket), the service on an in-memory store, time on a clock the test moves.
final class WalletServiceTests: XCTestCase {
    let clock = ManualClock()
    let store = MemoryStore()
    var repo: WalletRepository!
    var service: WalletService!
    var rpc: Dispatcher!

    static let merchant = Actor(userId: "usr_m1", role: .merchant)
    static let admin = Actor(userId: "usr_a1", role: .admin)

    override func setUpWithError() throws {
        let log = Logger(service: "WalletSvc", instance: 0, level: .error)
        repo = WalletRepository(store: store, clock: clock)
        try repo.prepare()
        service = WalletService(repository: repo, log: log)
        rpc = Dispatcher(service: "WalletSvc", instance: 0, methods: WalletHandlers(service: service).methods, log: log)
    }

    private func call(_ method: String, _ params: JSON, as actor: Actor) throws -> JSON {
        try rpc.call(method, params, ctx: RPCContext.new(actor: actor, timeoutMs: 10_000))
    }

    private func refusal(_ method: String, _ params: JSON, as actor: Actor, file: StaticString = #filePath, line: UInt = #line) -> RPCError? {
        expectRefusal(method, file: file, line: line) { try call(method, params, as: actor) }
    }

    private func topup(_ paise: Int64, key: String) throws -> JSON {
        try call("wallet.topup", ["amountPaise": .int(paise), "idempotencyKey": .string(key)], as: Self.merchant)
    }

    private func charge(_ orderId: String, _ paise: Int64) throws -> JSON {
        try call("wallet.charge", ["userId": "usr_m1", "orderId": .string(orderId), "amountPaise": .int(paise)], as: .system)
    }

    private func ledger() throws -> [JSON] { try store.find(WalletRepository.ledger, where: .all) }
    private func walletDoc() throws -> JSON? { try store.get(WalletRepository.wallets, id: "usr_m1") }

    // MARK: top-up

    func testTopupIsAppliedOncePerIdempotencyKey() throws {
        let first = try topup(50_000, key: "k1")
        XCTAssertEqual(first["created"], true)
        XCTAssertEqual(first["balancePaise"], 50_000)
        XCTAssertEqual(first["entry"]?["ref"], "topup:usr_m1:k1")
        XCTAssertEqual(first["entry"]?["balanceAfterPaise"], 50_000)

        let again = try topup(50_000, key: "k1")
        XCTAssertEqual(again["created"], false)
        XCTAssertEqual(again["entry"]?["id"], first["entry"]?["id"])
        XCTAssertEqual(again["balancePaise"], 50_000)

        // The same key for a different amount is a conflict and moves nothing.
        let e = refusal("wallet.topup", ["amountPaise": 70_000, "idempotencyKey": "k1"], as: Self.merchant)
        XCTAssertEqual(e?.code, ErrorCode.conflict.rawValue)
        XCTAssertEqual(e?.reason, "idempotency_key_reused")

        XCTAssertEqual(try ledger().count, 1)
        XCTAssertEqual(try walletDoc()?["balancePaise"], 50_000)
        XCTAssertEqual(try call("wallet.get", [:], as: Self.merchant)["balancePaise"], 50_000)
    }

    // MARK: debit refused

    func testChargeTheBalanceCannotCoverIsRefusedAndChangesNothing() throws {
        _ = try topup(1_000, key: "k1")
        let before = try walletDoc()
        let e = refusal("wallet.charge", ["userId": "usr_m1", "orderId": "ord_1", "amountPaise": 1_500], as: .system)
        XCTAssertEqual(e?.code, ErrorCode.businessRule.rawValue)
        XCTAssertEqual(e?.reason, "insufficient_balance")

        let after = try walletDoc()
        XCTAssertEqual(after?["balancePaise"], 1_000)
        XCTAssertEqual(after?["pendingEntryId"], .null, "the wallet is left unlocked")
        // The refused entry is gone: only the top-up is in the ledger, and nothing is pending.
        XCTAssertEqual(try ledger().compactMap { $0["ref"]?.stringValue }, ["topup:usr_m1:k1"])
        XCTAssertEqual(try store.count(WalletRepository.ledger, where: .eq("state", "pending")), 0)
        // Only the lock's version moved; no money did.
        XCTAssertEqual(after?["balancePaise"], before?["balancePaise"])

        // A refund of the refused charge finds nothing to give back.
        XCTAssertEqual(refusal("wallet.refund", ["userId": "usr_m1", "orderId": "ord_1"], as: .system)?.reason, "not_charged")
        // Once the balance covers it, the same order can be charged.
        _ = try topup(1_000, key: "k2")
        XCTAssertEqual(try charge("ord_1", 1_500)["balancePaise"], 500)
    }

    func testAMerchantCannotChargeOrAdjustAWallet() throws {
        XCTAssertEqual(refusal("wallet.charge", ["userId": "usr_m1", "orderId": "ord_1", "amountPaise": 1], as: Self.merchant)?.code,
                       ErrorCode.forbidden.rawValue)
        XCTAssertEqual(refusal("wallet.adjust", ["userId": "usr_m1", "amountPaise": 100, "reason": "x", "adjustmentId": "adj1"],
                               as: Self.merchant)?.code, ErrorCode.forbidden.rawValue)
        XCTAssertEqual(try ledger().count, 0)
    }

    // MARK: the ledger proof

    func testBalanceEqualsTheSumOfTheLedgerAfterASequence() throws {
        _ = try topup(10_000, key: "k1")
        _ = try charge("ord_1", 3_000)
        _ = try charge("ord_2", 4_000)
        XCTAssertEqual(try call("wallet.refund", ["userId": "usr_m1", "orderId": "ord_1"], as: .system)["balancePaise"], 6_000)
        // A second refund answers with the first and gives nothing more.
        let replay = try call("wallet.refund", ["userId": "usr_m1", "orderId": "ord_1"], as: .system)
        XCTAssertEqual(replay["created"], false)
        XCTAssertEqual(replay["balancePaise"], 6_000)
        _ = try call("wallet.adjust", ["userId": "usr_m1", "amountPaise": -500, "reason": "courier surcharge", "adjustmentId": "adj1"], as: Self.admin)
        XCTAssertNotNil(refusal("wallet.charge", ["userId": "usr_m1", "orderId": "ord_3", "amountPaise": 9_000], as: .system))
        _ = try charge("ord_2", 4_000)  // a replay of the charge

        let entries = try ledger()
        XCTAssertEqual(entries.compactMap { $0["state"]?.stringValue }, Array(repeating: "applied", count: 5))
        let sum = entries.compactMap { $0["delta"]?.intValue }.reduce(0, +)
        XCTAssertEqual(sum, 10_000 - 3_000 - 4_000 + 3_000 - 500)
        XCTAssertEqual(try walletDoc()?["balancePaise"]?.intValue, sum)

        let proof = try call("wallet.reconcile", [:], as: Self.admin)
        XCTAssertEqual(proof["ok"], true)
        XCTAssertEqual(proof["wallets"], 1)
        XCTAssertEqual(proof["mismatches"], [])

        // The proof sees a balance changed behind the ledger's back.
        _ = try store.update(WalletRepository.wallets, where: .id("usr_m1"), .inc("balancePaise", by: 1))
        let broken = try call("wallet.reconcile", [:], as: Self.admin)
        XCTAssertEqual(broken["ok"], false)
        XCTAssertEqual(broken["mismatches"], [["userId": "usr_m1", "balancePaise": .int(sum + 1), "ledgerSumPaise": .int(sum)]])
    }

    /// 100 charges race on one wallet that can pay for 37 of them: exactly 37 are taken, the
    /// rest refused, and the ledger proves the balance.
    func testConcurrentChargesNeverOverdraw() throws {
        _ = try topup(3_700, key: "k1")
        let taken = Locked(0), refused = Locked(0), other = Locked<[String]>([])
        let rpc: Dispatcher = self.rpc
        let finished = inParallel(100, timeoutSeconds: 120) { n in
            do {
                _ = try rpc.call("wallet.charge", ["userId": "usr_m1", "orderId": .string("ord_\(n)"), "amountPaise": 100],
                                 ctx: RPCContext.new(actor: .system, timeoutMs: 60_000))
                taken.withLock { $0 += 1 }
            } catch let e as RPCError where e.reason == "insufficient_balance" {
                refused.withLock { $0 += 1 }
            } catch {
                other.withLock { $0.append("\(error)") }
            }
        }
        XCTAssertTrue(finished)
        XCTAssertEqual(other.current, [])
        XCTAssertEqual(taken.current, 37)
        XCTAssertEqual(refused.current, 63)
        XCTAssertEqual(try walletDoc()?["balancePaise"], 0)
        XCTAssertEqual(try store.count(WalletRepository.ledger, where: .eq("reason", "order_charge")), 37)
        XCTAssertEqual(try call("wallet.reconcile", [:], as: Self.admin)["ok"], true)
    }

    // MARK: recovery after a crash

    /// A process died right after storing a pending top-up: the sweep leaves it alone while it is
    /// young, applies it once it is older than the threshold, and only once.
    func testAStrandedPendingEntryIsSettledOnceTheClockHasMoved() throws {
        let e = LedgerEntry(id: "txn_stranded", userId: "usr_m1", type: .credit, reason: .topup, ref: "topup:usr_m1:k9", amountPaise: 2_500,
                            actor: ["userId": "usr_m1", "role": "merchant"], nowMs: clock.nowMillis())
        guard case .created = try repo.insertPending(e) else { return XCTFail("the entry was not stored") }

        XCTAssertEqual(service.recover(olderThanMs: 2_000), 0)
        XCTAssertEqual(try store.get(WalletRepository.ledger, id: "txn_stranded")?["state"], "pending")

        clock.advance(ms: 2_001)
        XCTAssertEqual(service.recover(olderThanMs: 2_000), 1)
        let settled = try store.get(WalletRepository.ledger, id: "txn_stranded")
        XCTAssertEqual(settled?["state"], "applied")
        XCTAssertEqual(settled?["balanceAfterPaise"], 2_500)
        XCTAssertEqual(try walletDoc()?["balancePaise"], 2_500)

        clock.advance(ms: 10_000)
        XCTAssertEqual(service.recover(olderThanMs: 2_000), 0)
        XCTAssertEqual(try walletDoc()?["balancePaise"], 2_500)
        // The client's retry with the same key answers with the recovered entry.
        let retry = try topup(2_500, key: "k9")
        XCTAssertEqual(retry["created"], false)
        XCTAssertEqual(retry["entry"]?["id"], "txn_stranded")
        XCTAssertEqual(try call("wallet.reconcile", [:], as: Self.admin)["ok"], true)
    }

    /// A process died holding the wallet's lock (the money moved, the entry still pending): the
    /// sweep releases the old lock and marks the entry applied, without moving the money again.
    func testAStaleLockIsReleasedWithoutApplyingTwice() throws {
        _ = try topup(5_000, key: "k1")
        let e = LedgerEntry(id: "txn_locked", userId: "usr_m1", type: .debit, reason: .orderCharge, ref: "order:ord_9:charge",
                            amountPaise: 1_200, actor: ["userId": "system", "role": "system"], orderId: "ord_9", nowMs: clock.nowMillis())
        guard case .created = try repo.insertPending(e) else { return XCTFail("the entry was not stored") }
        let w = try repo.ensureWallet("usr_m1")
        XCTAssertNotNil(try repo.lock(w, for: e, op: .apply))
        XCTAssertEqual(try walletDoc()?["balancePaise"], 3_800)

        XCTAssertEqual(service.recover(olderThanMs: 2_000), 0, "a young lock may belong to a live request")
        XCTAssertEqual(try walletDoc()?["pendingEntryId"], "txn_locked")

        clock.advance(ms: 5_000)
        XCTAssertGreaterThanOrEqual(service.recover(olderThanMs: 2_000), 1)
        XCTAssertEqual(try walletDoc()?["pendingEntryId"], .null)
        XCTAssertEqual(try walletDoc()?["balancePaise"], 3_800)
        XCTAssertEqual(try store.get(WalletRepository.ledger, id: "txn_locked")?["state"], "applied")
        XCTAssertEqual(try store.get(WalletRepository.ledger, id: "txn_locked")?["balanceAfterPaise"], 3_800)
        XCTAssertEqual(try call("wallet.reconcile", [:], as: Self.admin)["ok"], true)
        // OrderSvc's retry of the charge answers with the recovered entry.
        XCTAssertEqual(try charge("ord_9", 1_200)["entry"]?["id"], "txn_locked")
    }
}
