import Foundation
import Dispatch
import JSON
import Runtime

/// Calls the methods of one service, spread over all of its live instances
/// (`<run dir>/<service>-<n>.sock`): a small pool of pipelined connections per instance, the
/// instance with the fewest calls in flight first, new and dead instances noticed without a
/// restart. A call that was never written may go to another instance; a written one is never
/// resent. No call waits past its context's deadline. A request whose line would exceed the
/// services' line limit is refused here, before anything is written (-32600 `payload_too_large`).
public final class RPCClient: Sendable {
    public let service: String
    public let runDir: String
    private let poolSize: Int
    /// The longest request line sent; the services' own limit (both come from `Config`).
    public let maxLineBytes: Int
    private let endpoints = Locked<(scannedAt: UInt64, scanning: Bool, list: [String: Endpoint], rotation: UInt64)>((0, false, [:], 0))
    private let rescanNanos: UInt64 = 500_000_000

    public init(runDir: String, service: String, poolSize: Int = 2, maxLineBytes: Int = Config.fromEnvironment().rpcMaxLineBytes) {
        self.runDir = runDir
        self.service = service
        self.poolSize = poolSize
        self.maxLineBytes = maxLineBytes
    }

    /// Socket paths of the instances found now.
    public func instancePaths() -> [String] {
        refresh(force: true)
        return endpoints.current.list.keys.sorted()
    }

    private func refresh(force: Bool = false) {
        let now = Clock.coarseMonotonicNanos()
        // One thread rescans the directory at a time; the others go on with the list they have.
        let due = endpoints.withLock { st -> Bool in
            // Until the first scan has filled the list, every caller scans (they would find nothing otherwise).
            if st.scannedAt == 0 { return true }
            if st.scanning { return false }
            if force || Clock.elapsed(from: st.scannedAt, to: now) > rescanNanos {
                st.scanning = true
                return true
            }
            return false
        }
        guard due else { return }
        let prefix = service + "-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runDir)) ?? []
        let paths = Set(names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".sock") && Int($0.dropFirst(prefix.count).dropLast(5)) != nil }
            .map { "\(runDir)/\($0)" })
        let gone: [Endpoint] = endpoints.withLock { st in
            st.scannedAt = Clock.monotonicNanos()
            st.scanning = false
            var removed: [Endpoint] = []
            for (p, e) in st.list where !paths.contains(p) {
                removed.append(e)
                st.list[p] = nil
            }
            for p in paths where st.list[p] == nil { st.list[p] = Endpoint(path: p, poolSize: poolSize, maxLineBytes: maxLineBytes) }
            return removed
        }
        for e in gone { e.closeAll() }
    }

    private func pick(excluding tried: [Endpoint]) -> Endpoint? {
        refresh()
        let (list, rotation) = endpoints.withLock { st in
            st.rotation &+= 1
            return (st.list, st.rotation)
        }
        // One instance and nothing tried yet: the choice below would make it anyway.
        if list.count == 1 && tried.isEmpty { return list.first!.value }
        let now = Clock.monotonicNanos()
        // Least in flight among the instances believed up (all believed down: try anyway rather
        // than fail at once); ties go round-robin. The counts move while we choose: a snapshot.
        var best: Endpoint?
        var bestLoad = Int.max
        var bestUp = false
        var ties = 0
        let turn = Int(truncatingIfNeeded: rotation)
        for e in list.values where !tried.contains(where: { $0 === e }) {
            let up = e.isUp(now: now)
            let load = e.inFlight
            if best == nil || (up && !bestUp) || (up == bestUp && load < bestLoad) {
                best = e
                bestLoad = load
                bestUp = up
                ties = 1
            } else if up == bestUp && load == bestLoad {
                ties += 1
                if turn % ties == 0 { best = e }
            }
        }
        return best
    }

    /// Calls `method` with by-name `params`; `ctx` travels as `params.ctx`.
    public func call(_ method: String, _ params: JSON = .object([:]), ctx: RPCContext) throws(RPCError) -> JSON {
        var tried: [Endpoint] = []
        while true {
            if ctx.deadline.hasPassed { throw RPCError.deadlineExceeded() }
            guard let ep = pick(excluding: tried) else {
                throw RPCError.unavailable("No live instance of \(service)")
            }
            tried.append(ep)
            do throws(CallFailure) {
                return try ep.call(method, params, ctx: ctx)
            } catch {
                switch error {
                case .notWritten:
                    ep.markDown()
                    continue
                case .rpc(let e): throw e
                }
            }
        }
    }

    /// A pipelined call that does not block: `completion` runs with the answer on a reader
    /// thread (keep it short). Like `call`, it goes to the least busy live instance and is only
    /// tried elsewhere when nothing was written. A live server always answers (an expired
    /// deadline is answered -32054); a lost connection completes it with -32050.
    public func callAsync(_ method: String, _ params: JSON = .object([:]), ctx: RPCContext,
                          completion: @escaping @Sendable (Result<JSON, RPCError>) -> Void) {
        var tried: [Endpoint] = []
        while true {
            guard let ep = pick(excluding: tried) else {
                completion(.failure(RPCError.unavailable("No live instance of \(service)")))
                return
            }
            tried.append(ep)
            do throws(CallFailure) {
                try ep.callAsync(method, params, ctx: ctx, completion: completion)
                return
            } catch {
                switch error {
                case .notWritten:
                    ep.markDown()
                    continue
                case .rpc(let e):
                    completion(.failure(e))
                    return
                }
            }
        }
    }

    /// Calls one specific instance (health checks and metrics scrapes address each instance).
    public func call(instancePath: String, _ method: String, _ params: JSON = .object([:]), ctx: RPCContext) throws(RPCError) -> JSON {
        refresh()
        let ep = endpoints.withLock { st -> Endpoint in
            if let e = st.list[instancePath] { return e }
            let e = Endpoint(path: instancePath, poolSize: poolSize, maxLineBytes: maxLineBytes)
            st.list[instancePath] = e
            return e
        }
        do throws(CallFailure) {
            return try ep.call(method, params, ctx: ctx)
        } catch {
            switch error {
            case .notWritten:
                ep.markDown()
                throw RPCError.unavailable("\(service) instance is not reachable")
            case .rpc(let e): throw e
            }
        }
    }

    /// Typed call: decodes the result into `R`.
    public func call<R: Decodable>(_ method: String, _ params: JSON = .object([:]), ctx: RPCContext, as: R.Type) throws -> R {
        let j = try call(method, params, ctx: ctx)
        return try j.decode(R.self)
    }

    public func closeAll() {
        for e in endpoints.current.list.values { e.closeAll() }
    }
}

