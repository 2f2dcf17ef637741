import CSQLite
import Foundation
import JSON
import Runtime

/// The default store: one SQLite file per service, a table per collection holding
/// `(id TEXT PRIMARY KEY, doc TEXT)` with JSON text, indexes on `json_extract` expressions.
/// Several threads and several processes may use the same file; SQLite serialises the writers.
public final class SQLiteStore: DocumentStore {
    public let backend = "sqlite"
    public let path: String
    private let pool: SQLitePool
    private let log: Logger
    /// Unique indexes per collection, learnt in `prepare`, to find who holds a duplicate key.
    private let uniqueIndexes = Locked<[String: [IndexSpec]]>([:])

    /// Copies the write-ahead log back into the database file a few times a second, off the
    /// request path (PASSIVE: never waits for readers or writers).
    private let checkpointer: PeriodicTask

    public init(path: String, maxConnections: Int = 8, log: Logger) throws {
        self.path = path
        self.log = log
        let pool = try SQLitePool(path: path, maxConnections: max(1, maxConnections))
        self.pool = pool
        checkpointer = PeriodicTask(name: "sqlite-checkpoint", intervalMs: 200, initialDelayMs: 200) {
            try? pool.with { conn in try conn.exec("PRAGMA wal_checkpoint(PASSIVE)") }
        }
    }

    deinit { checkpointer.stop() }

    private static func table(_ collection: String) throws -> String {
        try DocumentPath.validateName(collection, what: "collection")
        return "\"c_\(collection)\""
    }

