import CSQLite
import Foundation
import Runtime

/// A value bound to a `?` parameter; values never appear in SQL text.
enum SQLValue: Sendable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
}

/// One sqlite3 handle with its prepared-statement cache. Used by one thread at a time (the pool
/// hands it out exclusively), which is why it is opened with SQLITE_OPEN_NOMUTEX.
final class SQLiteConnection {
    let path: String
    private let db: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]
    private static let maxCachedStatements = 256

    init(path: String) throws {
        self.path = path
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let h = handle else {
            let msg = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw StoreError(.unavailable, "cannot open the database file \(path)", detail: msg)
        }
        db = h
        sqlite3_extended_result_codes(db, 1)
        // Writers from other threads and processes queue for the lock instead of failing at once.
        // Short sleeps (20 µs doubling to 1 ms) instead of SQLite's default steps of up to 100 ms,
        // for up to about 5 s: another process's write transaction lasts well under a millisecond.
        sqlite3_busy_handler(db, { _, count in
            guard count < 5_100 else { return 0 }
            usleep(UInt32(min(20 << min(Int(count), 6), 1000)))
            return 1
        }, nil)
        do {
            // WAL lets readers proceed while one writer commits. synchronous=NORMAL in WAL mode
            // never corrupts the file and never loses a commit when a process crashes; only an OS
            // crash or power loss can roll back the last commits before the next checkpoint. That
            // is the trade taken for write latency; the queue and idempotency keys make a lost
            // trailing commit a retry, not an inconsistency.
            try exec("PRAGMA journal_mode=WAL")
            try exec("PRAGMA synchronous=NORMAL")
            // Checkpoints run on the store's own thread (SQLiteStore), not inside whichever
            // request happens to commit the thousandth page: that commit would wait for an fsync.
            try exec("PRAGMA wal_autocheckpoint=0")
            try exec("PRAGMA foreign_keys=OFF")
        } catch {
            sqlite3_close_v2(db)
            throw error
        }
    }

    deinit { close() }

    private var closed = false

    func close() {
        guard !closed else { return }
        closed = true
        for (_, s) in statements { sqlite3_finalize(s) }
        statements.removeAll()
        sqlite3_close_v2(db)
    }

    func exec(_ sql: String) throws {
        try run(sql, []) { _ in }
    }

    /// Runs one statement, calling `row` for each result row; the statement is reset afterwards
    /// so the cached copy holds no locks.
    func run(_ sql: String, _ binds: [SQLValue], _ row: (OpaquePointer) throws -> Void) throws {
        let stmt = try statement(sql)
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
        }
        for (i, v) in binds.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(stmt, idx)
            case .int(let n): rc = sqlite3_bind_int64(stmt, idx, n)
            case .double(let d): rc = sqlite3_bind_double(stmt, idx, d)
            case .text(let s): rc = sqlite3_bind_text(stmt, idx, s, -1, CSQLite_transient())
            }
            guard rc == SQLITE_OK else { throw error(rc, sql: sql) }
        }
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_ROW { try row(stmt); continue }
            if rc == SQLITE_DONE { return }
            throw error(rc, sql: sql)
        }
    }

    var changes: Int { Int(sqlite3_changes(db)) }

    static func text(_ stmt: OpaquePointer, _ col: Int32) -> String? {
        guard let p = sqlite3_column_text(stmt, col) else { return nil }
        let n = Int(sqlite3_column_bytes(stmt, col))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    private func statement(_ sql: String) throws -> OpaquePointer {
        if let s = statements[sql] { return s }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let s = stmt else { throw error(rc, sql: sql) }
        if statements.count >= Self.maxCachedStatements {
            // Filters generate few distinct shapes; hitting the cap means something unusual, so
            // starting over is simpler than tracking recency.
            for (_, old) in statements { sqlite3_finalize(old) }
            statements.removeAll()
        }
        statements[sql] = s
        return s
    }

    /// The extended result code of the last failure, for constraint checks.
    var lastExtendedCode: Int32 { sqlite3_extended_errcode(db) }

    private func error(_ rc: Int32, sql: String) -> StoreError {
        let msg = String(cString: sqlite3_errmsg(db))
        let detail = "\(msg) [code \(sqlite3_extended_errcode(db))] in: \(sql)"
        switch rc & 0xFF {
        case SQLITE_NOTADB:
            return StoreError(.notADatabase, "the file \(path) is not a SQLite database; move it away or point the data directory elsewhere", detail: detail)
        case SQLITE_BUSY, SQLITE_LOCKED:
            return StoreError(.unavailable, "the database is busy", detail: detail)
        case SQLITE_CONSTRAINT:
            return StoreError(.conflict, "a unique key is already taken", detail: detail)
        case SQLITE_CANTOPEN, SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY:
            return StoreError(.unavailable, "the database file cannot be written", detail: detail)
        case SQLITE_CORRUPT:
            return StoreError(.internal, "the database file is corrupt", detail: detail)
        case SQLITE_ERROR where msg.hasPrefix("no such table"):
            return StoreError(.invalid, "unknown collection (prepare() creates collections)", detail: detail)
        default:
            return StoreError(.internal, "database error", detail: detail)
        }
    }
}

