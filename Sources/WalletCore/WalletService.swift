import Foundation
import JSON
import RPC
import Runtime
import Store

/// Wallets and the ledger: money that is never lost, never doubled and never negative, built
/// from single-document atomic operations (so a store without multi-document transactions, such
/// as MongoDB here, behaves exactly like SQLite). Where the store has transactions (SQLite), a new
/// posting is instead one transaction (`postInOneTransaction`: read the wallet, insert the entry
/// applied, move the balance and bump the version); replays, conflicts, locked wallets, recovery
/// and refunds of pending charges still go through the protocol below, which the transaction
/// respects: it bumps `version` like a lock does, and never writes to a locked wallet.
///
/// # Documents
///
/// - wallet `{_id: userId, balancePaise, version, pendingRef, pendingEntryId, pendingOp, lockedAtMs}`:
///   `pendingEntryId` is a one-slot lock. While it is set, the wallet is in the middle of one
///   operation on that entry and nothing else may change the balance.
/// - ledger entry `{_id: entryId, userId, ref (unique), state: pending|applied, type, amountPaise,
///   delta, balanceAfterPaise, ...}`. The ref makes each business fact (a top-up key, an order's
///   charge, its refund, an adjustment) happen at most once.
///
/// # Applying an entry (`post`)
///
/// 1. Insert the entry with `state: pending`. If the ref is taken: an applied holder is the answer
///    to a replay (a different amount or owner is a conflict); a pending holder is settled first
///    (below) and then answered, or, when settling refused it, this call starts over.
/// 2. Lock: read the wallet (it must be unlocked, at some `version` v), then read the entry (it
///    must still be pending), then compare-and-set the wallet where `{version: v, pendingEntryId: null}`:
///    `inc balancePaise by delta, inc version, set pendingRef/pendingEntryId/pendingOp = apply`.
///    A debit the balance cannot cover takes the lock with `pendingOp = void` and no balance change.
/// 3. Apply: set the entry `applied` with `balanceAfterPaise` = the locked wallet's balance
///    (CAS where `state: pending`); for `void`, delete the entry (CAS where `state: pending`) and
///    refuse with -32022 `insufficient_balance`.
/// 4. Unlock: clear the lock where `pendingEntryId == entryId`.
///
/// Steps 3–4 ("release") are idempotent and may be run by anyone who finds the wallet locked:
/// another request on the same wallet, another process, the recovery sweep.
///
/// # Why it is safe at every instant
///
/// - Only a lock moves money, a lock always bumps `version`, and one lock is held at a time, so
///   while locked the balance is exactly "sum of applied entries + the locked entry's delta".
/// - Recovery rule: an entry that is pending while the wallet's `pendingEntryId` is its id WAS
///   applied (finish steps 3–4); a pending entry while the wallet is not locked for it was NOT
///   applied (take the lock for it now, or void it if a debit now lacks balance).
/// - The lock is keyed by the entry id, not the ref: after a refused debit is voided and removed,
///   the same ref can be tried again under a new entry id, and a late helper still holding the
///   old lock's snapshot can neither unlock nor apply the new one.
/// - The wallet is read *before* the entry, and the lock is conditional on the version read: if
///   anyone applied or voided the entry in between, they locked the wallet, the version moved,
///   and this compare-and-set fails. So no entry is ever applied twice, even when two processes
///   (or a replay and its original) drive the same entry at the same moment.
/// - Deleting an entry happens only under a `void` lock for it, so an entry whose money moved is
///   never deleted.
/// - A kill -9 between any two steps leaves either a pending entry (the sweep, every few seconds,
///   settles pending entries older than ~2 s) or a locked wallet (released by the next operation
///   on it or by the sweep of old locks). A call that ran out of time may therefore still be
///   applied later; retrying it with the same key or order answers with the same entry.
///
/// Within one process, a striped lock per wallet keeps requests on the same wallet from
/// spinning against each other; across processes the compare-and-set loop does that job.
///
/// Time (entry stamps, lock stamps, the age of stranded work) is read from the repository's
/// `clock`, so a unit test can move it.
final class WalletService: Sendable {
    let repo: WalletRepository
    private let log: Logger
    private let locks = StripedLocks(count: 64)
    private let failpoint: Failpoint?

    init(repository: WalletRepository, log: Logger, failpoint: Failpoint? = nil) {
        self.repo = repository
        self.log = log
        self.failpoint = failpoint
    }

