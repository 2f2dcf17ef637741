import CHiredis
import Foundation
import Runtime

/// One hiredis connection guarded by a lock. It connects lazily and, after any connection error,
/// drops the socket so that the next command reconnects; callers decide whether to retry.
public final class RedisClient: @unchecked Sendable {
    public let host: String
    public let port: Int
    public let db: Int
    public let timeoutMs: Int
    private let password: String?
    private let username: String?
    private let clientName: String?
    private let lock = NSLock()
    private var ctx: UnsafeMutablePointer<redisContext>?
    private var scriptShas: [String: String] = [:]

    public init(url: String, timeoutMs: Int = 5000, clientName: String? = nil) throws {
        guard let c = URLComponents(string: url), c.scheme == "redis", let h = c.host, !h.isEmpty else {
            throw RedisError(.badURL, "expected redis://[:password@]host[:port][/db]")
        }
        host = h
        port = c.port ?? 6379
        let path = c.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        db = path.isEmpty ? 0 : (Int(path) ?? 0)
        password = c.password.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
        username = c.user.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
        self.timeoutMs = timeoutMs
        self.clientName = clientName
    }

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
            var p = pollfd(fd: c.pointee.fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 0) == 0 { return c }
            dropConnection()
        }
        guard let c = redisConnectWithTimeout(host, Int32(port), Self.timeval(ms: timeoutMs)) else {
            throw RedisError(.connect, "cannot allocate redis context")
        }
        if c.pointee.err != 0 {
            let msg = Self.errstr(c)
            redisFree(c)
            throw RedisError(.connect, "\(host):\(port): \(msg)")
        }
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
        return c
    }

    private func locked_command(_ args: [String], timeoutMs: Int) throws -> RedisReply {
        let c = try connectIfNeeded()
        return try send(c, args, timeoutMs: timeoutMs)
    }

    private func send(_ c: UnsafeMutablePointer<redisContext>, _ args: [String], timeoutMs: Int) throws -> RedisReply {
        let widened = timeoutMs != self.timeoutMs
        if widened { _ = redisSetTimeout(c, Self.timeval(ms: timeoutMs)) }
        defer { if widened, ctx != nil { _ = redisSetTimeout(c, Self.timeval(ms: self.timeoutMs)) } }
        let raw: UnsafeMutableRawPointer? = withArgv(args) { argc, argv, lens in redisCommandArgv(c, argc, argv, lens) }
        guard let reply = raw else {
            let msg = Self.errstr(c)
            dropConnection()
            throw RedisError(.io, msg)
        }
        defer { freeReplyObject(reply) }
        return Self.convert(reply.assumingMemoryBound(to: redisReply.self))
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
