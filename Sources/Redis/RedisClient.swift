import CHiredis
import Foundation
import Runtime

/// One hiredis connection guarded by a lock. It connects lazily and, after any connection error,
/// drops the socket so that the next command reconnects; callers decide whether to retry.
///
/// The URL names either one server (`redis://[[user]:password@]host[:port][/db]`) or a master
/// that Redis Sentinel keeps track of
/// (`redis-sentinel://[[user]:password@]host:port,host:port,…/<master name>[/db]`). With
/// sentinels every (re)connect asks them for the current master and checks with `ROLE` that the
/// server it reached is one; a broken connection, a `-READONLY` reply (a master demoted by a
/// failover) or a `+switch-master` announced by the sentinels (`SentinelWatch`) drops the socket,
/// so the next command finds the new master. Both forms take
/// `?wait=<replicas>&wait_ms=<ms>`: `waitForReplicas()` then runs `WAIT` after a write that must
/// survive a failover. `Config` builds the URL from the `OOPS_REDIS_*` variables.
public final class RedisClient: @unchecked Sendable {
    public let db: Int
    public let timeoutMs: Int
    /// Replicas `waitForReplicas()` waits for (0: it does nothing) and for how long at most.
    public let waitReplicas: Int
    public let waitTimeoutMs: Int
    private let target: RedisTarget
    private let password: String?
    private let username: String?
    private let clientName: String?
    private let lock = NSLock()
    private var ctx: UnsafeMutablePointer<redisContext>?
    private var scriptShas: [String: String] = [:]
    /// The server of the current (or last) connection, and the sentinel that named it.
    private var current: RedisAddress
    private var sentinelIndex = 0
    /// With sentinels: the `+switch-master` listener, and how many switches it had heard when
    /// this connection was made.
    private let watch: SentinelWatch?
    private var connectedAtSwitch = 0

    public init(url: String, timeoutMs: Int = 5000, clientName: String? = nil) throws {
        let u = try RedisURL(url)
        target = u.target
        db = u.db
        password = u.password
        username = u.username
        waitReplicas = u.waitReplicas
        waitTimeoutMs = u.waitTimeoutMs
        switch u.target {
        case .direct(let a):
            current = a
            watch = nil
        case .sentinel(let name, let s):
            current = s[0]
            watch = SentinelWatch.shared(sentinels: s, masterName: name)
        }
        self.timeoutMs = timeoutMs
        self.clientName = clientName
    }

    /// Host and port of the server this client talks (or last talked) to.
    public var host: String { lock.lock(); defer { lock.unlock() }; return current.host }
    public var port: Int { lock.lock(); defer { lock.unlock() }; return current.port }

    deinit { if let c = ctx { redisFree(c) } }

    /// Sends one command (binary safe, through `redisCommandArgv`) and returns its reply. Error
    /// replies come back as `.error`, not as a throw; only connection failures throw.
    public func command(_ args: [String]) throws -> RedisReply {
        lock.lock(); defer { lock.unlock() }
        return try locked_command(args, timeoutMs: timeoutMs)
    }

    /// Like `command`, for blocking commands such as BZPOPMIN: the socket timeout is widened to
    /// `timeoutMs` for this call only.
    public func blockingCommand(_ args: [String], timeoutMs: Int) throws -> RedisReply {
        lock.lock(); defer { lock.unlock() }
        return try locked_command(args, timeoutMs: timeoutMs)
    }

    /// Sends a command and throws on an error reply.
    @discardableResult
    public func run(_ args: [String]) throws -> RedisReply {
        let r = try command(args)
        if case .error(let e) = r { throw RedisError.reply(e) }
        return r
    }

    /// Sends several commands in one write and reads all replies (one round trip).
    public func pipeline(_ commands: [[String]]) throws -> [RedisReply] {
        lock.lock(); defer { lock.unlock() }
        return try locked_pipeline(commands)
    }

