import JSON

/// What `insert` did: stored the new document, or found another one already holding its `_id`
/// or one of its unique keys (insert-if-absent; the caller decides whether that is a replay).
public enum InsertResult: Sendable, Hashable {
    case created(JSON)
    case duplicate(existing: JSON)
}

/// A small document store every service builds its repositories on: JSON objects with a string
/// `_id`, single-document atomic operations; multi-document transactions only as an optional
/// fast path (`transaction`), so every promise holds on a backend without them. All calls block the calling thread; never call them
/// from the Swift concurrency pool.
public protocol DocumentStore: Sendable {
    /// "sqlite" or "mongodb", for health reports.
    var backend: String { get }

    /// Creates collections and indexes (idempotent) and records `schemaVersion`; throws
    /// `.schemaTooNew` when the store was written by a newer binary.
    func prepare(_ collections: [CollectionSpec], schemaVersion: Int) throws

    /// Stores `doc` unless its `_id` or a unique key is taken, in which case it returns the
    /// document that holds the key.
    func insert(_ collection: String, _ doc: JSON) throws -> InsertResult

    func get(_ collection: String, id: String) throws -> JSON?
    func findOne(_ collection: String, where filter: Filter) throws -> JSON?

    /// Matching documents in `sort` order (ties by `_id`); `limit` <= 0 means no limit.
    func find(_ collection: String, where filter: Filter, sort: [SortKey], limit: Int) throws -> [JSON]

    func count(_ collection: String, where filter: Filter) throws -> Int

    /// Atomically updates one matching document and returns it as it is after the update, or nil
    /// when nothing matched: a compare-and-set when the filter includes the expected state.
    func update(_ collection: String, where filter: Filter, _ update: Update) throws -> JSON?

    /// Updates every matching document (each atomically, not all together); returns how many matched.
    func updateMany(_ collection: String, where filter: Filter, _ update: Update) throws -> Int

    /// Deletes every matching document; returns how many.
    func delete(_ collection: String, where filter: Filter) throws -> Int

    /// Throws `.unavailable` when the backend cannot serve requests.
    func ping() throws

    /// Runs `body` as one transaction when the backend has them: every call `body` makes on this
    /// store from this thread commits together, or none does when it throws (the error is
    /// rethrown). Returns nil without running `body` when the backend has no such transaction;
    /// callers then keep their single-document protocol.
    func transaction<R>(_ body: () throws -> R) throws -> R?

    /// Releases connections; later calls throw `.unavailable`.
    func close()
}

extension DocumentStore {
    /// No multi-document transactions unless the backend says otherwise.
    public func transaction<R>(_ body: () throws -> R) throws -> R? { nil }

    /// One document by `_id`; both backends read it the same way.
    public func get(_ collection: String, id: String) throws -> JSON? {
        try findOne(collection, where: .eq("_id", .string(id)))
    }

    /// The first match of a filter.
    public func findOne(_ collection: String, where filter: Filter) throws -> JSON? {
        try find(collection, where: filter, sort: [], limit: 1).first
    }

    /// Every matching document, ordered by `_id`.
    public func find(_ collection: String, where filter: Filter) throws -> [JSON] {
        try find(collection, where: filter, sort: [], limit: 0)
    }

    public func count(_ collection: String) throws -> Int { try count(collection, where: .all) }

    /// The document that already holds one of `doc`'s unique keys (its `_id` first, then each
    /// unique index whose fields are all present), used after a backend reports a duplicate key.
    /// Insert-if-absent on top of a backend's raw insert (`tryInsert` says false on a taken
    /// key): returns the created document, or the one holding the key. The holder can vanish
    /// between the failed insert and the lookup; then the insert is simply tried again.
    func insertOrFindHolder(_ collection: String, _ doc: JSON, id: String, uniqueIndexes: [IndexSpec],
                            tryInsert: () throws -> Bool) throws -> InsertResult {
        for _ in 0..<5 {
            if try tryInsert() { return .created(doc) }
            if let existing = try holderOfKeys(collection, of: doc, id: id, uniqueIndexes: uniqueIndexes) {
                return .duplicate(existing: existing)
            }
        }
        throw StoreError(.internal, "insert kept conflicting with a document that disappeared")
    }

    func holderOfKeys(_ collection: String, of doc: JSON, id: String, uniqueIndexes: [IndexSpec]) throws -> JSON? {
        if let existing = try get(collection, id: id) { return existing }
        for index in uniqueIndexes {
            var parts: [Filter] = []
            for f in index.fields {
                guard let v = DocumentPath.value(at: f, in: doc), !v.isNull else { break }
                parts.append(.eq(f, v))
            }
            guard parts.count == index.fields.count else { continue }
            if let existing = try findOne(collection, where: .and(parts)) { return existing }
        }
        return nil
    }
}

extension DocumentStore {
    /// The `store` entry of a service's `rpc.health` checks: a ping, the backend, and the
    /// client-safe reason when it fails.
    public var healthCheck: JSON {
        do {
            try ping()
            return ["ok": true, "backend": .string(backend)]
        } catch {
            return ["ok": false, "backend": .string(backend), "error": .string(String(describing: error))]
        }
    }
}
