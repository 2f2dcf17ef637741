import Foundation
import JSON

/// One HTTP/1.1 answer read off a raw socket.
public struct RawResponse: Sendable {
    public let status: Int
    /// Header lines in the order they came, names as sent.
    public let headers: [(String, String)]
    public let body: [UInt8]

    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.0.lowercased() == n }?.1
    }

    public func headerValues(_ name: String) -> [String] {
        let n = name.lowercased()
        return headers.filter { $0.0.lowercased() == n }.map(\.1)
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
    public var json: JSON { (try? JSONParser.parse(body)) ?? .null }
    /// The `error.code` of a JSON error body.
    public var errorCode: String? { json["error"]?["code"]?.stringValue }
}

public struct RawHTTPError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// What one read for the next answer found on a connection.
public enum WireRead: Sendable {
    /// A complete answer, and every way it breaks RFC 9112 (empty when it is well-formed).
    case response(RawResponse, violations: [String])
    /// End of stream (or a reset) with no byte of another answer pending.
    case closed
    /// Nothing complete within the receive timeout; `partial` holds the bytes of an answer begun.
    case timedOut(partial: [UInt8])
    /// Bytes that cannot be the start of an HTTP/1.1 answer, or an answer cut off by the close.
    case malformed(String, bytes: [UInt8])
}

/// A plain HTTP/1.1 client over one TCP connection, for what URLSession hides or does for us:
/// keep-alive on one socket, pipelining, redirects not followed, exact bytes on the wire
/// (chunked bodies, wrong lengths, NULs, duplicate headers), and a chosen source address
/// (127.0.0.2 is a second client on loopback). Answers are framed by `HTTPWire`.
public final class RawHTTPConnection {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var eof = false
    public let port: UInt16

    /// `timeoutS` bounds each blocking receive and send.
    public init(port: UInt16, sourceAddress: String? = nil, timeoutS: Double = 15) throws {
        self.port = port
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawHTTPError("socket: \(errno)") }
        setReceiveTimeout(seconds: timeoutS)
        var tv = Self.timeval(timeoutS)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        if let src = sourceAddress {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_addr.s_addr = inet_addr(src)
            let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard r == 0 else { Glibc.close(fd); throw RawHTTPError("bind \(src): \(errno)") }
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { let e = errno; Glibc.close(fd); throw RawHTTPError("connect: \(String(cString: strerror(e)))") }
    }

    deinit { Glibc.close(fd) }

    private static func timeval(_ seconds: Double) -> Glibc.timeval {
        let us = max(1000, Int((seconds * 1_000_000).rounded()))
        return Glibc.timeval(tv_sec: us / 1_000_000, tv_usec: us % 1_000_000)
    }