enum CallFailure: Error {
    case notWritten
    case rpc(RPCError)
}

/// One instance: its connections and whether it is believed down (with backoff).
final class Endpoint: Sendable {
    let path: String
    let poolSize: Int
    let maxLineBytes: Int
    private let st = Locked<(conns: [ClientConnection], downUntil: UInt64, backoffMs: Int, connecting: Int)>(([], 0, 0, 0))

    init(path: String, poolSize: Int, maxLineBytes: Int) {
        self.path = path
        self.poolSize = poolSize
        self.maxLineBytes = maxLineBytes
    }

    func isUp(now: UInt64) -> Bool { st.current.downUntil <= now }

    var inFlight: Int { st.current.conns.reduce(0) { $0 + $1.pendingCount } }

    func markDown() {
        st.withLock { s in
            s.backoffMs = min(max(s.backoffMs * 2, 50), 2000)
            s.downUntil = Clock.monotonicNanos() + UInt64(s.backoffMs) * 1_000_000
            s.conns.removeAll { !$0.isAlive }
        }
    }

    func closeAll() {
        let cs = st.withLock { s -> [ClientConnection] in
            defer { s.conns = [] }
            return s.conns
        }
        for c in cs { c.shutdown() }
    }

    private func connection() throws(CallFailure) -> ClientConnection {
        let existing: ClientConnection? = st.withLock { s in
            // The live connection with the fewest calls in flight; dead ones are dropped.
            var best: ClientConnection?
            var bestLoad = Int.max
            var anyDead = false
            for c in s.conns {
                guard let load = c.liveLoad else {
                    anyDead = true
                    continue
                }
                if load < bestLoad {
                    best = c
                    bestLoad = load
                }
            }
            if anyDead { s.conns.removeAll { !$0.isAlive } }
            if let b = best, bestLoad == 0 || s.conns.count + s.connecting >= poolSize { return b }
            s.connecting += 1
            return nil
        }
        if let e = existing { return e }
        defer { st.withLock { $0.connecting -= 1 } }
        let fd: Int32
        do { fd = try UnixSocket.connect(path) } catch { throw .notWritten }
        let c = ClientConnection(fd: fd, maxLineBytes: maxLineBytes)
        st.withLock { s in
            s.conns.append(c)
            s.backoffMs = 0
            s.downUntil = 0
        }
        return c
    }

    func call(_ method: String, _ params: JSON, ctx: RPCContext) throws(CallFailure) -> JSON {
        let c = try connection()
        return try c.call(method, params, ctx: ctx)
    }