    // MARK: requests

    /// What a posting asks for: one entry for one wallet, identified by its ref.
    struct PostingRequest: Sendable {
        var userId: String
        var type: EntryType
        var reason: EntryReason
        var ref: String
        var amountPaise: Int64
        var actor: JSON
        var orderId: String? = nil
        var note: String? = nil
        /// The -32009 reason when the ref is already used for something else.
        var conflictReason: String
    }

    /// The outcome of a posting: whether this call created the entry, and the balance it left.
    struct Posting: Sendable {
        var created: Bool
        var entry: LedgerEntry
        var balancePaise: Int64
    }

    /// One wallet whose balance does not equal its ledger.
    struct Mismatch: Sendable {
        var userId: String
        var balancePaise: Int64
        var ledgerSumPaise: Int64
    }

    /// The wallet with any finished-but-unreleased operation released first, so the balance
    /// shown always equals the applied entries.
    func wallet(_ userId: String, deadline: Deadline) throws -> WalletDoc {
        try locks.with(userId, deadline: deadline) {
            var w = try repo.ensureWallet(userId)
            while w.isLocked {
                try Self.check(deadline)
                try release(w)
                w = try repo.ensureWallet(userId)
            }
            return w
        }
    }

    func topup(userId: String, amountPaise: Int64, idempotencyKey: String, actor: JSON, deadline: Deadline) throws -> Posting {
        let req = PostingRequest(userId: userId, type: .credit, reason: .topup, ref: "topup:\(userId):\(idempotencyKey)",
                                 amountPaise: amountPaise, actor: actor, conflictReason: "idempotency_key_reused")
        return try locks.with(userId, deadline: deadline) { try post(req, deadline: deadline) }
    }

    func charge(userId: String, orderId: String, amountPaise: Int64, actor: JSON, deadline: Deadline) throws -> Posting {
        let req = PostingRequest(userId: userId, type: .debit, reason: .orderCharge, ref: Self.chargeRef(orderId), amountPaise: amountPaise,
                                 actor: actor, orderId: orderId, conflictReason: "order_already_charged")
        return try locks.with(userId, deadline: deadline) { try post(req, deadline: deadline) }
    }

    /// Refunds exactly what the order's charge took, once, and only if the charge was applied.
    func refund(userId: String, orderId: String, actor: JSON, deadline: Deadline) throws -> Posting {
        try locks.with(userId, deadline: deadline) {
            let notCharged = RPCError.business("not_charged", "This order was not charged to this wallet")
            // Someone else's order answers exactly like an order never charged.
            guard var charge = try repo.entry(ref: Self.chargeRef(orderId)), charge.userId == userId else { throw notCharged }
            if charge.state == .pending {
                // A charge in flight (or stranded by a crash) is decided first, so the refund
                // never gives back money that was not taken.
                guard let settled = try settle(entryId: charge.id, userId: userId, deadline: deadline) else { throw notCharged }
                charge = settled
            }
            let req = PostingRequest(userId: userId, type: .credit, reason: .orderRefund, ref: Self.refundRef(orderId),
                                     amountPaise: charge.amountPaise, actor: actor, orderId: orderId, conflictReason: "order_already_refunded")
            return try post(req, deadline: deadline)
        }
    }

    /// `amountPaise` is signed and bounded by the handler's schema (never Int64.min).
    func adjust(userId: String, amountPaise: Int64, note: String, adjustmentId: String, actor: JSON, deadline: Deadline) throws -> Posting {
        let req = PostingRequest(userId: userId, type: amountPaise > 0 ? .credit : .debit, reason: .adjustment, ref: "adjust:\(adjustmentId)",
                                 amountPaise: amountPaise < 0 ? -amountPaise : amountPaise,
                                 actor: actor, note: note, conflictReason: "adjustment_id_reused")
        return try locks.with(userId, deadline: deadline) { try post(req, deadline: deadline) }
    }

    /// Applied entries, newest first; `cursor` is the id of the last entry of the previous page.
    /// Entry ids are time-ordered and never change, so pages neither repeat nor skip entries.
    func transactions(userId: String, cursor: String?, limit: Int) throws -> (items: [LedgerEntry], nextCursor: String?) {
        let rows = try repo.appliedEntries(userId: userId, beforeId: cursor, limit: limit + 1)
        let items = Array(rows.prefix(limit))
        return (items, rows.count > limit ? items.last?.id : nil)
    }