    /// How long each receive waits from now on.
    public func setReceiveTimeout(seconds: Double) {
        var tv = Self.timeval(seconds)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// The bytes of one request with `Host: 127.0.0.1`; `Content-Length` is added for a body
    /// unless `headers` frame it themselves.
    public static func requestBytes(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        let framed = headers.contains { ["content-length", "transfer-encoding"].contains($0.0.lowercased()) }
        if let b = body, !framed { head += "Content-Length: \(b.count)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + (body ?? [])
    }

    /// Writes everything; false when the peer closed or the write timed out.
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    @discardableResult
    public func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// No more bytes from us (the server sees end of stream after what was sent).
    public func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Receives once; false at end of stream, on a reset or on the receive timeout.
    private func fill() -> Bool {
        if eof { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n > 0 {
                buffer.append(contentsOf: chunk[0..<n])
                return true
            }
            if n < 0 && errno == EINTR { continue }
            if n == 0 || errno == ECONNRESET || errno == EPIPE { eof = true }
            return false
        }
    }

    /// Reads the next answer, checking its syntax and framing strictly (`HTTPWire`).
    /// `headOnly` for an answer to HEAD. An interim 1xx answer is returned like any other.
    public func readNext(headOnly: Bool = false) -> WireRead {
        while true {
            switch HTTPWire.parseResponse(buffer[...], headOnly: headOnly, atEOF: eof) {
            case .complete(let r, let consumed, let violations):
                buffer.removeFirst(consumed)
                return .response(r, violations: violations)
            case .malformed(let why):
                let bytes = buffer
                buffer = []
                return .malformed(why, bytes: bytes)
            case .incomplete:
                if eof {
                    if buffer.isEmpty { return .closed }
                    let bytes = buffer
                    buffer = []
                    return .malformed("the connection closed in the middle of an answer", bytes: bytes)
                }
                if !fill() && !eof { return .timedOut(partial: buffer) }
            }
        }
    }

    /// Reads one answer (skipping interim 1xx ones); nil when the connection closed, timed out
    /// or sent something that is not an answer first. Syntax violations are ignored here.
    public func readResponse(headOnly: Bool = false) -> RawResponse? {
        while true {
            guard case .response(let r, _) = readNext(headOnly: headOnly) else { return nil }
            if r.status >= 200 { return r }
        }
    }

    /// True when the server closed the connection (end of stream or reset) within the receive
    /// timeout with nothing more sent; false on data or timeout.
    public func peerClosed() -> Bool {
        if !buffer.isEmpty { return false }
        if eof { return true }
        _ = fill()
        return buffer.isEmpty && eof
    }

    /// Bytes received but not yet part of an answer returned.
    public var pending: [UInt8] { buffer }
}

/// One request on a fresh connection (with `Connection: close`): the common case in tests.
/// Status 0 with the reason as body when nothing came back.
public func rawRequest(port: UInt16, _ method: String, _ path: String, token: String? = nil, json: JSON? = nil, body: [UInt8]? = nil,
                       headers: [(String, String)] = [], sourceAddress: String? = nil, timeoutS: Double = 15) -> RawResponse {
    var h = headers
    if let t = token { h.append(("Authorization", "Bearer \(t)")) }
    var b = body
    if let j = json {
        b = j.serializedBytes()
        if !h.contains(where: { $0.0.lowercased() == "content-type" }) { h.append(("Content-Type", "application/json")) }
    }
    h.append(("Connection", "close"))
    let c: RawHTTPConnection
    do {
        c = try RawHTTPConnection(port: port, sourceAddress: sourceAddress, timeoutS: timeoutS)
    } catch {
        return RawResponse(status: 0, headers: [], body: Array("cannot connect: \(error)".utf8))
    }
    c.send(RawHTTPConnection.requestBytes(method, path, headers: h, body: b))
    return c.readResponse(headOnly: method == "HEAD") ?? RawResponse(status: 0, headers: [], body: Array("no response".utf8))
}

/// Everything that came back on one connection for what was sent on it.
public struct Exchange: Sendable {
    /// Final answers in order (interim 1xx answers are checked, then left out).
    public var answers: [RawResponse] = []
    /// Syntax violations of any answer, bytes that were no answer, an answer cut off.
    public var problems: [String] = []
    /// The server closed the connection (end of stream or reset) after the answers.
    public var closed = false

    public init(answers: [RawResponse] = [], problems: [String] = [], closed: Bool = false) {
        self.answers = answers
        self.problems = problems
        self.closed = closed
    }
}

extension RawHTTPConnection {
    /// Reads answers until the server closes the connection, sends something that is not an
    /// answer, or stays silent: `firstS` for the first answer, then `quietS` for each next one.
    /// A request the server still waits on (an incomplete body) legitimately gets no answer.
    public func readAnswers(headOnly: Bool = false, firstS: Double = 15, quietS: Double = 1, maxAnswers: Int = 64) -> Exchange {
        var ex = Exchange()
        var extended = false
        setReceiveTimeout(seconds: firstS)
        while ex.answers.count < maxAnswers {
            switch readNext(headOnly: headOnly) {
            case .response(let r, let violations):
                ex.problems += violations.map { "answer \(ex.answers.count + 1) (\(r.status)): \($0)" }
                if r.status >= 200 {
                    ex.answers.append(r)
                    extended = false
                    setReceiveTimeout(seconds: quietS)
                }
            case .closed:
                ex.closed = true
                return ex
            case .timedOut(let partial):
                // An answer begun may be written in pieces by a busy server: wait longer for its rest.
                if !partial.isEmpty && !extended {
                    extended = true
                    setReceiveTimeout(seconds: max(firstS, 10))
                    continue
                }
                if !partial.isEmpty { ex.problems.append("an answer cut off (no more bytes within the timeout): \(HTTPWire.escape(partial, limit: 400))") }
                return ex
            case .malformed(let why, let bytes):
                ex.problems.append("\(why): \(HTTPWire.escape(bytes, limit: 400))")
                ex.closed = peerClosed()
                return ex
            }
        }
        return ex
    }
}