    func callAsync(_ method: String, _ params: JSON, ctx: RPCContext, completion: @escaping @Sendable (Result<JSON, RPCError>) -> Void) throws(CallFailure) {
        let c = try connection()
        try c.callAsync(method, params, ctx: ctx, completion: completion)
    }
}

/// A pipelined connection: many calls in flight, answers matched by id on a reader thread.
final class ClientConnection: @unchecked Sendable {
    final class Waiter: @unchecked Sendable {
        let sem = DispatchSemaphore(value: 0)
        var result: Result<JSON, RPCError>?
        /// Set for pipelined calls: run on the reader thread instead of waking a waiting caller.
        let completion: (@Sendable (Result<JSON, RPCError>) -> Void)?
        init(completion: (@Sendable (Result<JSON, RPCError>) -> Void)? = nil) { self.completion = completion }

        func finish(_ r: Result<JSON, RPCError>) {
            if let c = completion { c(r) } else {
                result = r
                sem.signal()
            }
        }
    }

    private let fd: Int32
    /// Longest request line (without its newline) this connection sends.
    let maxLineBytes: Int
    private let writeLock = NSLock()
    /// Set under `writeLock` when the connection is declared dead, before the reader closes
    /// `fd`: no write after that, neither of a call already failed nor to a descriptor number
    /// that the process may have reused.
    private var writesRefused = false
    private let st = Locked<(nextId: Int64, pending: [Int64: Waiter], alive: Bool)>((1, [:], true))

    init(fd: Int32, maxLineBytes: Int) {
        self.fd = fd
        self.maxLineBytes = maxLineBytes
        UnixSocket.setTimeout(fd, option: SO_SNDTIMEO, ms: 5000)
        // A failed batch write completes every pending call with -32050.
        out = WriteCoalescer { [unowned self] in if !self.writeLocked($0).ok { self.markDead() } }
        Thread.detachNewThread { [self] in readLoop() }
    }

    var isAlive: Bool { st.current.alive }
    var pendingCount: Int { st.current.pending.count }
    /// Calls in flight, or nil when the connection is dead: one look under the lock.
    var liveLoad: Int? { st.withLock { $0.alive ? $0.pending.count : nil } }

    func shutdown() {
        Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    private func register(_ w: Waiter) -> Int64? {
        st.withLock { s in
            guard s.alive else { return nil }
            let i = s.nextId
            s.nextId += 1
            s.pending[i] = w
            return i
        }
    }

    private static func encode(id: Int64, _ method: String, _ params: JSON, _ ctx: RPCContext) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(192)
        encode(id: id, method, params, ctx, into: &line)
        return line
    }

