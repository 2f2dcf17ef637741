import CMongoC
import Foundation
import JSON
import Runtime

/// Where libmongoc's own warnings go: the log of the first store opened in the process.
private let mongocLog = Locked<Logger?>(nil)

/// libmongoc wants one process-wide initialisation before any other call.
private let mongocInitialized: Bool = {
    mongoc_init()
    // By default libmongoc prints its own lines (debug chatter included) to stderr, which would
    // break the one-JSON-object-per-line log; keep warnings and errors, as structured entries.
    mongoc_log_set_handler({ level, domain, message, _ in
        guard level.rawValue <= MONGOC_LOG_LEVEL_WARNING.rawValue else { return }
        let meta: [String: JSON] = [
            "domain": .string(domain.map { String(cString: $0) } ?? ""),
            "detail": .string(message.map { String(cString: $0) } ?? ""),
        ]
        mongocLog.current?.log(level == MONGOC_LOG_LEVEL_WARNING ? .warn : .error, "libmongoc", meta)
    }, nil)
    return true
}()

/// The MongoDB store: one database (from the URI, default `oops`), collections named
/// `<service>_<collection>`, one client pool per store. Every promise of `DocumentStore` maps to
/// a single-document atomic command: insert_one (duplicate key 11000, then a lookup) and
/// findAndModify returning the new document.
// @unchecked: the only non-Sendable fields are the URI (read-only after init) and the pool,
// which libmongoc makes thread-safe; `state` (a lock) guards its destruction.
public final class MongoStore: DocumentStore, @unchecked Sendable {
    public let backend = "mongodb"
    /// socketTimeoutMS unless the URI sets it.
    public static let defaultSocketTimeoutMs: Int32 = 10_000
    public let databaseName: String
    public let service: String
    private let uri: OpaquePointer
    /// mongoc_client_pool_t is thread-safe; `state` tracks borrowers so `close` never destroys
    /// the pool under a running call.
    private let pool: OpaquePointer
    private let state = Locked<(inFlight: Int, closed: Bool)>((0, false))
    private let uniqueIndexes = Locked<[String: [IndexSpec]]>([:])
    private let log: Logger

    public init(uri uriString: String, service: String, log: Logger) throws {
        _ = mongocInitialized
        mongocLog.withLock { if $0 == nil { $0 = log } }
        self.service = service
        self.log = log
        var err = bson_error_t()
        guard let uri = mongoc_uri_new_with_error(uriString, &err) else {
            throw StoreError(.invalid, "the MongoDB URI is malformed", detail: Self.message(err))
        }
        // Majority acknowledgement unless the URI says otherwise: an acknowledged order or
        // charge must survive a primary failover.
        if !mongoc_uri_has_option(uri, "w") {
            let wc = mongoc_write_concern_new()
            mongoc_write_concern_set_wmajority(wc, 0)
            mongoc_uri_set_write_concern(uri, wc)
            mongoc_write_concern_destroy(wc)
        }
        // Retryable writes (also the driver's default; stated, since the protocol relies on it):
        // a write cut off by a failover or a dropped connection is retried once under the same
        // transaction number, so the server applies it at most once.
        if !mongoc_uri_has_option(uri, "retrywrites") {
            _ = mongoc_uri_set_option_as_bool(uri, "retrywrites", true)
        }
        // A store that cannot reach its server should say so quickly (/readyz), not after 30 s.
        if !mongoc_uri_has_option(uri, "serverselectiontimeoutms") {
            _ = mongoc_uri_set_option_as_int32(uri, "serverselectiontimeoutms", 5000)
        }
        // A server that stops answering frees a request's thread after 10 s, not after the
        // driver's default of 5 minutes (every operation here touches one document).
        if !mongoc_uri_has_option(uri, "sockettimeoutms") {
            _ = mongoc_uri_set_option_as_int32(uri, "sockettimeoutms", Self.defaultSocketTimeoutMs)
        }
        let db = mongoc_uri_get_database(uri).map { String(cString: $0) } ?? ""
        databaseName = db.isEmpty ? "oops" : db
        guard let pool = mongoc_client_pool_new(uri) else {
            mongoc_uri_destroy(uri)
            throw StoreError(.invalid, "the MongoDB URI was refused by the driver")
        }
        _ = mongoc_client_pool_set_error_api(pool, Int32(MONGOC_ERROR_API_VERSION_2))
        _ = mongoc_client_pool_set_appname(pool, "oops-\(service)")
        self.uri = uri
        self.pool = pool
        log.info("store opened", ["backend": "mongodb", "database": .string(databaseName)])
    }

