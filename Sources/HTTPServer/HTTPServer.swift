import CHTTP
import Foundation
import Runtime

/// What a handler replies: a response now, or work that may block (calls to services) and
/// produces the response later.
public enum HTTPReply: Sendable {
    /// Answered on the event thread, at once: the handler has already done everything.
    case now(HTTPResponse)
    /// Run on a worker thread while the connection waits, suspended; the event thread goes on
    /// serving other connections meanwhile.
    case later(@Sendable () -> HTTPResponse)
}

/// An HTTP/1.1 server: Debian's http-parser reads requests, a few epoll event threads own the
/// connections, and a worker pool runs handlers that may block.
///
/// Threading: each event thread (`options.eventThreads`) accepts connections from the shared
/// listening socket and serves them. A handler runs first on the event thread and either answers
/// at once (`.now`: health checks, refusals, anything that does not block) or hands back work
/// that may block (`.later`: calls to services). That work runs on a worker thread while the
/// connection waits (nothing more is read from it); the worker hands the response back to the
/// connection's event thread, which writes it. So one slow request never holds up another
/// connection, and a request that needs no worker costs no thread switch.
///
/// Strictness (RFC 9112): a request the server cannot read unambiguously is refused with the
/// JSON error body and `X-Request-Id`, and its connection closed — repeated or conflicting
/// message lengths, malformed framing or headers, a control character in the decoded target or
/// in a header value, a missing or repeated Host, headers or bodies over the limits. See
/// `HTTPRefusal` for each answer.
public final class HTTPServer: Sendable {
    /// The port the server listens on (the kernel's pick when 0 was asked for).
    public let boundPort: UInt16
    private let core: ServerCore
    private let loops: [EventLoop]
    private let stopped = Locked(false)

    /// A server whose every request may block: each runs on a worker thread.
    public convenience init(host: String, port: UInt16, options: HTTPServerOptions = HTTPServerOptions(),
                            handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws {
        try self.init(host: host, port: port, options: options, reply: { req in .later { handler(req) } })
    }

    public init(host: String, port: UInt16, options: HTTPServerOptions = HTTPServerOptions(),
                reply: @escaping @Sendable (HTTPRequest) -> HTTPReply) throws {
        // The parser's own header limit sits above ours, so that ours (with its answer) applies.
        Self.raiseParserHeaderLimit(to: max(options.maxHeaderBytes, 1024) * 2)
        let (fd, bound) = try Self.listen(host: host, port: port)
        let core = ServerCore(handler: reply, options: options, listenFD: fd)
        var loops: [EventLoop] = []
        do {
            for _ in 0..<max(options.eventThreads, 1) { loops.append(try EventLoop(core: core)) }
        } catch {
            _ = Glibc.close(fd)
            throw error
        }
        self.core = core
        self.loops = loops
        self.boundPort = bound
        for loop in loops {
            let t = Thread { loop.run() }
            t.name = "http-event"
            t.start()
        }
    }

    /// http-parser's header limit is one for the whole process: it is only ever raised, so that
    /// every server's own (lower) limit applies first.
    private static let parserHeaderLimit = Locked(0)
    private static func raiseParserHeaderLimit(to bytes: Int) {
        parserHeaderLimit.withLock { current in
            guard bytes > current else { return }
            current = bytes
            http_parser_set_max_header_size(UInt32(clamping: bytes))
        }
    }

    /// Requests whose handling has started and whose response is not yet sent.
    public var inFlightRequests: Int { core.inFlight.current }

    /// Stops accepting connections, lets in-flight requests finish for up to
    /// `options.drainTimeoutMs`, then closes every connection. Idle keep-alive connections are
    /// closed at once, and every answer from then on carries `Connection: close`. Safe to call
    /// more than once.
    ///
    /// A handler still running after the drain delays the return of this call until it
    /// returns; handlers are expected to honour their own deadlines.
    public func stop() {
        guard stopped.withLock({ s -> Bool in
            defer { s = true }
            return !s
        }) else { return }
        core.phase.withLock { $0 = .draining }
        for l in loops { l.wake() }
        // Every loop has stopped listening before the socket is closed under it.
        let n = loops.count
        core.loops.wait(until: { $0.draining >= n || $0.exited >= n })
        _ = Glibc.close(core.listenFD)
        core.inFlight.wait(until: { $0 == 0 }, deadline: .after(ms: core.options.drainTimeoutMs))
        core.workers.waitUntilIdle()
        core.phase.withLock { $0 = .closed }
        for l in loops { l.wake() }
        core.loops.wait(until: { $0.exited >= n })
    }

    deinit { stop() }

    /// A listening TCP socket for host:port, and the port it got.
    private static func listen(host: String, port: UInt16) throws -> (Int32, UInt16) {
        var storage = sockaddr_storage()
        let family = try resolve(host: host, port: port, into: &storage)
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw RuntimeError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let len = socklen_t(family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard rc == 0, Glibc.listen(fd, 1024) == 0 else {
            let e = errno
            _ = Glibc.close(fd)
            throw RuntimeError("cannot listen on \(host):\(port): \(String(cString: strerror(e)))")
        }
        var bound = sockaddr_storage()
        var blen = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &blen) } }
        let p: UInt16 = withUnsafePointer(to: &bound) { b in
            family == AF_INET6
                ? b.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
                : b.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        return (fd, p)
    }