    /// Checks balance = sum of applied entries (and balance >= 0) for every wallet. Each wallet is
    /// compared at one version: the sum is taken between two reads showing the same unlocked version.
    func reconcile(deadline: Deadline) throws -> (wallets: Int, mismatches: [Mismatch]) {
        let ids = try repo.walletIds()
        var mismatches: [Mismatch] = []
        for id in ids {
            let m: Mismatch? = try locks.with(id, deadline: deadline) {
                var attempt = 0
                while true {
                    try Self.check(deadline)
                    guard let w = try repo.wallet(id) else { return nil }
                    if w.isLocked {
                        try release(w)
                        continue
                    }
                    let sum = try repo.appliedSum(userId: id).sum
                    guard let again = try repo.wallet(id) else { return nil }
                    if again.version == w.version && !again.isLocked {
                        if sum != w.balancePaise || w.balancePaise < 0 {
                            return Mismatch(userId: id, balancePaise: w.balancePaise, ledgerSumPaise: sum)
                        }
                        return nil
                    }
                    attempt += 1
                    Self.backoff(attempt)
                }
            }
            if let m {
                log.error("wallet does not match its ledger", ["userId": .string(m.userId), "balancePaise": .int(m.balancePaise),
                                                              "ledgerSumPaise": .int(m.ledgerSumPaise)])
                mismatches.append(m)
            }
        }
        return (ids.count, mismatches)
    }

    /// Finishes what crashed or stalled operations left behind: pending entries created before
    /// `olderThanMs` ago, and wallets locked for longer than that. Safe to run while requests
    /// are served, in any number of processes. Returns how many it settled or released.
    @discardableResult
    func recover(olderThanMs: Int64, batch: Int = 500) -> Int {
        let cutoff = repo.clock.nowMillis() - olderThanMs
        var done = 0
        do {
            for e in try repo.pendingEntries(createdBeforeMs: cutoff, limit: batch) {
                do {
                    let outcome = try locks.with(e.userId, deadline: .after(ms: 5000)) {
                        try settle(entryId: e.id, userId: e.userId, deadline: .after(ms: 5000))
                    }
                    done += 1
                    log.warn("recovered a pending ledger entry", ["entryId": .string(e.id), "ref": .string(e.ref),
                                                                   "outcome": .string(outcome == nil ? "refused" : "applied")])
                } catch {
                    log.error("recovery of a ledger entry failed", ["entryId": .string(e.id), "error": .string(String(describing: error))])
                }
            }
            for w in try repo.lockedWallets(lockedBeforeMs: cutoff, limit: batch) {
                do {
                    let released = try locks.with(w.userId, deadline: .after(ms: 5000)) { () -> Bool in
                        guard let now = try repo.wallet(w.userId), now.isLocked, now.pendingEntryId == w.pendingEntryId else { return false }
                        try release(now)
                        return true
                    }
                    if released {
                        done += 1
                        log.warn("released a stale wallet lock", ["userId": .string(w.userId), "entryId": .string(w.pendingEntryId ?? "")])
                    }
                } catch {
                    log.error("release of a wallet lock failed", ["userId": .string(w.userId), "error": .string(String(describing: error))])
                }
            }
        } catch {
            log.error("recovery sweep failed", ["error": .string(String(describing: error))])
        }
        return done
    }

    // MARK: the protocol (callers hold the wallet's stripe lock)