    deinit {
        close()
    }

    private func collectionName(_ collection: String) throws -> String {
        try DocumentPath.validateName(collection, what: "collection")
        return "\(service)_\(collection)"
    }

    /// Borrows a client for one blocking call on the calling thread.
    private func withClient<R>(_ body: (OpaquePointer) throws -> R) throws -> R {
        let ok = state.withLock { st -> Bool in
            if st.closed { return false }
            st.inFlight += 1
            return true
        }
        guard ok else { throw StoreError(.unavailable, "the store is closed") }
        defer { state.withLock { $0.inFlight -= 1 } }
        guard let client = mongoc_client_pool_pop(pool) else { throw StoreError(.unavailable, "no MongoDB client available") }
        defer { mongoc_client_pool_push(pool, client) }
        return try body(client)
    }

    private func withCollection<R>(_ collection: String, _ body: (OpaquePointer) throws -> R) throws -> R {
        let name = try collectionName(collection)
        return try withClient { client in
            let coll = mongoc_client_get_collection(client, databaseName, name)!
            defer { mongoc_collection_destroy(coll) }
            return try body(coll)
        }
    }

    public func prepare(_ collections: [CollectionSpec], schemaVersion: Int) throws {
        try CollectionSpec.validate(collections)
        let schemaFilter: [(String, BSONValue)] = [("_id", .json("schema"))]
        if let meta = try findDocuments("meta", schemaFilter, opts: [("limit", .json(1))]).first,
           let recorded = meta["version"]?.intValue, recorded > Int64(schemaVersion) {
            throw StoreError(.schemaTooNew, "the MongoDB database \(databaseName) has schema version \(recorded) for \(service), newer than this binary's \(schemaVersion); run the newer release")
        }
        try withClient { client in
            for c in collections where !c.indexes.isEmpty {
                let indexes: [BSONValue] = c.indexes.map { i in
                    var spec: [(String, BSONValue)] = [
                        ("key", .document(i.fields.map { ($0, .int32(1)) })),
                        ("name", .json(.string(i.name))),
                    ]
                    if i.unique {
                        spec.append(("unique", .json(true)))
                        // Documents lacking a field stay out of the index, as NULLs do in SQLite.
                        spec.append(("partialFilterExpression", .document(i.fields.map { ($0, .document([("$exists", .json(true))])) })))
                    }
                    return .document(spec)
                }
                let cmd: [(String, BSONValue)] = [("createIndexes", .json(.string(try collectionName(c.name)))), ("indexes", .array(indexes))]
                try BSONCodec.with(cmd) { cmd in
                    let reply = CMongoC_bson_storage_new()!
                    defer { CMongoC_bson_storage_free(reply) }
                    var err = bson_error_t()
                    guard mongoc_client_command_simple(client, databaseName, cmd, nil, reply, &err) else {
                        throw Self.error(err, what: "creating indexes")
                    }
                }
            }
        }
        // $max keeps a newer version recorded by a concurrently starting newer binary.
        try withCollection("meta") { coll in
            try BSONCodec.with(schemaFilter) { filter in
                try BSONCodec.with([("$max", .document([("version", .json(.int(Int64(schemaVersion))))]))]) { update in
                    try BSONCodec.with([("upsert", .json(true))]) { opts in
                        var err = bson_error_t()
                        guard mongoc_collection_update_one(coll, filter, update, opts, nil, &err) else {
                            throw Self.error(err, what: "recording the schema version")
                        }
                    }
                }
            }
        }
        uniqueIndexes.withLock { m in
            for c in collections { m[c.name] = c.indexes.filter(\.unique) }
        }
        log.info("store prepared", ["backend": "mongodb", "database": .string(databaseName), "schemaVersion": JSON(schemaVersion)])
    }

