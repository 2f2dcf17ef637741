import CSQLite
import Foundation
import JSON
import Runtime
import Store

/// `bench store`: inserts/s and conditional updates/s through the SQLite `DocumentStore` (WAL,
/// synchronous=NORMAL, one statement per transaction, as the services use it), beside the same
/// statements through the SQLite C API with the same pragmas and autocommit, in the same run.
/// With `--mongodb URI` the store measured is the MongoDB one (the baseline stays SQLite's).
enum StoreBench {
    /// An order-sized document (~600 bytes of JSON), the typical write of the services.
    static func doc(_ id: String) -> JSON {
        var d = BenchSystem.orderBody("c-\(id)")
        d["_id"] = .string(id)
        d["userId"] = "usr_bench"
        d["status"] = "pending"
        d["version"] = 0
        d["chargePaise"] = 7000
        return d
    }

    static func run(_ report: Report, seconds: Double) throws {
        let mongo = BenchBackend.mongoURI()
        print("store: \(mongo == nil ? "SQLite" : "MongoDB") DocumentStore vs the SQLite C API with the store's pragmas, one statement per transaction")
        let dir = NSTemporaryDirectory() + "oops-bench-store-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = Logger(service: "bench", instance: 0, level: .error)

        let store = try StoreFactory.open(service: "benchstore", dataDir: dir, mongoURI: mongo, log: log)
        defer { BenchBackend.dispose(store) }
        let on = BenchBackend.label
        try store.prepare([CollectionSpec("orders", indexes: [IndexSpec(["userId", "clientOrderId"], unique: true)])], schemaVersion: 1)
        let raw = try RawSQLite(path: dir + "/raw.sqlite")
        defer { raw.close() }

        let tag = benchTag()
        // Inserts, one thread each (one writer is what SQLite allows anyway).
        let storeIns = runLoad(threads: 1, seconds: seconds) { _ in
            let id = "o_\(tag)_\(ID.make("x"))"
            return (try? store.insert("orders", doc(id))) != nil
        }
        let rawCounter = Locked(0)
        let rawIns = runLoad(threads: 1, seconds: seconds) { _ in
            let n = rawCounter.withLock { $0 += 1; return $0 }
            let id = "o_\(tag)_\(n)"
            return raw.insert(id: id, doc: doc(id).serialized())
        }
        let si = Double(storeIns.ops) / storeIns.elapsed, ri = Double(rawIns.ops) / rawIns.elapsed
        report.add(BenchRow(suite: "store", name: "insert (new order document), 1 thread\(on)", value: si, unit: "ops/s", baselineName: "sqlite3 C API INSERT", baseline: ri,
                            note: String(format: "p50 %.0f µs vs %.0f µs", storeIns.samples.p50, rawIns.samples.p50)))

        // Conditional updates (compare-and-set on a version field) over one hot document.
        _ = try store.insert("orders", doc("hot"))
        _ = raw.insert(id: "hot", doc: doc("hot").serialized())
        let ver = Locked<Int64>(0)
        let storeCAS = runLoad(threads: 1, seconds: seconds) { _ in
            let v = ver.current
            let r = try? store.update("orders", where: .and([.id("hot"), .eq("version", .int(v))]), Update(set: ["status": "placed"], inc: ["version": 1]))
            if r != nil { ver.withLock { $0 = v + 1 } }
            return r != nil
        }
        let rver = Locked<Int64>(0)
        let rawCAS = runLoad(threads: 1, seconds: seconds) { _ in
            let v = rver.current
            let ok = raw.cas(id: "hot", version: v)
            if ok { rver.withLock { $0 = v + 1 } }
            return ok
        }
        let su = Double(storeCAS.ops) / storeCAS.elapsed, ru = Double(rawCAS.ops) / rawCAS.elapsed
        report.add(BenchRow(suite: "store", name: "conditional update (CAS on version), 1 thread\(on)", value: su, unit: "ops/s",
                            baselineName: "sqlite3 C API UPDATE … WHERE version=? RETURNING", baseline: ru,
                            note: String(format: "p50 %.0f µs vs %.0f µs", storeCAS.samples.p50, rawCAS.samples.p50)))

        // The same CAS from 8 threads on 8 documents: SQLite serialises the writers.
        for i in 0..<8 { _ = try store.insert("orders", doc("w\(i)")); _ = raw.insert(id: "w\(i)", doc: doc("w\(i)").serialized()) }
        let storeMT = runLoad(threads: 8, seconds: seconds) { t in
            (try? store.update("orders", where: .id("w\(t)"), Update(inc: ["version": 1]))) != nil
        }
        let raws = try (0..<8).map { _ in try RawSQLite(path: dir + "/raw.sqlite") }
        defer { raws.forEach { $0.close() } }
        let rawMT = runLoad(threads: 8, seconds: seconds) { t in raws[t].inc(id: "w\(t)") }
        report.add(BenchRow(suite: "store", name: "unconditional update, 8 threads\(on)", value: Double(storeMT.ops) / storeMT.elapsed, unit: "ops/s",
                            baselineName: "C API, 8 connections", baseline: Double(rawMT.ops) / rawMT.elapsed,
                            note: String(format: "p99 %.0f µs vs %.0f µs", storeMT.samples.p99, rawMT.samples.p99)))
    }
}

