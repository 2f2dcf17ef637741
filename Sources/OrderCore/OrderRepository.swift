import JSON
import Store
import Runtime

/// Orders on the document store. Every change is a single-document atomic operation: insert
/// if absent on `(userId, clientOrderId)`, and compare-and-set on `status` or `stage`.
struct OrderRepository: Sendable {
    let store: any DocumentStore
    /// Stamps `updatedAt` and dates the recovery pass's cutoff; the service reads it too.
    var clock: any WallClock = SystemClock()
    static let collection = "orders"
    static let schemaVersion = 1

    func prepare() throws {
        try store.prepare([
            CollectionSpec(Self.collection, indexes: [
                IndexSpec(["userId", "clientOrderId"], unique: true, name: "orders_user_client_id"),
                IndexSpec(["userId", "_id"], name: "orders_user_id"),
                IndexSpec(["stage", "updatedAtMs"], name: "orders_stage"),
                IndexSpec(["status"], name: "orders_status"),
                // The admin's order search (orders.find): by the merchant's number or the AWB.
                IndexSpec(["clientOrderId"], name: "orders_client_id"),
                IndexSpec(["awbNumber"], name: "orders_awb"),
                // Orders owing webhook events (the recovery pass's query).
                IndexSpec([Order.webhookDueField, "updatedAtMs"], name: "orders_webhook_due"),
            ]),
        ], schemaVersion: Self.schemaVersion)
    }

    func insert(_ doc: JSON) throws -> InsertResult { try store.insert(Self.collection, doc) }
    func get(_ id: String) throws -> JSON? { try store.get(Self.collection, id: id) }

    /// Compare-and-set: applies `update` only when the order still matches `filter`; returns the
    /// order after the update, nil when it no longer matched.
    func update(_ id: String, where extra: Filter?, _ u: Update) throws -> JSON? {
        var u = u
        let now = clock.nowMillis()
        u.set["updatedAt"] = .string(Clock.iso8601(millis: now))
        u.set["updatedAtMs"] = .int(now)
        let f: Filter = extra.map { .and([.id(id), $0]) } ?? .id(id)
        return try store.update(Self.collection, where: f, u)
    }

    /// Orders whose id, merchant's `clientOrderId` or AWB is `q` (the admin's search), newest first.
    func find(_ q: String, limit: Int) throws -> [JSON] {
        try store.find(Self.collection, where: .or([.eq("_id", .string(q)), .eq("clientOrderId", .string(q)), .eq("awbNumber", .string(q))]),
                       sort: [.desc("_id")], limit: limit)
    }

    func deleteUncharged(_ id: String) throws -> Bool {
        try store.delete(Self.collection, where: .and([.id(id), .eq("stage", .string(OrderStage.accepted.rawValue))])) > 0
    }

    func list(userId: String?, status: String?, before cursor: String?, limit: Int) throws -> [JSON] {
        var parts: [Filter] = []
        if let u = userId { parts.append(.eq("userId", .string(u))) }
        if let s = status { parts.append(.eq("status", .string(s))) }
        if let c = cursor { parts.append(.lt("_id", .string(c))) }
        return try store.find(Self.collection, where: parts.isEmpty ? .all : .and(parts), sort: [.desc("_id")], limit: limit)
    }

    /// Orders whose create or cancel pipeline did not finish (a process died between steps).
    func unfinished(olderThanMs: Int64, limit: Int) throws -> [JSON] {
        let cutoff = clock.nowMillis() - olderThanMs
        let f: Filter = .and([
            .or([.in("stage", [.string(OrderStage.accepted.rawValue), .string(OrderStage.charged.rawValue)]),
                 .and([.eq("status", OrderStatus.cancelRequested.json), .ne("cancelEnqueued", true)])]),
            .lt("updatedAtMs", .int(cutoff)),
        ])
        return try store.find(Self.collection, where: f, sort: [.asc("updatedAtMs")], limit: limit)
    }

    /// Orders past acceptance (stage `enqueued`) still owing webhook events (docs/webhooks.md),
    /// unchanged for `olderThanMs`.
    func owingWebhooks(olderThanMs: Int64, limit: Int) throws -> [JSON] {
        let f: Filter = .and([.eq(Order.webhookDueField, true), .eq("stage", .string(OrderStage.enqueued.rawValue)),
                              .lt("updatedAtMs", .int(clock.nowMillis() - olderThanMs))])
        return try store.find(Self.collection, where: f, sort: [.asc("updatedAtMs")], limit: limit)
    }

    /// Takes the owed webhook events off the order once they are stored, unless a newer one was
    /// added meanwhile (its `webhookSeq` moved on). Leaves `updatedAt` alone: the order did not change.
    func webhooksRecorded(_ id: String, through seq: Int) throws -> Bool {
        try store.update(Self.collection, where: .and([.id(id), .eq(Order.webhookSeqField, .int(Int64(seq)))]),
                         Update(unset: [Order.webhookOutboxField, Order.webhookDueField, Order.webhookSeqField])) != nil
    }

    /// Orders that wait on a provider job (pending, or with a cancel job added) and have not
    /// changed for `olderThanMs`, by id after `cursor`: the reconciliation's pages.
    func awaitingJobs(olderThanMs: Int64, after cursor: String?, limit: Int) throws -> [JSON] {
        var parts: [Filter] = [
            .eq("stage", .string(OrderStage.enqueued.rawValue)),
            .or([.eq("status", OrderStatus.pending.json),
                 .and([.eq("status", OrderStatus.cancelRequested.json), .eq("cancelEnqueued", true)])]),
            .lt("updatedAtMs", .int(clock.nowMillis() - olderThanMs)),
        ]
        if let c = cursor { parts.append(.gt("_id", .string(c))) }
        return try store.find(Self.collection, where: .and(parts), sort: [.asc("_id")], limit: limit)
    }
}