    public func insert(_ collection: String, _ doc: JSON) throws -> InsertResult {
        let id = try DocumentPath.id(of: doc)
        guard case .object(let fields) = doc else { throw StoreError(.invalid, "a document must be a JSON object") }
        return try insertOrFindHolder(collection, doc, id: id, uniqueIndexes: uniqueIndexes.withLock { $0[collection] ?? [] }) {
            try withCollection(collection) { coll -> Bool in
                let b = try BSONCodec.make(object: fields)
                defer { bson_destroy(b) }
                var err = bson_error_t()
                if mongoc_collection_insert_one(coll, b, nil, nil, &err) { return true }
                if err.code == 11000 { return false }
                throw Self.error(err, what: "inserting")
            }
        }
    }

    public func find(_ collection: String, where filter: Filter, sort: [SortKey], limit: Int) throws -> [JSON] {
        var opts: [(String, BSONValue)] = [("sort", try MongoQuery.sort(sort))]
        if limit > 0 { opts.append(("limit", .json(.int(Int64(limit))))) }
        return try findDocuments(collection, try MongoQuery.filter(filter), opts: opts)
    }

    private func findDocuments(_ collection: String, _ filter: [(String, BSONValue)], opts: [(String, BSONValue)]) throws -> [JSON] {
        try withCollection(collection) { coll in
            try BSONCodec.with(filter) { f in
                try BSONCodec.with(opts) { o in
                    guard let cursor = mongoc_collection_find_with_opts(coll, f, o, nil) else {
                        throw StoreError(.internal, "the driver returned no cursor")
                    }
                    defer { mongoc_cursor_destroy(cursor) }
                    var out: [JSON] = []
                    var doc: OpaquePointer?
                    while mongoc_cursor_next(cursor, &doc) {
                        if let d = doc { out.append(try BSONCodec.decode(d)) }
                    }
                    var err = bson_error_t()
                    if mongoc_cursor_error(cursor, &err) { throw Self.error(err, what: "reading") }
                    return out
                }
            }
        }
    }

    public func count(_ collection: String, where filter: Filter) throws -> Int {
        let f = try MongoQuery.filter(filter)
        return try withCollection(collection) { coll in
            try BSONCodec.with(f) { f in
                var err = bson_error_t()
                let n = mongoc_collection_count_documents(coll, f, nil, nil, nil, &err)
                if n < 0 { throw Self.error(err, what: "counting") }
                return Int(n)
            }
        }
    }

    public func update(_ collection: String, where filter: Filter, _ update: Update) throws -> JSON? {
        if update.isEmpty {
            try update.validate()
            return try findOne(collection, where: filter)
        }
        let f = try MongoQuery.filter(filter)
        let u = try MongoQuery.update(update)
        return try withCollection(collection) { coll in
            try BSONCodec.with(f) { f in
                try BSONCodec.with(u) { u in
                    let opts = mongoc_find_and_modify_opts_new()!
                    defer { mongoc_find_and_modify_opts_destroy(opts) }
                    _ = mongoc_find_and_modify_opts_set_update(opts, u)
                    _ = mongoc_find_and_modify_opts_set_flags(opts, MONGOC_FIND_AND_MODIFY_RETURN_NEW)
                    let reply = CMongoC_bson_storage_new()!
                    defer { CMongoC_bson_storage_free(reply) }
                    var err = bson_error_t()
                    guard mongoc_collection_find_and_modify_with_opts(coll, f, opts, reply, &err) else {
                        throw Self.error(err, what: "updating")
                    }
                    return try BSONCodec.decodeSubdocument(reply, key: "value")
                }
            }
        }
    }