/// The baseline: a connection set up like `SQLiteConnection` (WAL, synchronous=NORMAL, busy
/// timeout), the same table shape, prepared statements, autocommit.
final class RawSQLite: @unchecked Sendable {
    private var db: OpaquePointer?
    private var ins: OpaquePointer?
    private var upd: OpaquePointer?
    private var incSt: OpaquePointer?

    init(path: String) throws {
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK else {
            throw RuntimeError("sqlite open failed")
        }
        sqlite3_busy_timeout(db, 5000)
        for s in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                  "CREATE TABLE IF NOT EXISTS c_orders (id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
                  "CREATE UNIQUE INDEX IF NOT EXISTS i_orders ON c_orders(json_extract(doc,'$.userId'), json_extract(doc,'$.clientOrderId'))"] {
            guard sqlite3_exec(db, s, nil, nil, nil) == SQLITE_OK else { throw RuntimeError("sqlite: \(String(cString: sqlite3_errmsg(db)))") }
        }
        sqlite3_prepare_v2(db, "INSERT INTO c_orders(id, doc) VALUES(?, ?)", -1, &ins, nil)
        sqlite3_prepare_v2(db, "UPDATE c_orders SET doc = json_set(doc, '$.status', 'placed', '$.version', json_extract(doc, '$.version') + 1) WHERE id = ? AND json_extract(doc, '$.version') = ? RETURNING doc", -1, &upd, nil)
        sqlite3_prepare_v2(db, "UPDATE c_orders SET doc = json_set(doc, '$.version', json_extract(doc, '$.version') + 1) WHERE id = ? RETURNING doc", -1, &incSt, nil)
    }

    func insert(id: String, doc: String) -> Bool {
        defer { sqlite3_reset(ins) }
        sqlite3_bind_text(ins, 1, id, -1, CSQLite_transient())
        sqlite3_bind_text(ins, 2, doc, -1, CSQLite_transient())
        return sqlite3_step(ins) == SQLITE_DONE
    }

    /// Reads the returned document back like the store does, so both sides pay for the copy.
    private func stepReturning(_ st: OpaquePointer?) -> Bool {
        var got = false
        while true {
            let rc = sqlite3_step(st)
            if rc == SQLITE_ROW {
                if let p = sqlite3_column_text(st, 0) { _ = String(cString: p); got = true }
                continue
            }
            return rc == SQLITE_DONE && got
        }
    }

    func cas(id: String, version: Int64) -> Bool {
        defer { sqlite3_reset(upd) }
        sqlite3_bind_text(upd, 1, id, -1, CSQLite_transient())
        sqlite3_bind_int64(upd, 2, version)
        return stepReturning(upd)
    }

    func inc(id: String) -> Bool {
        defer { sqlite3_reset(incSt) }
        sqlite3_bind_text(incSt, 1, id, -1, CSQLite_transient())
        return stepReturning(incSt)
    }

    func close() {
        for s in [ins, upd, incSt] { sqlite3_finalize(s) }
        sqlite3_close_v2(db)
        db = nil
    }
}

/// `--mongodb URI` / OOPS_BENCH_MONGODB_URI: the MongoDB that `store` and `orders` measure.
enum BenchBackend {
    static let variable = "OOPS_BENCH_MONGODB_URI"

    /// The given URI with a database of this run's own, or nil for SQLite.
    static func mongoURI() -> String? {
        guard let u = ProcessInfo.processInfo.environment[variable], !u.isEmpty else { return nil }
        return MongoStore.uri(u, database: database)
    }

    private static let database = "oops_bench_\(UInt32.random(in: 0...UInt32.max))"

    /// Appended to row names measured on MongoDB.
    static var label: String { mongoURI() == nil ? "" : " (MongoDB)" }

    /// Closes a store, dropping the run's MongoDB database first.
    static func dispose(_ store: any DocumentStore) {
        if let m = store as? MongoStore { try? m.dropDatabase() }
        store.close()
    }
}