    /// Runs a Lua script by EVALSHA, loading it first when this connection has not seen it and
    /// again after NOSCRIPT (a restarted or flushed server forgets its scripts).
    public func eval(_ script: RedisScript, keys: [String] = [], args: [String]) throws -> RedisReply {
        lock.lock(); defer { lock.unlock() }
        for attempt in 0..<2 {
            let sha = try locked_sha(script, reload: attempt > 0)
            let r = try locked_command(["EVALSHA", sha, String(keys.count)] + keys + args, timeoutMs: timeoutMs)
            if case .error(let e) = r {
                if e.hasPrefix("NOSCRIPT") { continue }
                throw RedisError.reply(e, context: script.name)
            }
            return r
        }
        throw RedisError(.server, "\(script.name): NOSCRIPT after reload")
    }

    /// Runs the same script with many argument lists in one round trip. Each run is atomic on its
    /// own; runs rejected with NOSCRIPT did not execute and are retried after a reload.
    public func evalMany(_ script: RedisScript, argLists: [[String]]) throws -> [RedisReply] {
        lock.lock(); defer { lock.unlock() }
        var results = [RedisReply?](repeating: nil, count: argLists.count)
        var pending = Array(argLists.indices)
        var reload = false
        for _ in 0..<2 where !pending.isEmpty {
            let sha = try locked_sha(script, reload: reload)
            let replies = try locked_pipeline(pending.map { ["EVALSHA", sha, "0"] + argLists[$0] })
            var again: [Int] = []
            for (i, r) in zip(pending, replies) {
                if case .error(let e) = r, e.hasPrefix("NOSCRIPT") { again.append(i) } else { results[i] = r }
            }
            pending = again
            reload = true
        }
        guard pending.isEmpty else { throw RedisError(.server, "\(script.name): NOSCRIPT after reload") }
        return results.map { $0! }
    }

    /// Closes the socket; the next command reconnects.
    public func disconnect() {
        lock.lock(); defer { lock.unlock() }
        dropConnection()
    }

    /// After a write that must survive a failover: `WAIT` for the configured number of replicas,
    /// at most `waitTimeoutMs`. Returns how many acknowledged (nil when not configured or when the
    /// connection failed; the write itself has already been answered either way).
    /// While the replicas are missing (a WAIT ran into its timeout) waiting is skipped for
    /// `waitBackoffMs`, so that a lost replica costs one timeout every few seconds instead of one
    /// per write (the command holds this client's lock).
    @discardableResult
    public func waitForReplicas() -> Int? {
        guard waitReplicas > 0 else { return nil }
        lock.lock(); defer { lock.unlock() }
        // WAIT only counts writes made on this very connection, so it must not reconnect first.
        guard ctx != nil, waitSkippedUntil.map({ $0.hasPassed }) ?? true else { return nil }
        guard let r = try? locked_command(["WAIT", String(waitReplicas), String(waitTimeoutMs)],
                                          timeoutMs: timeoutMs + waitTimeoutMs), let n = r.intValue else { return nil }
        waitSkippedUntil = n < waitReplicas ? Deadline.after(ms: Self.waitBackoffMs) : nil
        return Int(n)
    }

    public static let waitBackoffMs = 5000
    private var waitSkippedUntil: Deadline?

    // MARK: - internals (lock held)

    private func locked_sha(_ script: RedisScript, reload: Bool) throws -> String {
        if !reload, let s = scriptShas[script.source] { return s }
        let r = try locked_command(["SCRIPT", "LOAD", script.source], timeoutMs: timeoutMs)
        if case .error(let e) = r { throw RedisError.reply(e, context: "\(script.name): SCRIPT LOAD") }
        guard case .string(let sha) = r else { throw RedisError(.protocolViolation, "\(script.name): SCRIPT LOAD answered \(r)") }
        scriptShas[script.source] = sha
        return sha
    }

    private func dropConnection() {
        if let c = ctx { redisFree(c) }
        ctx = nil
    }

    private static func timeval(ms: Int) -> timeval {
        Glibc.timeval(tv_sec: ms / 1000, tv_usec: (ms % 1000) * 1000)
    }

