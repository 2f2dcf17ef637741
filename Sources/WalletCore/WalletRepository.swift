import Foundation
import JSON
import Runtime
import Store

/// What a locked wallet is in the middle of: moving money for its pending entry, or deciding
/// that the pending entry is refused and removing it.
enum PendingOp: String, Codable, Sendable {
    case apply
    case void
}

/// One merchant's wallet as stored: the balance and the single-slot lock of the apply protocol.
struct WalletDoc: Codable, Sendable, Equatable {
    var userId: String
    var balancePaise: Int64
    var version: Int64
    var pendingRef: String?
    var pendingEntryId: String?
    var pendingOp: PendingOp?
    var createdAt: String
    var updatedAt: String

    enum CodingKeys: String, CodingKey {
        case userId = "_id", balancePaise, version, pendingRef, pendingEntryId, pendingOp, createdAt, updatedAt
    }

    var isLocked: Bool { pendingEntryId != nil }
}

/// Direction of an entry as the ledger shows it.
enum EntryType: String, Codable, Sendable {
    case credit, debit
}

/// Why money moved.
enum EntryReason: String, Codable, Sendable, CaseIterable {
    case topup
    case orderCharge = "order_charge"
    case orderRefund = "order_refund"
    case adjustment
}

/// Where an entry is in the apply protocol. A refused entry is deleted, so there is no third state.
enum EntryState: String, Codable, Sendable {
    case pending, applied
}

/// One ledger entry as stored. `amountPaise` is always positive; `type` gives the sign.
struct LedgerEntry: Codable, Sendable, Equatable {
    var id: String
    var userId: String
    var type: EntryType
    var reason: EntryReason
    var ref: String
    var amountPaise: Int64
    var state: EntryState
    var balanceAfterPaise: Int64?
    var createdAt: String
    var createdAtMs: Int64
    var actor: JSON
    var orderId: String?
    var note: String?

    enum CodingKeys: String, CodingKey {
        case id = "_id", userId, type, reason, ref, amountPaise, state, balanceAfterPaise, createdAt, createdAtMs, actor, orderId, note
    }

    /// The signed change this entry makes to the balance.
    var delta: Int64 { type == .credit ? amountPaise : -amountPaise }

    init(id: String, userId: String, type: EntryType, reason: EntryReason, ref: String, amountPaise: Int64,
         actor: JSON, orderId: String? = nil, note: String? = nil, nowMs: Int64) {
        self.id = id
        self.userId = userId
        self.type = type
        self.reason = reason
        self.ref = ref
        self.amountPaise = amountPaise
        self.state = .pending
        self.balanceAfterPaise = nil
        self.createdAtMs = nowMs
        self.createdAt = Clock.iso8601(millis: nowMs)
        self.actor = actor
        self.orderId = orderId
        self.note = note
    }

    /// The stored form. `delta` is kept next to the amount so an operator reading the raw
    /// collection sees the sign without knowing the convention.
    func document() throws -> JSON {
        var doc = try JSON(encoding: self)
        doc["delta"] = .int(delta)
        return doc
    }

    /// The form callers see (only applied entries are ever shown).
    var publicJSON: JSON {
        var o: [String: JSON] = [
            "id": .string(id), "userId": .string(userId), "type": .string(type.rawValue), "reason": .string(reason.rawValue),
            "ref": .string(ref), "amountPaise": .int(amountPaise), "balanceAfterPaise": .int(balanceAfterPaise ?? 0),
            "createdAt": .string(createdAt), "actor": actor,
        ]
        if let orderId { o["orderId"] = .string(orderId) }
        if let note { o["note"] = .string(note) }
        return .object(o)
    }
}

/// Store access for wallets and the ledger: every method is one single-document operation (or a
/// read), so the protocol in `WalletService` can reason about each step on its own and the same
/// code runs on SQLite and MongoDB (`move` and `insertApplied` only inside a store transaction).
struct WalletRepository: Sendable {
    static let wallets = "wallets"
    static let ledger = "ledger"
    static let schemaVersion = 1

    let store: any DocumentStore
    /// Stamps entries and locks; the service reads it too, for the age of stranded work.
    let clock: any WallClock

    init(store: any DocumentStore, clock: any WallClock = SystemClock()) {
        self.store = store
        self.clock = clock
    }

