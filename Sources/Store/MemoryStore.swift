import JSON
import Runtime

/// A `DocumentStore` held in memory, for unit tests of service logic: a repository runs on it
/// in-process, with no file and no server. It keeps every promise of the protocol (the
/// conformance suite runs against it like against SQLite and MongoDB): MongoDB's filter rules,
/// unique indexes (fields absent or null take no part), insert-if-absent, compare-and-set,
/// sort with ties by `_id`, and the same refusals. One lock serialises every operation, so each
/// is atomic and any number of threads may share the store.
///
/// A test double, not a backend: nothing survives the process, and `StoreFactory` never opens
/// one. Strings order by their UTF-8 bytes (as SQLite's BINARY collation); across types, absent
/// and null sort first, then numbers, then strings, then everything else.
public final class MemoryStore: DocumentStore {
    public let backend = "memory"

    private struct State {
        var closed = false
        var schemaVersion: Int?
        /// Collection name → `_id` → document.
        var collections: [String: [String: JSON]] = [:]
        var uniqueIndexes: [String: [IndexSpec]] = [:]
    }

    private let state = Locked(State())

    public init() {}

    /// Runs `body` under the store's lock, refusing once the store is closed.
    private func open<R>(_ body: (inout State) throws -> R) throws -> R {
        try state.withLock { s in
            guard !s.closed else { throw StoreError(.unavailable, "the store is closed") }
            return try body(&s)
        }
    }

    public func prepare(_ collections: [CollectionSpec], schemaVersion: Int) throws {
        try CollectionSpec.validate(collections)
        try open { s in
            if let recorded = s.schemaVersion, recorded > schemaVersion {
                throw StoreError(.schemaTooNew, "the store has schema version \(recorded), newer than this binary's \(schemaVersion)")
            }
            s.schemaVersion = schemaVersion
            for c in collections {
                if s.collections[c.name] == nil { s.collections[c.name] = [:] }
                s.uniqueIndexes[c.name] = c.indexes.filter(\.unique)
            }
        }
    }

    public func insert(_ collection: String, _ doc: JSON) throws -> InsertResult {
        let id = try DocumentPath.id(of: doc)
        try DocumentPath.validateName(collection, what: "collection")
        let unique = try open { $0.uniqueIndexes[collection] ?? [] }
        return try insertOrFindHolder(collection, doc, id: id, uniqueIndexes: unique) {
            try open { s -> Bool in
                let docs = s.collections[collection] ?? [:]
                guard docs[id] == nil, Self.holder(of: doc, in: docs, except: nil, unique: unique) == nil else { return false }
                s.collections[collection, default: [:]][id] = doc
                return true
            }
        }
    }

    public func find(_ collection: String, where filter: Filter, sort: [SortKey], limit: Int) throws -> [JSON] {
        try DocumentPath.validateName(collection, what: "collection")
        let matches = try Self.predicate(filter)
        for k in sort { try DocumentPath.validate(k.path) }
        let docs = try open { s in (s.collections[collection] ?? [:]).values.filter(matches) }
        let sorted = docs.sorted { a, b in
            for k in sort {
                let c = Self.order(DocumentPath.value(at: k.path, in: a), DocumentPath.value(at: k.path, in: b))
                if c != 0 { return k.descending ? c > 0 : c < 0 }
            }
            return Self.order(a["_id"], b["_id"]) < 0
        }
        return limit > 0 ? Array(sorted.prefix(limit)) : sorted
    }

    public func count(_ collection: String, where filter: Filter) throws -> Int {
        try DocumentPath.validateName(collection, what: "collection")
        let matches = try Self.predicate(filter)
        return try open { s in (s.collections[collection] ?? [:]).values.filter(matches).count }
    }

    public func update(_ collection: String, where filter: Filter, _ update: Update) throws -> JSON? {
        try DocumentPath.validateName(collection, what: "collection")
        try update.validate()
        let matches = try Self.predicate(filter)
        return try open { s -> JSON? in
            let docs = s.collections[collection] ?? [:]
            // The first match in `_id` order, as a compare-and-set picks one document.
            guard let id = docs.keys.sorted(by: { Self.bytesLess($0, $1) }).first(where: { matches(docs[$0]!) }) else { return nil }
            let after = try Self.applying(update, to: docs[id]!)
            if Self.holder(of: after, in: docs, except: id, unique: s.uniqueIndexes[collection] ?? []) != nil {
                throw StoreError(.conflict, "the update would take a unique key another document holds")
            }
            s.collections[collection, default: [:]][id] = after
            return after
        }
    }

