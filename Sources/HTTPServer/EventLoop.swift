import CHTTP
import Foundation
import Runtime

/// One event thread: an epoll set with the shared listening socket and the connections this
/// thread accepted. Everything about a connection happens here; workers hand their responses
/// back through `mailbox`.
final class EventLoop: @unchecked Sendable {
    private let core: ServerCore
    private let epfd: Int32
    private let wakeFD: Int32
    private var conns: [UInt64: Connection] = [:]
    private var nextToken: UInt64 = 2
    private let mailbox = Locked<[(Connection, HTTPResponse)]>([])
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    private var draining = false
    private var lastSweep: UInt64 = 0
    private var dateSecond = -1
    private var dateValue = ""

    private static let listenToken: UInt64 = 0
    private static let wakeToken: UInt64 = 1

    init(core: ServerCore) throws {
        self.core = core
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = chttp_eventfd()
        guard epfd >= 0, wakeFD >= 0 else { throw RuntimeError("epoll: \(String(cString: strerror(errno)))") }
        _ = chttp_epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFD, EPOLLIN.rawValue, Self.wakeToken)
        // Every loop waits on the listening socket; EPOLLEXCLUSIVE wakes one of them per connection.
        _ = chttp_epoll_ctl(epfd, EPOLL_CTL_ADD, core.listenFD, EPOLLIN.rawValue | UInt32(1 << 28), Self.listenToken)
    }

    func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Called from a worker: the response to `c`'s current request.
    func deliver(_ c: Connection, _ response: HTTPResponse) {
        mailbox.withLock { $0.append((c, response)) }
        wake()
    }

    func run() {
        var tokens = [UInt64](repeating: 0, count: 256)
        var events = [UInt32](repeating: 0, count: 256)
        while core.phase.current != .closed {
            let n = chttp_epoll_wait(epfd, &tokens, &events, 256, 250)
            if n < 0 && errno != EINTR { break }
            for i in 0..<max(Int(n), 0) {
                switch tokens[i] {
                case Self.listenToken: acceptAll()
                case Self.wakeToken:
                    var v: UInt64 = 0
                    _ = read(wakeFD, &v, 8)
                    drainMailbox()
                default:
                    guard let c = conns[tokens[i]] else { continue }
                    let ev = events[i]
                    if ev & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 && ev & EPOLLIN.rawValue == 0 {
                        close(c)
                        continue
                    }
                    if ev & EPOLLOUT.rawValue != 0 && c.outOffset < c.out.count { flush(c) }
                    if ev & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue) != 0 { c.readable = true }
                    pump(c)
                }
            }
            if core.phase.current != .running && !draining { beginDrain() }
            let now = Clock.monotonicNanos()
            if now &- lastSweep > 1_000_000_000 {
                lastSweep = now
                sweep(now)
            }
        }
        for c in Array(conns.values) { close(c) }
        core.loopExited()
    }

    // A worker may still hold this loop to deliver to it after `run` returned: the descriptors
    // live as long as the loop, so a late wake-up never writes to a reused descriptor.
    deinit {
        _ = Glibc.close(epfd)
        _ = Glibc.close(wakeFD)
        readBuffer.deallocate()
    }

    // MARK: accepting

    private func acceptAll() {
        while core.phase.current == .running {
            var addr = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { chttp_accept(core.listenFD, $0, &len) }
            }
            if fd < 0 { return }  // EAGAIN, or an error the next wake-up retries
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if !core.admitConnection() {
                // Over the limit: one short answer, best effort, and the connection closed.
                let r = serialize(HTTPRefusal.busy.response(requestId: RequestID.accept(nil)), head: false, close: true)
                _ = r.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                _ = Glibc.close(fd)
                continue
            }
            let token = nextToken
            nextToken += 1
            let c = Connection(fd: fd, token: token, peer: Self.peerAddress(&addr), limits: core.options, settings: parserSettings)
            conns[token] = c
            let ev = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
            if chttp_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, ev, token) != 0 {
                close(c)
                continue
            }
            pump(c)
        }
    }

    private static func peerAddress(_ sa: inout sockaddr_storage) -> String {
        var host = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok: Bool
        switch Int32(sa.ss_family) {
        case AF_INET:
            ok = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                withUnsafePointer(to: sin.pointee.sin_addr) { inet_ntop(AF_INET, $0, &host, socklen_t(host.count)) != nil }
            } }
        case AF_INET6:
            ok = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                withUnsafePointer(to: sin6.pointee.sin6_addr) { inet_ntop(AF_INET6, $0, &host, socklen_t(host.count)) != nil }
            } }
        default:
            ok = false
        }
        return ok ? text(host) : ""
    }

    // MARK: reading and dispatching

    /// Reads and serves requests until the connection waits: for input, for a worker, or for
    /// the socket to take more output.
    private func pump(_ c: Connection) {
        if c.lingerUntilNanos != 0 { return discard(c) }
        while !c.closed && !c.busy && c.outOffset >= c.out.count {
            // Input already read comes first: the rest of a pipelined batch.
            if c.pendingStart < c.pending.count {
                let used = c.pending.withUnsafeBytes { serveInput(c, UnsafeRawBufferPointer(rebasing: $0[c.pendingStart...])) }
                c.pendingStart += used
                if c.pendingStart >= c.pending.count {
                    c.pending = []
                    c.pendingStart = 0
                }
                continue
            }
            if c.eof { return close(c) }
            guard c.readable else { return }
            let n = Glibc.read(c.fd, readBuffer.baseAddress, readBuffer.count)
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { c.readable = false; return }
                if errno == EINTR { continue }
                return close(c)
            }
            if n == 0 {
                c.eof = true
                continue
            }
            c.lastActivityNanos = Clock.monotonicNanos()
            let chunk = UnsafeRawBufferPointer(rebasing: readBuffer[0..<n])
            let used = serveInput(c, chunk)
            if used < n && !c.closed {
                c.pending = Array(chunk[used...])
                c.pendingStart = 0
            }
        }
    }

    /// Parses input and serves at most one request from it; returns the bytes used.
    private func serveInput(_ c: Connection, _ input: UnsafeRawBufferPointer) -> Int {
        let outcome = c.parse(input)
        if c.started && !c.counted {
            c.counted = true
            core.inFlight.withLock { $0 += 1 }
        }
        if c.wantsContinue, case .needMore = outcome {
            // Headers in, body not yet: tell a client that waits for it to go on.
            c.wantsContinue = false
            _ = Self.continueLine.withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        switch outcome {
        case .needMore:
            return input.count
        case .refused:
            answerRefusal(c)
            return input.count
        case .request(let used):
            dispatch(c, c.takeRequest())
            return used
        }
    }

    private func answerRefusal(_ c: Connection) {
        guard let r = c.refusal else { return close(c) }
        c.closeAfterWrite = true
        c.pending = []
        c.pendingStart = 0
        c.isHead = false
        respond(c, r.response(requestId: c.requestIdForRefusal()))
    }

    private func dispatch(_ c: Connection, _ req: HTTPRequest) {
        if !c.keepAlive { c.closeAfterWrite = true }
        c.isHead = req.method == "HEAD"
        switch core.handler(req) {
        case .now(let response):
            respond(c, response)
        case .later(let work):
            c.busy = true
            core.workers.submit { [self] in deliver(c, work()) }
        }
    }

    private func drainMailbox() {
        let done = mailbox.withLock { m -> [(Connection, HTTPResponse)] in
            let all = m
            m = []
            return all
        }
        for (c, response) in done {
            c.busy = false
            guard !c.closed else { continue }
            respond(c, response)
            pump(c)
        }
    }

    // MARK: writing (the caller goes on with `pump`)

    private func respond(_ c: Connection, _ response: HTTPResponse) {
        if draining || !core.options.keepAlive { c.closeAfterWrite = true }
        if response.headers.contains(where: { asciiCaseInsensitiveEqual($0.0, "connection") && asciiCaseInsensitiveEqual($0.1, "close") }) {
            c.closeAfterWrite = true
        }
        c.out = serialize(response, head: c.isHead, close: c.closeAfterWrite)
        c.outOffset = 0
        flush(c)
    }

    private func flush(_ c: Connection) {
        while c.outOffset < c.out.count {
            let n = c.out.withUnsafeBytes { send(c.fd, $0.baseAddress! + c.outOffset, $0.count - c.outOffset, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return }  // EPOLLOUT resumes it
                return close(c)
            }
            c.outOffset += n
            c.lastActivityNanos = Clock.monotonicNanos()
        }
        c.out = []
        c.outOffset = 0
        finishRequest(c)
        guard c.closeAfterWrite else { return }
        if c.refusal != nil && !c.eof {
            // The client may still be sending what was refused (a body over the limit): closing
            // with unread input would reset the connection and could destroy the answer before
            // it is read. So the write side is shut, and input is read and dropped until the
            // client closes or a short grace passes.
            shutdown(c.fd, Int32(SHUT_WR))
            c.lingerUntilNanos = Clock.monotonicNanos() &+ Self.lingerNanos
            c.pending = []
            c.pendingStart = 0
            discard(c)
        } else {
            close(c)
        }
    }

    private static let lingerNanos: UInt64 = 2_000_000_000

    /// Reads and drops a lingering connection's input; closes it at end of stream.
    private func discard(_ c: Connection) {
        while !c.closed {
            let n = Glibc.read(c.fd, readBuffer.baseAddress, readBuffer.count)
            if n > 0 { continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            return close(c)
        }
    }

    private func finishRequest(_ c: Connection) {
        if c.counted {
            c.counted = false
            core.inFlight.withLock { $0 -= 1 }
        }
    }

    private static let continueLine = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// The response's bytes: status line, the handler's headers (framing ones replaced by ours),
    /// Date, Content-Length, and the body (none for HEAD, 1xx, 204 and 304).
    private func serialize(_ r: HTTPResponse, head: Bool, close: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(160 + r.body.count)
        let status = (100...599).contains(r.status) ? r.status : 500
        out.append(contentsOf: "HTTP/1.1 \(status) \(reasonPhrase(status))\r\n".utf8)
        for (name, value) in r.headers {
            if asciiCaseInsensitiveEqual(name, "content-length") || asciiCaseInsensitiveEqual(name, "transfer-encoding")
                || asciiCaseInsensitiveEqual(name, "connection") || asciiCaseInsensitiveEqual(name, "date") { continue }
            // A name or value that could split the response is dropped, never sent.
            if name.utf8.contains(where: { $0 <= 0x20 || $0 == 0x3A || $0 >= 0x7F }) || value.utf8.contains(where: { $0 < 0x20 && $0 != 0x09 }) { continue }
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: [0x3A, 0x20])
            out.append(contentsOf: value.utf8)
            out.append(contentsOf: [0x0D, 0x0A])
        }
        out.append(contentsOf: "Date: \(httpDate())\r\n".utf8)
        let bodyless = status < 200 || status == 204 || status == 304
        if !bodyless { out.append(contentsOf: "Content-Length: \(r.body.count)\r\n".utf8) }
        if close { out.append(contentsOf: "Connection: close\r\n".utf8) }
        out.append(contentsOf: [0x0D, 0x0A])
        if !head && !bodyless { out.append(contentsOf: r.body) }
        return out
    }

    private func httpDate() -> String {
        var t = time(nil)
        if Int(t) != dateSecond {
            dateSecond = Int(t)
            var tm = tm()
            gmtime_r(&t, &tm)
            var buf = [CChar](repeating: 0, count: 64)
            strftime(&buf, buf.count, "%a, %d %b %Y %H:%M:%S GMT", &tm)
            dateValue = text(buf)
        }
        return dateValue
    }

    // MARK: closing, timeouts, stopping

    private func close(_ c: Connection) {
        guard !c.closed else { return }
        c.closed = true
        finishRequest(c)
        conns[c.token] = nil
        _ = chttp_epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, 0, 0)
        _ = Glibc.close(c.fd)
        core.connectionClosed()
    }

    /// Closes connections that have been silent too long; a request left half-sent gets a 408.
    private func sweep(_ now: UInt64) {
        let limit = UInt64(max(core.options.connectionTimeoutSeconds, 1)) * 1_000_000_000
        for c in Array(conns.values) where !c.busy && !c.closed {
            if c.lingerUntilNanos != 0 {
                if now > c.lingerUntilNanos { close(c) }
            } else if c.outOffset < c.out.count {
                if now &- c.lastActivityNanos > limit { close(c) }
            } else if c.started {
                if now &- c.requestStartNanos > limit {
                    c.refuse(.timeout)
                    answerRefusal(c)
                }
            } else if now &- c.lastActivityNanos > limit || (draining && c.pending.isEmpty) {
                close(c)
            }
        }
    }

    /// Stops accepting; idle keep-alive connections are closed, the rest close after their answer.
    private func beginDrain() {
        draining = true
        _ = chttp_epoll_ctl(epfd, EPOLL_CTL_DEL, core.listenFD, 0, 0)
        for c in Array(conns.values) where !c.busy && !c.started && c.outOffset >= c.out.count && c.pending.isEmpty {
            close(c)
        }
        core.loopDraining()
    }
}

