import Foundation
import Dispatch
import JSON
import Runtime

/// Limits that keep one client from holding a service's resources.
public struct ServerLimits: Sendable {
    /// Longest accepted line; a longer one is skipped (never held whole) and answered -32600
    /// `payload_too_large`, with its id when the line's beginning names it. The connection stays up.
    public var maxLineBytes = Config.rpcMaxLineBytes(httpMaxBodyBytes: Config.defaultHTTPMaxBodyBytes)
    /// Requests one connection may have running at once; beyond it the server stops reading
    /// from that connection (backpressure through the socket buffer).
    public var maxInFlightPerConnection = 256
    /// A connection with nothing in flight that sends nothing for this long is closed.
    public var idleTimeoutMs = 300_000
    /// A client that does not read its answers for this long is disconnected.
    public var sendTimeoutMs = 10_000
    /// How long SIGTERM waits for in-flight calls.
    public var drainMs = 10_000
    public init() {}
}

/// Serves a `Dispatcher` on a Unix socket (one thread per connection for reading, handlers on a
/// concurrent queue, answers written in completion order) or on stdin/stdout.
public final class RPCServer: Sendable {
    public let dispatcher: Dispatcher
    public let limits: ServerLimits
    private let log: Logger
    private let handlers = DispatchQueue(label: "rpc.handlers", attributes: .concurrent)
    private let state = Locked<State>(State())
    private let inFlight = DispatchGroup()

    struct State {
        var listenFD: Int32 = -1
        var path: String?
        var connections: [ObjectIdentifier: RPCConnection] = [:]
        var stopped = false
    }

    public init(dispatcher: Dispatcher, limits: ServerLimits = ServerLimits(), log: Logger) {
        self.dispatcher = dispatcher
        self.limits = limits
        self.log = log
    }

    /// Binds `path` (mode 0660, directory 0750) and starts accepting on a thread of its own.
    /// A leftover socket of a crashed process is replaced; a live one is never stolen.
    public func listen(path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        try Config.makeDirectory(dir, mode: 0o750)
        if FileManager.default.fileExists(atPath: path) {
            if let fd = try? UnixSocket.connect(path) {
                close(fd)
                throw RuntimeError("another live process serves \(path); refusing to take its socket")
            }
            unlink(path)
        }
        var addr = try UnixSocket.address(path)
        let fd = try syscall("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        // Bind under a restrictive umask so the socket never exists with looser permissions.
        let old = umask(0o117)
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        if r != 0 {
            let e = Errno(code: errno, call: "bind \(path)")
            close(fd)
            throw e
        }
        chmod(path, 0o660)
        try syscall("listen") { Glibc.listen(fd, 512) }
        state.withLock {
            $0.listenFD = fd
            $0.path = path
        }
        Thread.detachNewThread { [self] in acceptLoop(fd) }
        log.info("listening", ["socket": .string(path)])
    }

    private func acceptLoop(_ lfd: Int32) {
        while true {
            let fd = accept(lfd, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if errno == EMFILE || errno == ENFILE { usleep(50_000); continue }
                return
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            if state.current.stopped {
                close(fd)
                continue
            }
            UnixSocket.setTimeout(fd, option: SO_RCVTIMEO, ms: min(limits.idleTimeoutMs, 1000))
            UnixSocket.setTimeout(fd, option: SO_SNDTIMEO, ms: limits.sendTimeoutMs)
            let c = RPCConnection(readFD: fd, writeFD: fd, isSocket: true, server: self)
            state.withLock { $0.connections[ObjectIdentifier(c)] = c }
            Thread.detachNewThread { [self] in
                c.run()
                _ = state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(c)) }
            }
        }
    }

    /// Serves one session on stdin/stdout until stdin closes; blocks the caller.
    public func serveStdio() {
        let c = RPCConnection(readFD: 0, writeFD: 1, isSocket: false, server: self)
        c.run()
    }

    /// Stops accepting, answers new calls with -32050, waits for in-flight calls (bounded by
    /// `limits.drainMs`), then closes every connection.
    public func stop() {
        let (lfd, path, conns) = state.withLock { s -> (Int32, String?, [RPCConnection]) in
            s.stopped = true
            return (s.listenFD, s.path, Array(s.connections.values))
        }
        dispatcher.startDraining()
        if lfd >= 0 {
            shutdown(lfd, Int32(SHUT_RDWR))
            close(lfd)
        }
        if let p = path { unlink(p) }
        _ = inFlight.wait(timeout: .now() + .milliseconds(limits.drainMs))
        for c in conns { c.close() }
    }

    // Called by connections.
    func dispatch(_ message: Dispatcher.Message, on c: RPCConnection) {
        inFlight.enter()
        let call: @Sendable () -> Void = { [self] in
            var line: [UInt8] = []
            if dispatcher.handle(message: message, into: &line) {
                line.append(0x0A)
                c.send(line: line)
            }
            c.finished()
            inFlight.leave()
        }
        if case .single(let r) = message, r.entry?.method.ownThread == true {
            Thread.detachNewThread(call)
        } else {
            handlers.async(execute: call)
        }
    }