    public func prepare(_ collections: [CollectionSpec], schemaVersion: Int) throws {
        try CollectionSpec.validate(collections)
        try pool.write { conn in
            // IMMEDIATE takes the write lock up front, so processes starting together queue up
            // instead of failing to upgrade a read transaction.
            try conn.exec("BEGIN IMMEDIATE")
            do {
                try conn.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                var recorded: Int?
                try conn.run("SELECT value FROM meta WHERE key = 'schema_version'", []) { st in
                    recorded = SQLiteConnection.text(st, 0).flatMap { Int($0) }
                }
                if let r = recorded, r > schemaVersion {
                    throw StoreError(.schemaTooNew, "the database \(path) has schema version \(r), newer than this binary's \(schemaVersion); run the newer release or restore a backup")
                }
                for c in collections {
                    let t = try Self.table(c.name)
                    try conn.exec("CREATE TABLE IF NOT EXISTS \(t) (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
                    for i in c.indexes {
                        let cols = i.fields.map { $0 == "_id" ? "id" : SQLiteQuery.extract($0) }.joined(separator: ",")
                        try conn.exec("CREATE \(i.unique ? "UNIQUE " : "")INDEX IF NOT EXISTS \"i_\(c.name)__\(i.name)\" ON \(t)(\(cols))")
                    }
                }
                if recorded != schemaVersion {
                    try conn.run("INSERT INTO meta(key, value) VALUES('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                                 [.text(String(schemaVersion))]) { _ in }
                }
                try conn.exec("COMMIT")
            } catch {
                try? conn.exec("ROLLBACK")
                throw error
            }
        }
        uniqueIndexes.withLock { m in
            for c in collections { m[c.name] = c.indexes.filter(\.unique) }
        }
        log.info("store prepared", ["backend": "sqlite", "path": .string(path), "schemaVersion": JSON(schemaVersion)])
    }

    public func insert(_ collection: String, _ doc: JSON) throws -> InsertResult {
        let id = try DocumentPath.id(of: doc)
        let t = try Self.table(collection)
        return try insertOrFindHolder(collection, doc, id: id, uniqueIndexes: uniqueIndexes.withLock { $0[collection] ?? [] }) {
            try pool.write { conn -> Bool in
                do {
                    try conn.run("INSERT INTO \(t)(id, doc) VALUES(?, ?)", [.text(id), .text(doc.serialized())]) { _ in }
                    return true
                } catch let e as StoreError where e.kind == .conflict {
                    return false
                }
            }
        }
    }

    public func find(_ collection: String, where filter: Filter, sort: [SortKey], limit: Int) throws -> [JSON] {
        let t = try Self.table(collection)
        var q = SQLiteQuery()
        var sql = "SELECT doc FROM \(t) WHERE \(try q.whereClause(filter))" + (try SQLiteQuery.orderBy(sort))
        if limit > 0 { sql += " LIMIT \(q.bind(.int(Int64(limit))))" }
        return try pool.with { conn in
            var out: [JSON] = []
            try conn.run(sql, q.binds) { st in out.append(try Self.decode(st)) }
            return out
        }
    }

    /// The collections this file holds (one table `c_<name>` each), sorted.
    public func collectionNames() throws -> [String] {
        try pool.with { conn in
            var out: [String] = []
            try conn.run("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'c\\_%' ESCAPE '\\' ORDER BY name", []) { st in
                if let n = SQLiteConnection.text(st, 0) { out.append(String(n.dropFirst(2))) }
            }
            return out
        }
    }

    public func count(_ collection: String, where filter: Filter) throws -> Int {
        let t = try Self.table(collection)
        var q = SQLiteQuery()
        let sql = "SELECT COUNT(*) FROM \(t) WHERE \(try q.whereClause(filter))"
        return try pool.with { conn in
            var n = 0
            try conn.run(sql, q.binds) { st in n = Int(sqlite3_column_int64(st, 0)) }
            return n
        }
    }

    public func update(_ collection: String, where filter: Filter, _ update: Update) throws -> JSON? {
        if update.isEmpty {
            try update.validate()
            return try findOne(collection, where: filter)
        }
        let t = try Self.table(collection)
        var q = SQLiteQuery()
        let newDoc = try q.updatedDoc(update)
        // One statement: SQLite holds the write lock from the subquery's read to the write, so
        // the chosen row still matches when it is changed (compare-and-set).
        let sql = "UPDATE \(t) SET doc = \(newDoc) WHERE id = (SELECT id FROM \(t) WHERE \(try q.whereClause(filter)) LIMIT 1) RETURNING doc"
        return try pool.write { conn in
            var out: JSON?
            try conn.run(sql, q.binds) { st in out = try Self.decode(st) }
            return out
        }
    }

    public func updateMany(_ collection: String, where filter: Filter, _ update: Update) throws -> Int {
        if update.isEmpty {
            try update.validate()
            return try count(collection, where: filter)
        }
        let t = try Self.table(collection)
        var q = SQLiteQuery()
        let newDoc = try q.updatedDoc(update)
        let sql = "UPDATE \(t) SET doc = \(newDoc) WHERE \(try q.whereClause(filter))"
        return try pool.write { conn in
            try conn.run(sql, q.binds) { _ in }
            return conn.changes
        }
    }

    public func delete(_ collection: String, where filter: Filter) throws -> Int {
        let t = try Self.table(collection)
        var q = SQLiteQuery()
        let sql = "DELETE FROM \(t) WHERE \(try q.whereClause(filter))"
        return try pool.write { conn in
            try conn.run(sql, q.binds) { _ in }
            return conn.changes
        }
    }

    /// One `BEGIN IMMEDIATE … COMMIT` on one connection: the write lock is taken up front, so
    /// what `body` reads stays true until it commits. Another thread's calls wait for the commit.
    public func transaction<R>(_ body: () throws -> R) throws -> R? {
        try pool.transaction(body)
    }

    public func ping() throws {
        try pool.with { conn in try conn.exec("SELECT 1") }
    }

    public func close() {
        checkpointer.stop()
        pool.close()
    }

    private static func decode(_ st: OpaquePointer) throws -> JSON {
        guard let text = SQLiteConnection.text(st, 0) else { throw StoreError(.internal, "a stored document is NULL") }
        do {
            return try JSONParser.parse(text)
        } catch {
            throw StoreError(.internal, "a stored document is not valid JSON", detail: error.description)
        }
    }
}