    public func updateMany(_ collection: String, where filter: Filter, _ update: Update) throws -> Int {
        if update.isEmpty {
            try update.validate()
            return try count(collection, where: filter)
        }
        let f = try MongoQuery.filter(filter)
        let u = try MongoQuery.update(update)
        return try withCollection(collection) { coll in
            try BSONCodec.with(f) { f in
                try BSONCodec.with(u) { u in
                    let reply = CMongoC_bson_storage_new()!
                    defer { CMongoC_bson_storage_free(reply) }
                    var err = bson_error_t()
                    guard mongoc_collection_update_many(coll, f, u, nil, reply, &err) else {
                        throw Self.error(err, what: "updating")
                    }
                    return Int(BSONCodec.intField(reply, "matchedCount") ?? 0)
                }
            }
        }
    }

    public func delete(_ collection: String, where filter: Filter) throws -> Int {
        let f = try MongoQuery.filter(filter)
        return try withCollection(collection) { coll in
            try BSONCodec.with(f) { f in
                let reply = CMongoC_bson_storage_new()!
                defer { CMongoC_bson_storage_free(reply) }
                var err = bson_error_t()
                guard mongoc_collection_delete_many(coll, f, nil, reply, &err) else {
                    throw Self.error(err, what: "deleting")
                }
                return Int(BSONCodec.intField(reply, "deletedCount") ?? 0)
            }
        }
    }

    /// `mongodb://hosts/<database>?options` from `mongodb://hosts[/<other>][?options]`: the
    /// same server and options with a database of the caller's (benchmarks and tests use one of
    /// their own, never the deployment's).
    public static func uri(_ uri: String, database: String) -> String {
        guard let scheme = uri.range(of: "://") else { return uri }
        let rest = uri[scheme.upperBound...]
        let query = rest.firstIndex(of: "?").map { String(rest[$0...]) } ?? ""
        let hostsEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        return String(uri[..<scheme.upperBound]) + rest[..<hostsEnd] + "/" + database + query
    }

    /// Drops this store's whole database (for benchmarks that made a database of their own).
    public func dropDatabase() throws {
        try withClient { client in
            let db = mongoc_client_get_database(client, databaseName)!
            defer { mongoc_database_destroy(db) }
            var err = bson_error_t()
            guard mongoc_database_drop(db, &err) else { throw Self.error(err, what: "dropping the database") }
        }
    }

    /// Drops a collection with its indexes (tests clean up their prefixes with it).
    func drop(_ collection: String) throws {
        try withCollection(collection) { coll in
            var err = bson_error_t()
            // 26 is NamespaceNotFound: nothing to drop.
            if !mongoc_collection_drop(coll, &err) && err.code != 26 { throw Self.error(err, what: "dropping") }
        }
    }

    public func ping() throws {
        try withClient { client in
            try BSONCodec.with([("ping", .int32(1))]) { cmd in
                var err = bson_error_t()
                guard mongoc_client_command_simple(client, "admin", cmd, nil, nil, &err) else {
                    throw StoreError(.unavailable, "MongoDB does not answer", detail: Self.message(err))
                }
            }
        }
    }

    public func close() {
        let first = state.withLock { st -> Bool in
            defer { st.closed = true }
            return !st.closed
        }
        guard first else { return }
        // Calls already running finish first; new ones are refused above.
        let deadline = Deadline.after(ms: 10_000)
        state.wait(until: { $0.inFlight == 0 }, deadline: deadline)
        mongoc_client_pool_destroy(pool)
        mongoc_uri_destroy(uri)
    }

    private static func message(_ err: bson_error_t) -> String {
        withUnsafeBytes(of: err.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    private static func error(_ err: bson_error_t, what: String) -> StoreError {
        let detail = "\(message(err)) [domain \(err.domain) code \(err.code)]"
        switch err.domain {
        case MONGOC_ERROR_STREAM.rawValue, MONGOC_ERROR_SERVER_SELECTION.rawValue, MONGOC_ERROR_CLIENT.rawValue:
            return StoreError(.unavailable, "MongoDB is unavailable while \(what)", detail: detail)
        default:
            if err.code == 11000 { return StoreError(.conflict, "a unique key is already taken", detail: detail) }
            return StoreError(.internal, "MongoDB error while \(what)", detail: detail)
        }
    }
}