    func logDebug(_ m: String, _ meta: [String: JSON] = [:]) { log.debug(m, meta) }
}

/// One client session: reads lines, hands them to the server, writes answers under a lock.
final class RPCConnection: @unchecked Sendable {
    let readFD: Int32
    let writeFD: Int32
    let isSocket: Bool
    unowned let server: RPCServer
    private let slots: DispatchSemaphore
    private let writeLock = NSLock()
    private let st = Locked<(inFlight: Int, closed: Bool)>((0, false))

    init(readFD: Int32, writeFD: Int32, isSocket: Bool, server: RPCServer) {
        self.readFD = readFD
        self.writeFD = writeFD
        self.isSocket = isSocket
        self.server = server
        slots = DispatchSemaphore(value: server.limits.maxInFlightPerConnection)
        out = WriteCoalescer { [unowned self] in self.write($0) }
    }

    func run() {
        var lb = LineBuffer(maxLine: server.limits.maxLineBytes)
        let idleNanos = UInt64(server.limits.idleTimeoutMs) * 1_000_000
        // Only this thread reads it.
        var lastActivity = Clock.monotonicNanos()
        readLoop: while true {
            let n = lb.read(from: readFD)
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    let (busy, closed) = st.withLock { ($0.inFlight > 0, $0.closed) }
                    if closed { break }
                    if !busy && Clock.elapsed(from: lastActivity, to: Clock.monotonicNanos()) > idleNanos { break }
                    continue
                }
                break
            }
            lastActivity = Clock.monotonicNanos()
            // Answers produced on this thread (inline methods, unparsable lines) leave together,
            // in one write per chunk read.
            var answers: [UInt8] = []
            defer { if !answers.isEmpty { out.enqueue(answers) } }
            func answer(_ r: [UInt8]?) {
                guard let r else { return }
                answers.append(contentsOf: r)
                answers.append(0x0A)
            }
            while let ev = lb.nextLine({ l -> Dispatcher.Incoming? in
                l.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) ? nil : server.dispatcher.parse(line: l)
            }) {
                switch ev {
                case .tooLong(let prefix):
                    // Only this request fails: the rest of the line is skipped as it arrives, and
                    // the connection (shared by other callers' requests) stays up.
                    answer(Dispatcher.tooLongAnswer(prefix: prefix, limit: server.limits.maxLineBytes))
                case .line(nil):
                    continue
                case .line(.answered(let r)?):
                    answer(r)
                case .line(.message(let m, inline: true)?):
                    if server.dispatcher.handle(message: m, into: &answers) { answers.append(0x0A) }
                case .line(.message(let m, inline: false)?):
                    slots.wait()
                    let closed = st.withLock { s -> Bool in
                        s.inFlight += 1
                        return s.closed
                    }
                    if closed { finished(); break readLoop }
                    server.dispatch(m, on: self)
                }
            }
        }
        // Half-closed or done: answer what is in flight, then close.
        let limit = server.limits.drainMs
        st.wait(until: { $0.inFlight == 0 || $0.closed }, deadline: .after(ms: limit))
        closeDescriptor()
    }

    func finished() {
        st.withLock { $0.inFlight -= 1 }
        slots.signal()
    }

    /// Queues an answer; whichever thread finds no flush in progress writes everything queued,
    /// so under load many answers leave in one system call.
    func send(line: [UInt8]) {
        out.enqueue(line)
    }

    private func write(_ b: [UInt8]) {
        writeLock.lock()
        defer { writeLock.unlock() }
        if writeClosed { return }
        let ok = b.withUnsafeBytes { isSocket ? UnixSocket.writeAll(writeFD, $0) : UnixSocket.writeAllFD(writeFD, $0) }
        if !ok {
            // A client that does not read its answers loses its connection.
            writeClosed = true
            st.withLock { $0.closed = true }
            if isSocket { shutdown(readFD, Int32(SHUT_RDWR)) }
        }
    }

    private var out: WriteCoalescer!  // set at the end of init; never changed after

    /// Asks the connection to end (from any thread); the reader thread closes the descriptor.
    func close() {
        writeLock.lock()
        defer { writeLock.unlock() }
        writeClosed = true
        st.withLock { $0.closed = true }
        if isSocket && !fdClosed { shutdown(readFD, Int32(SHUT_RDWR)) }
    }

    private func closeDescriptor() {
        writeLock.lock()
        defer { writeLock.unlock() }
        writeClosed = true
        st.withLock { $0.closed = true }
        if isSocket && !fdClosed {
            fdClosed = true
            Glibc.close(readFD)
        }
    }
    private var fdClosed = false
    /// `st.closed`, as seen under `writeLock` (checked before every write without a second lock).
    private var writeClosed = false
}