    /// A stored document as its record; one that does not decode is an internal store error.
    private static func record<T: Decodable>(_ type: T.Type, _ doc: JSON, what: String) throws -> T {
        do {
            return try JSONValueDecoder.decode(T.self, from: doc)
        } catch {
            throw StoreError(.internal, "\(what) is malformed", detail: String(describing: error))
        }
    }

    static func wallet(_ doc: JSON) throws -> WalletDoc { try record(WalletDoc.self, doc, what: "a wallet document") }
    static func entry(_ doc: JSON) throws -> LedgerEntry { try record(LedgerEntry.self, doc, what: "a ledger entry") }

    func prepare() throws {
        try store.prepare([
            CollectionSpec(Self.wallets, indexes: [IndexSpec(["lockedAtMs"])]),
            CollectionSpec(Self.ledger, indexes: [
                IndexSpec(["ref"], unique: true),
                IndexSpec(["userId", "state"]),
                IndexSpec(["state", "createdAtMs"]),
            ]),
        ], schemaVersion: Self.schemaVersion)
    }

    // MARK: wallets

    func wallet(_ userId: String) throws -> WalletDoc? {
        try store.get(Self.wallets, id: userId).map(Self.wallet)
    }

    /// The wallet, created empty on first use.
    func ensureWallet(_ userId: String) throws -> WalletDoc {
        if let w = try wallet(userId) { return w }
        let now = clock.nowISO()
        let doc: JSON = [
            "_id": .string(userId), "currency": "INR", "balancePaise": 0, "version": 0,
            "pendingRef": .null, "pendingEntryId": .null, "pendingOp": .null,
            "createdAt": .string(now), "updatedAt": .string(now),
        ]
        switch try store.insert(Self.wallets, doc) {
        case .created(let d): return try Self.wallet(d)
        case .duplicate(let d): return try Self.wallet(d)
        }
    }

    /// Step 2: takes the wallet's single lock for `entry`, moving the money at the same instant
    /// when `op` is `.apply`. Only succeeds if nothing changed the wallet since `seen` was read.
    func lock(_ seen: WalletDoc, for entry: LedgerEntry, op: PendingOp) throws -> WalletDoc? {
        let nowMs = clock.nowMillis()
        var conds: [Filter] = [.id(seen.userId), .eq("version", .int(seen.version)), .eq("pendingEntryId", .null)]
        var inc: [String: Int64] = ["version": 1]
        if op == .apply {
            inc["balancePaise"] = entry.delta
            // Redundant with the version check; kept so a bug elsewhere can never drive a balance negative.
            if entry.delta < 0 { conds.append(.gte("balancePaise", .int(-entry.delta))) }
        }
        let update = Update(set: ["pendingRef": .string(entry.ref), "pendingEntryId": .string(entry.id), "pendingOp": .string(op.rawValue),
                                  "lockedAtMs": .int(nowMs), "updatedAt": .string(Clock.iso8601(millis: nowMs))],
                            inc: inc)
        return try store.update(Self.wallets, where: .and(conds), update).map(Self.wallet)
    }

    /// The one-transaction posting's wallet write (`WalletService.postInOneTransaction`): moves
    /// the balance and bumps the version, only if the wallet is still as `seen` and unlocked.
    func move(_ seen: WalletDoc, by delta: Int64) throws -> WalletDoc? {
        let nowMs = clock.nowMillis()
        var conds: [Filter] = [.id(seen.userId), .eq("version", .int(seen.version)), .eq("pendingEntryId", .null)]
        if delta < 0 { conds.append(.gte("balancePaise", .int(-delta))) }
        let update = Update(set: ["updatedAt": .string(Clock.iso8601(millis: nowMs))], inc: ["balancePaise": delta, "version": 1])
        return try store.update(Self.wallets, where: .and(conds), update).map(Self.wallet)
    }

    /// Step 4: releases the lock held for `entryId` (and only that one: the same ref may lock the
    /// wallet again later under a new entry id).
    @discardableResult
    func unlock(_ userId: String, entryId: String) throws -> WalletDoc? {
        let update = Update(set: ["pendingRef": .null, "pendingEntryId": .null, "pendingOp": .null, "lockedAtMs": .null])
        return try store.update(Self.wallets, where: .and([.id(userId), .eq("pendingEntryId", .string(entryId))]), update)
            .map(Self.wallet)
    }