    /// Appends the request line (with its newline) to `line`.
    private static func encode(id: Int64, _ method: String, _ params: JSON, _ ctx: RPCContext, into line: inout [UInt8]) {
        line.append(literal: #"{"jsonrpc":"2.0","id":"#)
        JSON.writeInt(id, to: &line)
        line.append(literal: #","method":"#)
        JSON.writeString(method, to: &line)
        line.append(literal: #","params":{"#)
        if case .object(let p) = params {
            for (k, v) in p where k != "ctx" {
                JSON.writeString(k, to: &line)
                line.append(UInt8(ascii: ":"))
                v.write(to: &line, sortKeys: false)
                line.append(UInt8(ascii: ","))
            }
        }
        line.append(literal: #""ctx":"#)
        ctx.write(to: &line)
        line.append(literal: "}}\n")
    }

    /// Writes all of `bytes` under the write lock; says whether it worked and how much went out.
    private func writeLocked(_ bytes: [UInt8]) -> (ok: Bool, written: Int) {
        writeLock.lock()
        defer { writeLock.unlock() }
        guard !writesRefused else { return (false, 0) }
        let sent = bytes.withUnsafeBytes { UnixSocket.send(fd, $0) }
        return (sent == bytes.count, sent)
    }

    /// Registers `w` and writes the request. Returns its id; throws when nothing could be written.
    private func submit(_ method: String, _ params: JSON, ctx: RPCContext, _ w: Waiter) throws(CallFailure) -> Int64 {
        guard let id = register(w) else { throw .notWritten }
        let line = Self.encode(id: id, method, params, ctx)
        if line.count - 1 > maxLineBytes {
            // Refused before sending: a server would only skip it, and this call alone fails.
            _ = st.withLock { $0.pending.removeValue(forKey: id) }
            throw .rpc(RPCError.lineTooLong(limit: maxLineBytes))
        }
        let (ok, written) = writeLocked(line)
        if !ok {
            _ = st.withLock { $0.pending.removeValue(forKey: id) }
            markDead()
            if written == 0 { throw .notWritten }
            throw .rpc(RPCError.unavailable("Connection to service lost while sending"))
        }
        return id
    }

    // A failed batch write completes every pending call with -32050.
    private var out: WriteCoalescer!  // set at the end of init; never changed after

    /// A pipelined call: `completion` runs on the connection's reader thread with the answer,
    /// or with -32050 if the connection is lost first. Requests queued while another thread is
    /// writing, or while the reader delivers answers, leave together in one system call.
    func callAsync(_ method: String, _ params: JSON, ctx: RPCContext, completion: @escaping @Sendable (Result<JSON, RPCError>) -> Void) throws(CallFailure) {
        guard let id = register(Waiter(completion: completion)) else { throw .notWritten }
        // Encoded straight into the outgoing buffer: no buffer of its own per call.
        var tooLong = false
        out.enqueue { buf in
            let mark = buf.count
            Self.encode(id: id, method, params, ctx, into: &buf)
            if buf.count - mark - 1 > maxLineBytes {
                buf.removeSubrange(mark...)
                tooLong = true
            }
        }
        if tooLong {
            _ = st.withLock { $0.pending.removeValue(forKey: id) }
            throw .rpc(RPCError.lineTooLong(limit: maxLineBytes))
        }
    }

    func call(_ method: String, _ params: JSON, ctx: RPCContext) throws(CallFailure) -> JSON {
        let w = Waiter()
        let id = try submit(method, params, ctx: ctx, w)
        let r = w.sem.wait(timeout: .now() + .nanoseconds(Int(min(ctx.deadline.remainingNanos, UInt64(Int.max)))))
        if r == .timedOut {
            let stillPending = st.withLock { $0.pending.removeValue(forKey: id) != nil }
            if stillPending { throw .rpc(RPCError.deadlineExceeded()) }
            w.sem.wait()  // the answer arrived in the same instant
        }
        switch w.result! {
        case .success(let j): return j
        case .failure(let e): throw .rpc(e)
        }
    }

    private func markDead() {
        // Nothing more leaves: a caller told "connection lost" must not see its call run later.
        writeLock.lock()
        writesRefused = true
        writeLock.unlock()
        let waiters = st.withLock { s -> [Waiter] in
            s.alive = false
            defer { s.pending = [:] }
            return Array(s.pending.values)
        }
        for w in waiters { w.finish(.failure(RPCError.unavailable("Connection to service lost"))) }
    }

    private func readLoop() {
        var lb = LineBuffer(maxLine: 64 << 20)
        while true {
            let n = lb.read(from: fd)
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                break
            }
            // Requests sent while this chunk's answers are delivered leave together afterwards.
            out.hold()
            while let ev = lb.nextLine({ b in Answer(line: b) }) {
                switch ev {
                case .line(let answer?): deliver(answer)
                case .line(nil): continue
                case .tooLong(let prefix):
                    // An answer too large to take fails its own call (a server writes the id
                    // first), not the connection.
                    guard let id = Dispatcher.leadingId(prefix)?.intValue else { continue }
                    deliver(Answer(id: id, error: RPCError.internalError().json))
                }
            }
            out.release()
        }
        markDead()
        writeLock.lock()
        Glibc.close(fd)
        writeLock.unlock()
    }

    /// An answer as read off the wire; nil for a line that is not one (it is dropped: a
    /// server never sends one, and its caller still gets its deadline).
    struct Answer {
        var id: Int64?
        var result: JSON?
        var error: JSON?

        init?(line: UnsafeBufferPointer<UInt8>) {
            var a = Answer()
            let ok = try? JSONParser.readObject(line, maxDepth: 512) { key, p throws(JSONParseError) in
                switch key {
                case "id": a.id = try p.readValue().intValue
                case "result": a.result = try p.readValue()
                case "error": a.error = try p.readValue()
                default: _ = try p.readValue()
                }
            }
            guard ok == true else { return nil }
            self = a
        }

        init(id: Int64, error: JSON) {
            self.id = id
            self.error = error
        }

        private init() {}
    }

    /// An answer without a pending id fails nothing. That includes an error with id null, sent
    /// for a line the server could not tie to a request: the connection stays up for the calls
    /// in flight on it, and the call the line belonged to (if any) ends at its deadline. This
    /// client never causes one: every line it writes starts with its id and fits the limit.
    private func deliver(_ a: Answer) {
        guard let id = a.id, let w = st.withLock({ $0.pending.removeValue(forKey: id) }) else { return }
        if let e = a.error, let err = RPCError(json: e) {
            w.finish(.failure(err))
        } else {
            w.finish(.success(a.result ?? .null))
        }
    }
}
