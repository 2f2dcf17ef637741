import CMicroHTTPD
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

/// An HTTP/1.1 server on libmicrohttpd that hands each complete request to a handler.
///
/// Threading: a few event threads (`options.eventThreads`, epoll) serve every connection. A
/// handler runs first on the event thread and either answers at once (`.now`: health checks,
/// refusals, anything that does not block) or hands back work that may block (`.later`: calls
/// to services). That work runs on a pool of worker threads while libmicrohttpd keeps the
/// connection suspended, so one slow request never holds up another connection, and a request
/// that needs no worker costs no thread switch.
public final class HTTPServer: Sendable {
    /// The port the server listens on (the kernel's pick when 0 was asked for).
    public let boundPort: UInt16
    private let core: ServerCore
    private let daemon: Locked<OpaquePointer?>

    /// A server whose every request may block: each runs on a worker thread.
    public convenience init(host: String, port: UInt16, options: HTTPServerOptions = HTTPServerOptions(),
                            handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws {
        try self.init(host: host, port: port, options: options, reply: { req in .later { handler(req) } })
    }

    public init(host: String, port: UInt16, options: HTTPServerOptions = HTTPServerOptions(),
                reply: @escaping @Sendable (HTTPRequest) -> HTTPReply) throws {
        var storage = sockaddr_storage()
        let isIPv6 = try HTTPServer.resolve(host: host, port: port, into: &storage)
        let core = ServerCore(handler: reply, options: options)
        var flags = UInt32(MHD_USE_INTERNAL_POLLING_THREAD.rawValue) | UInt32(MHD_USE_EPOLL.rawValue)
            | UInt32(MHD_ALLOW_SUSPEND_RESUME.rawValue)
            | UInt32(MHD_USE_ITC.rawValue)  // wakes an event thread when a worker resumes a connection; MHD_quiesce_daemon needs it too
        if isIPv6 { flags |= UInt32(MHD_USE_IPv6.rawValue) }
        if options.errorLog { flags |= UInt32(MHD_USE_ERROR_LOG.rawValue) }
        let cls = Unmanaged.passUnretained(core).toOpaque()
        let d = withUnsafePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                CMicroHTTPD_start(flags, sa, UInt32(max(options.connectionLimit, 1)), max(options.connectionMemoryLimitBytes, 4096),
                                  UInt32(max(options.connectionTimeoutSeconds, 0)), UInt32(max(options.eventThreads, 1)),
                                  accessHandler, cls, completedHandler, cls)
            }
        }
        guard let d else {
            throw RuntimeError("cannot listen on \(host):\(port): \(String(cString: strerror(errno)))")
        }
        self.core = core
        self.daemon = Locked(d)
        let bound = CMicroHTTPD_bound_port(d)
        self.boundPort = bound == 0 ? port : bound
    }

    /// Requests whose handling has started and whose response is not yet sent.
    public var inFlightRequests: Int { core.inFlight.current }

    /// Stops accepting connections, lets in-flight requests finish for up to
    /// `options.drainTimeoutMs`, then closes every connection. Idle keep-alive connections are
    /// told to close with their next response. Safe to call more than once.
    ///
    /// A handler still running after the drain delays the return of this call until it
    /// returns (libmicrohttpd must not be stopped while a connection is suspended); handlers
    /// are expected to honour their own deadlines.
    public func stop() {
        guard let d = daemon.withLock({ d -> OpaquePointer? in
            let old = d
            d = nil
            return old
        }) else { return }
        core.stopping.withLock { $0 = true }
        let listenFD = MHD_quiesce_daemon(d)
        let deadline = Deadline.after(ms: core.options.drainTimeoutMs)
        while core.inFlight.current > 0 && !deadline.hasPassed { usleep(5_000) }
        while core.suspended.current > 0 { usleep(5_000) }
        MHD_stop_daemon(d)
        if listenFD >= 0 { close(listenFD) }
    }

    deinit { stop() }

    /// Fills `storage` with the socket address for host:port; returns true for IPv6.
    private static func resolve(host: String, port: UInt16, into storage: inout sockaddr_storage) throws -> Bool {
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
        return pick.pointee.ai_family == AF_INET6
    }
}

/// State shared by the C callbacks of one server; lives as long as the daemon.
final class ServerCore: Sendable {
    let handler: @Sendable (HTTPRequest) -> HTTPReply
    let options: HTTPServerOptions
    let inFlight = Locked<Int>(0)
    /// Connections suspended while a worker runs their request.
    let suspended = Locked<Int>(0)
    let stopping = Locked<Bool>(false)
    let workers: WorkerPool

    init(handler: @escaping @Sendable (HTTPRequest) -> HTTPReply, options: HTTPServerOptions) {
        self.handler = handler
        self.options = options
        self.workers = WorkerPool(maxThreads: max(options.maxWorkers, 1))
    }
}