    public func updateMany(_ collection: String, where filter: Filter, _ update: Update) throws -> Int {
        try DocumentPath.validateName(collection, what: "collection")
        try update.validate()
        let matches = try Self.predicate(filter)
        return try open { s -> Int in
            var docs = s.collections[collection] ?? [:]
            let ids = docs.keys.filter { matches(docs[$0]!) }
            // Every change is computed and checked before any is kept: a conflict changes nothing.
            for id in ids { docs[id] = try Self.applying(update, to: docs[id]!) }
            let unique = s.uniqueIndexes[collection] ?? []
            for id in ids where Self.holder(of: docs[id]!, in: docs, except: id, unique: unique) != nil {
                throw StoreError(.conflict, "the update would take a unique key another document holds")
            }
            s.collections[collection] = docs
            return ids.count
        }
    }

    public func delete(_ collection: String, where filter: Filter) throws -> Int {
        try DocumentPath.validateName(collection, what: "collection")
        let matches = try Self.predicate(filter)
        return try open { s -> Int in
            let docs = s.collections[collection] ?? [:]
            let ids = docs.keys.filter { matches(docs[$0]!) }
            for id in ids { s.collections[collection]?.removeValue(forKey: id) }
            return ids.count
        }
    }

    public func ping() throws {
        try open { _ in }
    }

    public func close() {
        state.withLock { $0.closed = true }
    }

    // MARK: unique keys

    /// The `_id` of another document in `docs` holding one of `doc`'s unique keys (indexes whose
    /// fields are all present and non-null in `doc`).
    private static func holder(of doc: JSON, in docs: [String: JSON], except: String?, unique: [IndexSpec]) -> String? {
        for index in unique {
            let key = index.fields.map { DocumentPath.value(at: $0, in: doc) }
            guard key.allSatisfy({ $0 != nil && !$0!.isNull }) else { continue }
            for (id, other) in docs where id != except {
                let otherKey = index.fields.map { DocumentPath.value(at: $0, in: other) }
                if zip(key, otherKey).allSatisfy({ a, b in b.map { equal(a!, $0) } ?? false }) { return id }
            }
        }
        return nil
    }

    // MARK: filters

    /// Checks `filter` the way both real backends do (so a malformed one is refused even when
    /// the collection is empty) and returns the test it stands for.
    static func predicate(_ filter: Filter) throws -> @Sendable (JSON) -> Bool {
        switch filter {
        case .all:
            return { _ in true }
        case .and(let fs):
            let ps = try fs.map(predicate)
            return { d in ps.allSatisfy { $0(d) } }
        case .or(let fs):
            let ps = try fs.map(predicate)
            return { d in ps.contains { $0(d) } }
        case .eq(let p, let v):
            try checkEquality(p, v)
            return { d in matchesEqual(DocumentPath.value(at: p, in: d), v) }
        case .ne(let p, let v):
            try checkEquality(p, v)
            return { d in !matchesEqual(DocumentPath.value(at: p, in: d), v) }
        case .gt(let p, let v): return try range(p, v) { $0 > 0 }
        case .gte(let p, let v): return try range(p, v) { $0 >= 0 }
        case .lt(let p, let v): return try range(p, v) { $0 < 0 }
        case .lte(let p, let v): return try range(p, v) { $0 <= 0 }
        case .in(let p, let vs):
            for v in vs { try checkEquality(p, v) }
            if vs.isEmpty { try DocumentPath.validate(p) }
            return { d in
                let x = DocumentPath.value(at: p, in: d)
                return vs.contains { matchesEqual(x, $0) }
            }
        case .exists(let p, let present):
            try DocumentPath.validate(p)
            return { d in (DocumentPath.value(at: p, in: d) != nil) == present }
        }
    }

    private static func checkEquality(_ p: String, _ v: JSON) throws {
        try DocumentPath.validate(p)
        switch v {
        case .null, .bool, .int, .double, .string: return
        case .object, .array:
            if DocumentPath.dateMillis(v) == nil {
                throw StoreError(.invalid, "filters compare scalar values and dates, not objects or arrays (path \(p))")
            }
        }
    }

    /// MongoDB's equality: null matches an absent field, booleans are not numbers.
    private static func matchesEqual(_ x: JSON?, _ v: JSON) -> Bool {
        guard let x else { return v.isNull }
        return equal(x, v)
    }

    /// Equal values of the same kind (an integer equals a floating-point number of the same value).
    static func equal(_ a: JSON, _ b: JSON) -> Bool {
        if let c = compareSameKind(a, b) { return c == 0 }
        return a == b
    }