    private func connectIfNeeded() throws -> UnsafeMutablePointer<redisContext> {
        if let c = ctx {
            // An idle connection with something to read has been closed by the server (restart,
            // timeout); reconnecting now means the next command is never sent into a dead socket.
            // A master Sentinel has replaced is left even if it still answers.
            var p = pollfd(fd: c.pointee.fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 0) == 0 && (watch?.generation ?? 0) == connectedAtSwitch { return c }
            dropConnection()
        }
        connectedAtSwitch = watch?.generation ?? 0
        let address = try locked_resolveMaster()
        let c = try Self.open(address, timeoutMs: timeoutMs)
        current = address
        _ = redisEnableKeepAlive(c)
        ctx = c
        var setup: [[String]] = []
        if let p = password { setup.append(username.map { ["AUTH", $0, p] } ?? ["AUTH", p]) }
        if db != 0 { setup.append(["SELECT", String(db)]) }
        if let n = clientName { setup.append(["CLIENT", "SETNAME", n]) }
        for cmd in setup {
            let r: RedisReply
            do { r = try send(c, cmd, timeoutMs: timeoutMs) } catch let e as RedisError {
                dropConnection()
                throw RedisError(.connect, e.message)
            }
            if case .error(let e) = r {
                dropConnection()
                throw RedisError(.connect, "\(cmd[0]) failed: \(e)")
            }
        }
        if case .sentinel(let name, _) = target {
            // A sentinel may still name a master that a failover has just demoted (or one that came
            // back as a replica); only a server that says it is master is used.
            let role = try? send(c, ["ROLE"], timeoutMs: timeoutMs)
            guard let r = role?.arrayValue?.first?.stringValue, r == "master" else {
                dropConnection()
                throw RedisError(.connect, "\(address.host):\(address.port), named master of '\(name)' by a sentinel, is not a master now")
            }
        }
        return c
    }

    private static func open(_ a: RedisAddress, timeoutMs: Int) throws -> UnsafeMutablePointer<redisContext> {
        guard let c = redisConnectWithTimeout(a.host, Int32(a.port), timeval(ms: timeoutMs)) else {
            throw RedisError(.connect, "cannot allocate redis context")
        }
        if c.pointee.err != 0 {
            let msg = errstr(c)
            redisFree(c)
            throw RedisError(.connect, "\(a.host):\(a.port): \(msg)")
        }
        return c
    }

    /// The address to connect to: the URL's, or the master the first answering sentinel names
    /// (starting with the one that answered last time).
    private func locked_resolveMaster() throws -> RedisAddress {
        guard case .sentinel(let name, let sentinels) = target else { return current }
        var problems: [String] = []
        for k in 0..<sentinels.count {
            let i = (sentinelIndex + k) % sentinels.count
            let s = sentinels[i]
            do {
                let c = try Self.open(s, timeoutMs: min(timeoutMs, 1000))
                defer { redisFree(c) }
                let r = try send(c, ["SENTINEL", "get-master-addr-by-name", name], timeoutMs: min(timeoutMs, 1000), owned: false)
                guard let a = r.arrayValue, a.count == 2, let h = a[0].stringValue, !h.isEmpty,
                      let p = a[1].stringValue.flatMap({ Int($0) }), (1...65535).contains(p) else {
                    problems.append("\(s.host):\(s.port) answered \(r)")
                    continue
                }
                sentinelIndex = i
                return RedisAddress(host: h, port: p)
            } catch {
                problems.append("\(s.host):\(s.port): \((error as? RedisError)?.message ?? "\(error)")")
            }
        }
        throw RedisError(.connect, "no sentinel named a master for '\(name)': " + problems.joined(separator: "; "))
    }

    private func locked_command(_ args: [String], timeoutMs: Int) throws -> RedisReply {
        let c = try connectIfNeeded()
        return try send(c, args, timeoutMs: timeoutMs)
    }

    /// `owned`: `c` is this client's connection (dropped on failure), not a sentinel's.
    private func send(_ c: UnsafeMutablePointer<redisContext>, _ args: [String], timeoutMs: Int, owned: Bool = true) throws -> RedisReply {
        let widened = timeoutMs != self.timeoutMs
        if widened { _ = redisSetTimeout(c, Self.timeval(ms: timeoutMs)) }
        defer { if widened, !owned || ctx != nil { _ = redisSetTimeout(c, Self.timeval(ms: self.timeoutMs)) } }
        let raw: UnsafeMutableRawPointer? = withArgv(args) { argc, argv, lens in redisCommandArgv(c, argc, argv, lens) }
        guard let reply = raw else {
            let msg = Self.errstr(c)
            if owned { dropConnection() }
            throw RedisError(.io, msg)
        }
        defer { freeReplyObject(reply) }
        let r = Self.convert(reply.assumingMemoryBound(to: redisReply.self))
        if owned { dropIfDemoted(r) }
        return r
    }