/// One request's accumulating body. Only the thread serving the connection touches it (a
/// worker only sets `queueFailed`, before it resumes the connection).
final class RequestContext: @unchecked Sendable {
    var body: [UInt8] = []
    /// A response is queued (or a worker is producing it): anything else libmicrohttpd hands
    /// over for this request is dropped.
    var answered = false
    /// The worker could not queue its response: the connection is closed when resumed.
    var queueFailed = false
}

/// A connection handed to a worker (libmicrohttpd allows queueing a response on a suspended
/// connection and resuming it from any thread).
private struct SuspendedConnection: @unchecked Sendable {
    let connection: OpaquePointer
}

/// libmicrohttpd calls this once when the headers are in, once per body chunk, and once more
/// when the body is complete.
private let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, _, uploadData, uploadSize, conCls in
    guard let cls, let connection, let conCls, let uploadSize else { return mhdNo }
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()

    guard let raw = conCls.pointee else {
        let ctx = RequestContext()
        conCls.pointee = Unmanaged.passRetained(ctx).toOpaque()
        core.inFlight.withLock { $0 += 1 }
        // Refusing here, before any body byte is read, makes libmicrohttpd skip the upload
        // (and not send 100 Continue) and close the connection after the answer.
        if let cl = MHD_lookup_connection_value(connection, MHD_ValueKind.HEADER_KIND, "Content-Length"),
           let declared = UInt64(String(cString: cl)), declared > UInt64(core.options.maxBodyBytes) {
            ctx.answered = true
            return queue(tooLarge(core, connection), on: connection, core: core, close: true)
        }
        return mhdYes
    }
    let ctx = Unmanaged<RequestContext>.fromOpaque(raw).takeUnretainedValue()

    let chunk = uploadSize.pointee
    if chunk > 0 {
        uploadSize.pointee = 0
        if ctx.answered { return mhdYes }
        if ctx.body.count + chunk > core.options.maxBodyBytes {
            // A chunked body that grows past the limit: answer now if libmicrohttpd lets us,
            // otherwise drop the connection rather than keep reading.
            ctx.answered = true
            ctx.body = []
            return queue(tooLarge(core, connection), on: connection, core: core, close: true)
        }
        if let uploadData {
            uploadData.withMemoryRebound(to: UInt8.self, capacity: chunk) { p in
                ctx.body.append(contentsOf: UnsafeBufferPointer(start: p, count: chunk))
            }
        }
        return mhdYes
    }
    if ctx.answered { return ctx.queueFailed ? mhdNo : mhdYes }
    ctx.answered = true

    let request = HTTPRequest(
        method: method.map { String(cString: $0) } ?? "GET",
        path: url.map { String(cString: $0) } ?? "/",
        query: collect(connection, MHD_ValueKind.GET_ARGUMENT_KIND, lowercase: false),
        lowercasedHeaders: collect(connection, MHD_ValueKind.HEADER_KIND, lowercase: true),
        body: ctx.body,
        remoteAddress: peerAddress(connection))
    ctx.body = []
    switch core.handler(request) {
    case .now(let response):
        return queue(response, on: connection, core: core, close: false)
    case .later(let work):
        // Once stopping has begun nothing new is suspended (libmicrohttpd must not be stopped
        // with a suspended connection): the last requests of keep-alive connections run here.
        if core.stopping.current { return queue(work(), on: connection, core: core, close: true) }
        MHD_suspend_connection(connection)
        core.suspended.withLock { $0 += 1 }
        let suspended = SuspendedConnection(connection: connection)
        core.workers.submit {
            let response = work()
            if queue(response, on: suspended.connection, core: core, close: false) == mhdNo { ctx.queueFailed = true }
            MHD_resume_connection(suspended.connection)
            core.suspended.withLock { $0 -= 1 }
        }
        return mhdYes
    }
}

/// Called after the response was sent, or when the request was abandoned; ends the request.
private let completedHandler: MHD_RequestCompletedCallback = { cls, _, conCls, _ in
    guard let cls, let conCls, let raw = conCls.pointee else { return }
    Unmanaged<RequestContext>.fromOpaque(raw).release()
    conCls.pointee = nil
    let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
    core.inFlight.withLock { $0 -= 1 }
}

private func tooLarge(_ core: ServerCore, _ connection: OpaquePointer?) -> HTTPResponse {
    // Answered before the application sees the request, so the request id is settled here:
    // the client's own when it is safe, a new one otherwise.
    var rid = ""
    if let v = MHD_lookup_connection_value(connection, MHD_ValueKind.HEADER_KIND, "X-Request-Id") {
        rid = String(cString: v)
    }
    if rid.isEmpty || rid.utf8.count > 128 || !rid.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x3A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }) {
        rid = ID.make("req")
    }
    return .json(413, "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"request body exceeds \(core.options.maxBodyBytes) bytes\",\"requestId\":\"\(rid)\"}}",
                 headers: [("X-Request-Id", rid)])
}