/// Whether `name` equals the lower-case ASCII `lower`, ignoring ASCII case.
func asciiCaseInsensitiveEqual(_ name: String, _ lower: StaticString) -> Bool {
    guard name.utf8.count == lower.utf8CodeUnitCount else { return false }
    let l = UnsafeBufferPointer(start: lower.utf8Start, count: lower.utf8CodeUnitCount)
    for (i, c) in name.utf8.enumerated() where (c >= 65 && c <= 90 ? c | 0x20 : c) != l[i] { return false }
    return true
}

func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 100: return "Continue"
    case 200: return "OK"
    case 201: return "Created"
    case 202: return "Accepted"
    case 204: return "No Content"
    case 301: return "Moved Permanently"
    case 302: return "Found"
    case 303: return "See Other"
    case 304: return "Not Modified"
    case 307: return "Temporary Redirect"
    case 400: return "Bad Request"
    case 401: return "Unauthorized"
    case 403: return "Forbidden"
    case 404: return "Not Found"
    case 405: return "Method Not Allowed"
    case 408: return "Request Timeout"
    case 409: return "Conflict"
    case 410: return "Gone"
    case 413: return "Content Too Large"
    case 414: return "URI Too Long"
    case 415: return "Unsupported Media Type"
    case 422: return "Unprocessable Content"
    case 429: return "Too Many Requests"
    case 431: return "Request Header Fields Too Large"
    case 500: return "Internal Server Error"
    case 501: return "Not Implemented"
    case 502: return "Bad Gateway"
    case 503: return "Service Unavailable"
    case 504: return "Gateway Timeout"
    case 505: return "HTTP Version Not Supported"
    default: return "Status"
    }
}

/// A NUL-terminated C buffer (from inet_ntop, strftime) as a String.
private func text(_ buf: [CChar]) -> String {
    let end = buf.firstIndex(of: 0) ?? buf.count
    return String(decoding: buf[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