    /// A `-READONLY` reply means this server was master and is a replica now: the socket is
    /// dropped so that the next command looks for the master again.
    private func dropIfDemoted(_ r: RedisReply) {
        if case .error(let e) = r, e.hasPrefix("READONLY") { dropConnection() }
    }

    private func locked_pipeline(_ commands: [[String]]) throws -> [RedisReply] {
        if commands.isEmpty { return [] }
        let c = try connectIfNeeded()
        for cmd in commands {
            let rc = withArgv(cmd) { argc, argv, lens in redisAppendCommandArgv(c, argc, argv, lens) }
            if rc != REDIS_OK {
                let msg = Self.errstr(c)
                dropConnection()
                throw RedisError(.io, msg)
            }
        }
        var out: [RedisReply] = []
        out.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            if redisGetReply(c, &raw) != REDIS_OK || raw == nil {
                let msg = Self.errstr(c)
                dropConnection()
                throw RedisError(.io, msg)
            }
            out.append(Self.convert(raw!.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
        }
        // After reading every reply: dropping earlier would lose the rest of this round trip.
        for r in out where ctx != nil { dropIfDemoted(r) }
        return out
    }

    private func withArgv<R>(_ args: [String], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        // Copies every argument into one buffer so that pointers stay valid for the C call.
        var lens = [Int]()
        lens.reserveCapacity(args.count)
        var storage = [CChar]()
        for a in args {
            var u = a.utf8CString
            u.removeLast()  // length-delimited: the NUL is not part of the argument
            lens.append(u.count)
            storage.append(contentsOf: u)
        }
        if storage.isEmpty { storage.append(0) }
        return storage.withUnsafeBufferPointer { buf in
            var ptrs = [UnsafePointer<CChar>?]()
            ptrs.reserveCapacity(args.count)
            var off = 0
            for l in lens { ptrs.append(buf.baseAddress! + off); off += l }
            return ptrs.withUnsafeMutableBufferPointer { p in
                lens.withUnsafeBufferPointer { lp in body(Int32(args.count), p.baseAddress!, lp.baseAddress!) }
            }
        }
    }

    private static func errstr(_ c: UnsafeMutablePointer<redisContext>) -> String {
        var e = c.pointee.errstr
        let s = withUnsafePointer(to: &e) { $0.withMemoryRebound(to: CChar.self, capacity: 128) { String(cString: $0) } }
        return s.isEmpty ? "connection error \(c.pointee.err)" : s
    }

    private static func convert(_ r: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let p = r.pointee
        switch p.type {
        case REDIS_REPLY_STRING:
            return .string(text(p.str, p.len))
        case REDIS_REPLY_STATUS:
            return .status(text(p.str, p.len))
        case REDIS_REPLY_ERROR:
            return .error(text(p.str, p.len))
        case REDIS_REPLY_INTEGER:
            return .int(p.integer)
        case REDIS_REPLY_ARRAY:
            var a: [RedisReply] = []
            a.reserveCapacity(p.elements)
            for i in 0..<p.elements { if let e = p.element[i] { a.append(convert(e)) } else { a.append(.null) } }
            return .array(a)
        default:
            return .null
        }
    }

    private static func text(_ s: UnsafeMutablePointer<CChar>?, _ len: Int) -> String {
        guard let s, len > 0 else { return "" }
        return s.withMemoryRebound(to: UInt8.self, capacity: len) { String(decoding: UnsafeBufferPointer(start: $0, count: len), as: UTF8.self) }
    }
}

/// A Lua script run by EVALSHA; `name` only labels errors.
public struct RedisScript: Sendable {
    public let name: String
    public let source: String
    public init(name: String, source: String) { self.name = name; self.source = source }
}