/// A bounded set of connections to one file. A blocking call borrows one for its whole duration,
/// so no connection is ever used by two threads at once; callers beyond `maxConnections` wait.
final class SQLitePool: Sendable {
    let path: String
    private let slots: DispatchSemaphore
    private let idle = Locked<(connections: [SQLiteConnection], closed: Bool)>(([], false))
    private let maxConnections: Int

    init(path: String, maxConnections: Int) throws {
        self.path = path
        self.maxConnections = maxConnections
        slots = DispatchSemaphore(value: maxConnections)
        // Open one now so a bad path or a file that is not a database fails at startup.
        let first = try SQLiteConnection(path: path)
        idle.withLock { $0.connections.append(first) }
    }

    /// Writers of this process take turns here: SQLite lets one writer at a time into a file,
    /// and a connection that finds the lock taken waits in its busy handler, sleeping. Queuing
    /// on a mutex instead hands the lock over the moment it is free (the busy handler then only
    /// covers other processes writing the same file).
    private let writer = NSLock()

    /// Borrows a connection for a statement or transaction that writes.
    func write<R>(_ body: (SQLiteConnection) throws -> R) throws -> R {
        if let c = openTransaction() { return try body(c) }
        writer.lock()
        defer { writer.unlock() }
        return try with(body)
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT` on one connection; every `with`/`write` this
    /// thread makes meanwhile uses that connection. Nested calls join the open transaction.
    func transaction<R>(_ body: () throws -> R) throws -> R {
        if openTransaction() != nil { return try body() }
        return try write { conn in
            try conn.exec("BEGIN IMMEDIATE")
            let slot = TransactionSlot(pool: self, connection: conn)
            pthread_setspecific(transactionKey, Unmanaged.passUnretained(slot).toOpaque())
            defer { pthread_setspecific(transactionKey, nil) }
            let r: R
            do {
                r = try withExtendedLifetime(slot) { try body() }
                try conn.exec("COMMIT")
            } catch {
                try? conn.exec("ROLLBACK")
                throw error
            }
            return r
        }
    }

    /// The connection of the transaction this thread has open on this pool.
    private func openTransaction() -> SQLiteConnection? {
        guard let p = pthread_getspecific(transactionKey) else { return nil }
        let slot = Unmanaged<TransactionSlot>.fromOpaque(p).takeUnretainedValue()
        return slot.pool === self ? slot.connection : nil
    }

    func with<R>(_ body: (SQLiteConnection) throws -> R) throws -> R {
        if let c = openTransaction() { return try body(c) }
        slots.wait()
        defer { slots.signal() }
        let (conn, closed) = idle.withLock { st in (st.connections.popLast(), st.closed) }
        guard !closed else { throw StoreError(.unavailable, "the store is closed") }
        let c = try conn ?? SQLiteConnection(path: path)
        defer {
            let stillOpen = idle.withLock { st -> Bool in
                if st.closed { return false }
                st.connections.append(c)
                return true
            }
            if !stillOpen { c.close() }
        }
        return try body(c)
    }

    func close() {
        let conns = idle.withLock { st -> [SQLiteConnection] in
            st.closed = true
            defer { st.connections = [] }
            return st.connections
        }
        for c in conns { c.close() }
    }
}


/// The transaction a thread has open (`SQLitePool.transaction`), found through a thread-specific
/// key shared by all pools.
private final class TransactionSlot {
    unowned let pool: SQLitePool
    let connection: SQLiteConnection
    init(pool: SQLitePool, connection: SQLiteConnection) {
        self.pool = pool
        self.connection = connection
    }
}

private let transactionKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key, nil)
    return key
}()