private func queue(_ response: HTTPResponse, on connection: OpaquePointer, core: ServerCore, close: Bool) -> MHD_Result {
    let r: OpaquePointer? = response.body.withUnsafeBytes { buf in
        MHD_create_response_from_buffer(buf.count, UnsafeMutableRawPointer(mutating: buf.baseAddress), MHD_ResponseMemoryMode.RESPMEM_MUST_COPY)
    }
    guard let r else { return mhdNo }
    defer { MHD_destroy_response(r) }
    var sawConnection = false
    for (name, value) in response.headers {
        // libmicrohttpd computes the length itself; a second one would corrupt the framing.
        if asciiCaseInsensitiveEqual(name, "content-length") || asciiCaseInsensitiveEqual(name, "transfer-encoding") { continue }
        if asciiCaseInsensitiveEqual(name, "connection") { sawConnection = true }
        _ = MHD_add_response_header(r, name, value)
    }
    if !sawConnection && (close || !core.options.keepAlive || core.stopping.current) {
        _ = MHD_add_response_header(r, "Connection", "close")
    }
    return MHD_queue_response(connection, UInt32(clamping: response.status), r)
}

/// Header names are ASCII tokens (RFC 9110), so case is folded byte by byte.
private func asciiLowercased(_ p: UnsafePointer<CChar>) -> String {
    let n = strlen(p)
    return String(unsafeUninitializedCapacity: n) { buf in
        for i in 0..<n {
            let c = UInt8(bitPattern: p[i])
            buf[i] = c >= 65 && c <= 90 ? c | 0x20 : c
        }
        return n
    }
}

/// Whether `name` equals the lower-case ASCII `lower`, ignoring ASCII case.
private func asciiCaseInsensitiveEqual(_ name: String, _ lower: StaticString) -> Bool {
    guard name.utf8.count == lower.utf8CodeUnitCount else { return false }
    let l = UnsafeBufferPointer(start: lower.utf8Start, count: lower.utf8CodeUnitCount)
    for (i, c) in name.utf8.enumerated() where (c >= 65 && c <= 90 ? c | 0x20 : c) != l[i] { return false }
    return true
}

/// Copies libmicrohttpd's key/value pairs of one kind out into a dictionary.
private func collect(_ connection: OpaquePointer, _ kind: MHD_ValueKind, lowercase: Bool) -> [String: String] {
    final class Box {
        var values: [String: String] = [:]
        let lowercase: Bool
        init(lowercase: Bool) { self.lowercase = lowercase }
    }
    let box = Box(lowercase: lowercase)
    withExtendedLifetime(box) {
        _ = MHD_get_connection_values(connection, kind, { cls, _, key, value in
            guard let cls, let key else { return mhdYes }
            let box = Unmanaged<Box>.fromOpaque(cls).takeUnretainedValue()
            let k = box.lowercase ? asciiLowercased(key) : String(cString: key)
            let v = value.map { String(cString: $0) } ?? ""
            if box.lowercase, let old = box.values[k] {
                box.values[k] = old + (k == "cookie" ? "; " : ", ") + v
            } else {
                box.values[k] = v
            }
            return mhdYes
        }, Unmanaged.passUnretained(box).toOpaque())
    }
    return box.values
}

private func peerAddress(_ connection: OpaquePointer) -> String {
    guard let sa = CMicroHTTPD_client_address(connection) else { return "" }
    var host = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let ok: Bool
    switch Int32(sa.pointee.sa_family) {
    case AF_INET:
        ok = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
            withUnsafePointer(to: sin.pointee.sin_addr) { inet_ntop(AF_INET, $0, &host, socklen_t(host.count)) != nil }
        }
    case AF_INET6:
        ok = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
            withUnsafePointer(to: sin6.pointee.sin6_addr) { inet_ntop(AF_INET6, $0, &host, socklen_t(host.count)) != nil }
        }
    default:
        ok = false
    }
    guard ok else { return "" }
    return String(cString: host)
}

private let mhdYes = MHD_Result.YES
private let mhdNo = MHD_Result.NO

/// Threads for handler work that may block, started as the load needs them (up to
/// `maxThreads`) and kept; jobs beyond that wait their turn in order.
final class WorkerPool: @unchecked Sendable {
    private let cond = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var head = 0
    private var idle = 0
    private var threads = 0
    private let maxThreads: Int

    init(maxThreads: Int) { self.maxThreads = maxThreads }

    func submit(_ job: @escaping @Sendable () -> Void) {
        cond.lock()
        jobs.append(job)
        if idle > 0 { cond.signal() }
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
            cond.unlock()
            job()
            cond.lock()
        }
    }
}