    private func post(_ req: PostingRequest, deadline: Deadline) throws -> Posting {
        // The failpoints stop the protocol between its steps, so tests that arm one run it.
        if failpoint == nil, let done = try postInOneTransaction(req) { return done }
        _ = try repo.ensureWallet(req.userId)
        while true {
            try Self.check(deadline)
            let entry = LedgerEntry(id: ID.make("txn"), userId: req.userId, type: req.type, reason: req.reason, ref: req.ref,
                                    amountPaise: req.amountPaise, actor: req.actor, orderId: req.orderId, note: req.note,
                                    nowMs: repo.clock.nowMillis())
            switch try repo.insertPending(entry) {
            case .created:
                crashIfArmed(.afterInsert, ref: entry.ref)
                guard let applied = try settle(entryId: entry.id, userId: req.userId, deadline: deadline) else {
                    Metrics.shared.increment("oops_wallet_refused_total", ["reason": "insufficient_balance"])
                    throw Self.insufficient
                }
                Metrics.shared.increment("oops_wallet_postings_total", ["reason": req.reason.rawValue, "type": req.type.rawValue])
                Metrics.shared.increment("oops_wallet_paise_total", ["reason": req.reason.rawValue, "type": req.type.rawValue], by: req.amountPaise)
                return Posting(created: true, entry: applied, balancePaise: applied.balanceAfterPaise ?? 0)
            case .duplicate(let existing):
                guard existing.userId == req.userId, existing.type == req.type, existing.reason == req.reason,
                      existing.amountPaise == req.amountPaise else {
                    throw RPCError.conflict(req.conflictReason, "This reference was already used for a different request")
                }
                if existing.state == .applied {
                    return Posting(created: false, entry: existing, balancePaise: existing.balanceAfterPaise ?? 0)
                }
                if let applied = try settle(entryId: existing.id, userId: req.userId, deadline: deadline) {
                    return Posting(created: false, entry: applied, balancePaise: applied.balanceAfterPaise ?? 0)
                }
                // The earlier attempt was refused and removed: this call is a fresh attempt.
            }
        }
    }

    /// The posting as one store transaction, where the store has them (SQLite): read the wallet,
    /// insert the entry already applied, move the balance and bump the version, commit: one commit
    /// instead of four, and nothing for recovery to finish, since a crash before the commit leaves
    /// nothing. Nil when the protocol must answer instead: the store has no transactions, the
    /// ref is taken (a replay or a conflict), or the wallet is locked by a protocol run elsewhere
    /// (another instance, the recovery sweep) that has to be released first. A debit the balance
    /// cannot cover writes nothing and is refused, as the protocol's void would leave it.
    private func postInOneTransaction(_ req: PostingRequest) throws -> Posting? {
        enum Outcome { case applied(LedgerEntry), insufficient, useProtocol }
        let outcome = try repo.store.transaction { () throws -> Outcome in
            let w = try repo.ensureWallet(req.userId)
            guard !w.isLocked else { return .useProtocol }
            var entry = LedgerEntry(id: ID.make("txn"), userId: req.userId, type: req.type, reason: req.reason, ref: req.ref,
                                    amountPaise: req.amountPaise, actor: req.actor, orderId: req.orderId, note: req.note,
                                    nowMs: repo.clock.nowMillis())
            let (after, overflow) = w.balancePaise.addingReportingOverflow(entry.delta)
            guard !overflow else { return .useProtocol }
            if after < 0 {
                // A replay of an applied debit is answered as one, whatever the balance is now.
                return try repo.entry(ref: req.ref) == nil ? .insufficient : .useProtocol
            }
            entry.state = .applied
            entry.balanceAfterPaise = after
            guard case .created = try repo.insertApplied(entry) else { return .useProtocol }
            guard try repo.move(w, by: entry.delta) != nil else {
                // Cannot happen while the transaction holds the write lock; the throw rolls the entry back.
                throw StoreError(.internal, "a wallet changed inside its posting's transaction")
            }
            return .applied(entry)
        }
        switch outcome {
        case nil, .useProtocol?:
            return nil
        case .insufficient?:
            Metrics.shared.increment("oops_wallet_refused_total", ["reason": "insufficient_balance"])
            throw Self.insufficient
        case .applied(let entry)?:
            Metrics.shared.increment("oops_wallet_postings_total", ["reason": req.reason.rawValue, "type": req.type.rawValue])
            Metrics.shared.increment("oops_wallet_paise_total", ["reason": req.reason.rawValue, "type": req.type.rawValue], by: req.amountPaise)
            return Posting(created: true, entry: entry, balancePaise: entry.balanceAfterPaise ?? 0)
        }
    }

    /// Drives one entry to its end: returns it applied, or nil when it was refused (and removed).
    private func settle(entryId: String, userId: String, deadline: Deadline) throws -> LedgerEntry? {
        var attempt = 0
        while true {
            try Self.check(deadline)
            // Wallet first, entry second: see "Why it is safe" above.
            let w = try repo.ensureWallet(userId)
            if w.isLocked {
                try release(w)
                continue
            }
            guard let e = try repo.entry(id: entryId) else { return nil }
            if e.state == .applied { return e }
            let op: PendingOp = e.delta < 0 && w.balancePaise < -e.delta ? .void : .apply
            guard let locked = try repo.lock(w, for: e, op: op) else {
                attempt += 1
                Self.backoff(attempt)
                continue
            }
            crashIfArmed(.afterLock, ref: e.ref)
            try release(locked)
            return op == .apply ? try repo.entry(id: entryId) : nil
        }
    }