    private static func range(_ p: String, _ v: JSON, _ accept: @escaping @Sendable (Int) -> Bool) throws -> @Sendable (JSON) -> Bool {
        try DocumentPath.validate(p)
        switch v {
        case .int, .double, .string: break
        default:
            guard DocumentPath.dateMillis(v) != nil else {
                throw StoreError(.invalid, "range filters compare numbers, strings or dates (path \(p))")
            }
        }
        return { d in
            guard let x = DocumentPath.value(at: p, in: d), let c = compareSameKind(x, v) else { return false }
            return accept(c)
        }
    }

    /// -1, 0 or 1 for two numbers, two strings (by UTF-8 bytes) or two dates; nil across kinds.
    private static func compareSameKind(_ a: JSON, _ b: JSON) -> Int? {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x < y ? -1 : (x == y ? 0 : 1)
        case (.int, .double), (.double, .int), (.double, .double):
            let x = a.doubleValue!, y = b.doubleValue!
            return x < y ? -1 : (x == y ? 0 : 1)
        case (.string(let x), .string(let y)):
            return x == y ? 0 : (bytesLess(x, y) ? -1 : 1)
        default:
            guard let x = DocumentPath.dateMillis(a), let y = DocumentPath.dateMillis(b) else { return nil }
            return x < y ? -1 : (x == y ? 0 : 1)
        }
    }

    private static func bytesLess(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    /// The sort order: absent and null, then numbers, then strings, then anything else (by its text).
    static func order(_ a: JSON?, _ b: JSON?) -> Int {
        func rank(_ v: JSON?) -> Int {
            switch v {
            case nil, .null?: return 0
            case .int?, .double?: return 1
            case .string?: return 2
            default: return 3
            }
        }
        let ra = rank(a), rb = rank(b)
        if ra != rb { return ra < rb ? -1 : 1 }
        guard let a, let b else { return 0 }
        if let c = compareSameKind(a, b) { return c }
        let x = a.serialized(), y = b.serialized()
        return x == y ? 0 : (bytesLess(x, y) ? -1 : 1)
    }

    // MARK: updates

    /// `doc` after `u` (already validated: paths well-formed, not overlapping, `_id` untouched).
    static func applying(_ u: Update, to doc: JSON) throws -> JSON {
        var d = doc
        for p in u.unset { d = removing(d, at: p.split(separator: ".")) }
        for (p, v) in u.set { d = try changing(d, at: p.split(separator: ".")) { _ in v } }
        for (p, n) in u.inc {
            d = try changing(d, at: p.split(separator: ".")) { old in
                switch old {
                case nil, .null?: return .int(n)
                case .int(let x)?:
                    let (sum, overflow) = x.addingReportingOverflow(n)
                    guard !overflow else { throw StoreError(.invalid, "incrementing \(p) would overflow") }
                    return .int(sum)
                case .double(let x)?: return .double(x + Double(n))
                default: throw StoreError(.invalid, "cannot increment the non-number field \(p)")
                }
            }
        }
        for (p, v) in u.push {
            d = try changing(d, at: p.split(separator: ".")) { old in
                switch old {
                case nil: return .array([v])
                case .array(let a)?: return .array(a + [v])
                default: throw StoreError(.invalid, "cannot push to the non-array field \(p)")
                }
            }
        }
        return d
    }

    /// Replaces the value at `path` by what `change` makes of the old one, creating parent
    /// objects as needed.
    private static func changing(_ v: JSON?, at path: [Substring], _ change: (JSON?) throws -> JSON) throws -> JSON {
        guard let first = path.first else { return try change(v) }
        var o: [String: JSON]
        switch v {
        case nil: o = [:]
        case .object(let x)?: o = x
        default: throw StoreError(.invalid, "cannot set a field inside a non-object at \(first)")
        }
        let key = String(first)
        o[key] = try changing(o[key], at: Array(path.dropFirst()), change)
        return .object(o)
    }

    /// `v` without the field at `path`; unchanged when there is no such field.
    private static func removing(_ v: JSON, at path: [Substring]) -> JSON {
        guard let first = path.first, case .object(var o) = v, let child = o[String(first)] else { return v }
        // Removed explicitly: JSON is nil-literal expressible, so `o[k] = nil` could mean `.null`.
        if path.count == 1 { o.removeValue(forKey: String(first)) } else { o[String(first)] = removing(child, at: Array(path.dropFirst())) }
        return .object(o)
    }
}