    /// Fills `storage` with the socket address for host:port; returns its address family.
    private static func resolve(host: String, port: UInt16, into storage: inout sockaddr_storage) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        let name = host.isEmpty ? nil : host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let rc = getaddrinfo(name, String(port), &hints, &res)
        guard rc == 0, let first = res else {
            throw RuntimeError("cannot resolve \(host): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(res) }
        // Prefer IPv4 when a name resolves to both, as `localhost` does.
        var pick = first
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let cur = p {
            if cur.pointee.ai_family == AF_INET { pick = cur; break }
            p = cur.pointee.ai_next
        }
        withUnsafeMutableBytes(of: &storage) { dst in
            dst.copyMemory(from: UnsafeRawBufferPointer(start: pick.pointee.ai_addr, count: Int(pick.pointee.ai_addrlen)))
        }
        return pick.pointee.ai_family
    }
}

/// State shared by the event threads of one server.
final class ServerCore: Sendable {
    enum Phase: Sendable { case running, draining, closed }

    let handler: @Sendable (HTTPRequest) -> HTTPReply
    let options: HTTPServerOptions
    let listenFD: Int32
    let inFlight = Locked<Int>(0)
    let connections = Locked<Int>(0)
    let phase = Locked<Phase>(.running)
    /// Event loops that stopped listening, and loops whose thread returned.
    let loops = Locked<(draining: Int, exited: Int)>((0, 0))
    let workers: WorkerPool

    init(handler: @escaping @Sendable (HTTPRequest) -> HTTPReply, options: HTTPServerOptions, listenFD: Int32) {
        self.handler = handler
        self.options = options
        self.listenFD = listenFD
        self.workers = WorkerPool(maxThreads: max(options.maxWorkers, 1))
    }

    /// Counts a new connection; false when the limit is reached.
    func admitConnection() -> Bool {
        connections.withLock { n in
            guard n < max(options.connectionLimit, 1) else { return false }
            n += 1
            return true
        }
    }

    func connectionClosed() { connections.withLock { $0 -= 1 } }
    func loopDraining() { loops.withLock { $0.draining += 1 } }
    func loopExited() { loops.withLock { $0.exited += 1 } }
}

/// Threads for handler work that may block, started as the load needs them (up to
/// `maxThreads`) and kept; jobs beyond that wait their turn in order.
final class WorkerPool: @unchecked Sendable {
    private let cond = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var idle = 0
    private var threads = 0
    private var active = 0
    /// Threads blocked in `waitUntilIdle`.
    private var idleWaiters = 0
    private let maxThreads: Int

    init(maxThreads: Int) { self.maxThreads = maxThreads }

    /// Jobs running now, and jobs waiting for a thread.
    var running: Int {
        cond.lock()
        defer { cond.unlock() }
        return active + jobs.count - head
    }

    /// Blocks until no job runs and none waits (the end of a drain).
    func waitUntilIdle() {
        cond.lock()
        idleWaiters += 1
        while active + jobs.count - head > 0 { cond.wait() }
        idleWaiters -= 1
        cond.unlock()
    }

    func submit(_ job: @escaping @Sendable () -> Void) {
        cond.lock()
        jobs.append(job)
        // A signal could wake a drain waiter instead of an idle thread; with one waiting, wake all.
        if idle > 0 { if idleWaiters > 0 { cond.broadcast() } else { cond.signal() } }
        // More jobs waiting than threads about to take them: one more thread, within the bound.
        let spawn = jobs.count - head > idle && threads < maxThreads
        if spawn { threads += 1 }
        cond.unlock()
        if spawn { Thread.detachNewThread { [self] in run() } }
    }

    private func run() {
        cond.lock()
        while true {
            while head == jobs.count {
                idle += 1
                cond.wait()
                idle -= 1
            }
            let job = jobs[head]
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            }
            active += 1
            cond.unlock()
            job()
            cond.lock()
            active -= 1
            // One condition serves both idle threads and drain waiters: wake them all only when
            // someone waits for the pool to empty.
            if idleWaiters > 0 && active + jobs.count - head == 0 { cond.broadcast() }
        }
    }
}