    func walletIds() throws -> [String] {
        try store.find(Self.wallets, where: .all).compactMap { $0["_id"]?.stringValue }
    }

    /// Wallets whose lock is older than `beforeMs`: their holder probably died.
    func lockedWallets(lockedBeforeMs: Int64, limit: Int) throws -> [WalletDoc] {
        try store.find(Self.wallets, where: .lt("lockedAtMs", .int(lockedBeforeMs)), sort: [.asc("lockedAtMs")], limit: limit)
            .map(Self.wallet)
    }

    // MARK: ledger

    enum Inserted {
        case created
        case duplicate(LedgerEntry)
    }

    /// Step 1: stores the pending entry unless its ref is taken.
    func insertPending(_ entry: LedgerEntry) throws -> Inserted {
        switch try store.insert(Self.ledger, entry.document()) {
        case .created: return .created
        case .duplicate(let existing): return .duplicate(try Self.entry(existing))
        }
    }

    /// The one-transaction posting's entry, stored applied, unless its ref is taken.
    func insertApplied(_ entry: LedgerEntry) throws -> Inserted {
        var doc = try entry.document()
        doc["appliedAt"] = .string(Clock.iso8601(millis: entry.createdAtMs))
        switch try store.insert(Self.ledger, doc) {
        case .created: return .created
        case .duplicate(let existing): return .duplicate(try Self.entry(existing))
        }
    }

    func entry(id: String) throws -> LedgerEntry? {
        try store.get(Self.ledger, id: id).map(Self.entry)
    }

    func entry(ref: String) throws -> LedgerEntry? {
        try store.findOne(Self.ledger, where: .eq("ref", .string(ref))).map(Self.entry)
    }

    /// Step 3: records the balance the entry produced. A no-op when someone else already did.
    @discardableResult
    func markApplied(_ entryId: String, balanceAfterPaise: Int64) throws -> LedgerEntry? {
        let update = Update(set: ["state": .string(EntryState.applied.rawValue), "balanceAfterPaise": .int(balanceAfterPaise),
                                  "appliedAt": .string(clock.nowISO())])
        return try store.update(Self.ledger, where: .and([.id(entryId), .eq("state", .string(EntryState.pending.rawValue))]), update)
            .map(Self.entry)
    }

    /// Removes a refused entry, never an applied one.
    @discardableResult
    func deletePending(_ entryId: String) throws -> Bool {
        try store.delete(Self.ledger, where: .and([.id(entryId), .eq("state", .string(EntryState.pending.rawValue))])) > 0
    }

    /// Applied entries of one wallet, newest first, strictly older than `beforeId` when given.
    func appliedEntries(userId: String, beforeId: String?, limit: Int) throws -> [LedgerEntry] {
        var conds: [Filter] = [.eq("userId", .string(userId)), .eq("state", .string(EntryState.applied.rawValue))]
        if let b = beforeId { conds.append(.lt("_id", .string(b))) }
        return try store.find(Self.ledger, where: .and(conds), sort: [.desc("_id")], limit: limit).map(Self.entry)
    }

    /// Sum of applied entries, read in pages so a large ledger never sits in memory at once.
    func appliedSum(userId: String) throws -> (sum: Int64, count: Int) {
        var sum: Int64 = 0
        var count = 0
        var after: String?
        while true {
            var conds: [Filter] = [.eq("userId", .string(userId)), .eq("state", .string(EntryState.applied.rawValue))]
            if let a = after { conds.append(.gt("_id", .string(a))) }
            let page = try store.find(Self.ledger, where: .and(conds), sort: [.asc("_id")], limit: 1000)
            for d in page {
                let e = try Self.entry(d)
                sum += e.delta
                count += 1
            }
            guard page.count == 1000, let last = page.last?["_id"]?.stringValue else { return (sum, count) }
            after = last
        }
    }

    /// Pending entries created before `beforeMs`, oldest first.
    func pendingEntries(createdBeforeMs: Int64, limit: Int) throws -> [LedgerEntry] {
        try store.find(Self.ledger, where: .and([.eq("state", .string(EntryState.pending.rawValue)), .lt("createdAtMs", .int(createdBeforeMs))]),
                       sort: [.asc("createdAtMs")], limit: limit).map(Self.entry)
    }
}