    /// Steps 3 and 4 for whatever entry holds the wallet's lock. Idempotent.
    private func release(_ w: WalletDoc) throws {
        guard let entryId = w.pendingEntryId else { return }
        switch w.pendingOp ?? .apply {
        case .void:
            try repo.deletePending(entryId)
            crashIfArmed(.afterRelease, ref: w.pendingRef ?? "")
        case .apply:
            guard let e = try repo.entry(id: entryId) else {
                // Cannot happen: only a void lock deletes an entry. Leave the wallet locked for an
                // operator rather than guess which way the money went.
                log.error("a wallet is locked for an entry that does not exist", ["userId": .string(w.userId), "entryId": .string(entryId)])
                throw RPCError.internalError()
            }
            if e.state == .pending {
                // While the lock is held nothing else moves the balance, so it is this entry's result.
                try repo.markApplied(entryId, balanceAfterPaise: w.balancePaise)
            }
            crashIfArmed(.afterRelease, ref: e.ref)
        }
        try repo.unlock(w.userId, entryId: entryId)
    }

    // MARK: helpers

    /// Dies like kill -9 at an armed step, so tests can stop the protocol between any two steps.
    private func crashIfArmed(_ step: Failpoint.Step, ref: String) {
        guard let f = failpoint, f.step == step, ref.hasPrefix(f.refPrefix) else { return }
        log.warn("failpoint reached, killing the process", ["step": .string(step.rawValue), "ref": .string(ref)])
        kill(getpid(), SIGKILL)
    }

    static func chargeRef(_ orderId: String) -> String { "order:\(orderId):charge" }
    static func refundRef(_ orderId: String) -> String { "order:\(orderId):refund" }

    /// The applied ledger entries of one order: its charge and its refund, as far as they exist
    /// (an order's timeline).
    func orderEntries(orderId: String) throws -> [LedgerEntry] {
        try [Self.chargeRef(orderId), Self.refundRef(orderId)].compactMap { try repo.entry(ref: $0) }.filter { $0.state == .applied }
    }

    static let insufficient = RPCError.business("insufficient_balance", "The wallet balance is too low for this debit")

    static func check(_ deadline: Deadline) throws {
        if deadline.hasPassed { throw RPCError.deadlineExceeded() }
    }

    /// Short randomized pause after losing a compare-and-set to another process.
    static func backoff(_ attempt: Int) {
        let capMicros = UInt32(min(attempt, 20)) * 250
        usleep(UInt32.random(in: 50...max(51, capMicros)))
    }
}

/// A test-only crash switch, `OOPS_WALLET_FAILPOINT=<step>:<ref prefix>` (e.g.
/// `after_lock:order:o1:`): the process kills itself when an entry whose ref starts with the
/// prefix reaches the step. Unset in every real deployment.
struct Failpoint: Sendable {
    /// The instants between the protocol's steps.
    enum Step: String, Sendable {
        /// The pending entry is stored; the wallet is untouched.
        case afterInsert = "after_insert"
        /// The wallet is locked (money moved, or a void decided); the entry is still pending.
        case afterLock = "after_lock"
        /// The entry is applied (or deleted); the wallet is still locked.
        case afterRelease = "after_release"
    }

    var step: Step
    var refPrefix: String

    init?(_ spec: String) {
        guard let colon = spec.firstIndex(of: ":"), let step = Step(rawValue: String(spec[..<colon])) else { return nil }
        self.step = step
        self.refPrefix = String(spec[spec.index(after: colon)...])
    }
}

/// A fixed set of locks a key hashes onto: serialises work on one wallet inside this process
/// without a lock table that grows with the number of wallets.
final class StripedLocks: @unchecked Sendable {
    private let locks: [NSLock]

    init(count: Int) {
        locks = (0..<max(1, count)).map { _ in NSLock() }
    }

    func with<R>(_ key: String, deadline: Deadline, _ body: () throws -> R) throws -> R {
        let lock = locks[Int(UInt(bitPattern: key.hashValue) % UInt(locks.count))]
        guard lock.lock(before: Date(timeIntervalSinceNow: Double(deadline.remainingMs) / 1000)) else {
            throw RPCError.deadlineExceeded()
        }
        defer { lock.unlock() }
        return try body()
    }
}
