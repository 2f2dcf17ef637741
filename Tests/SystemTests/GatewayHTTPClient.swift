import Foundation
import JSON

/// One HTTP/1.1 answer read off a raw socket.
struct RawResponse {
    let status: Int
    let headers: [(String, String)]
    let body: [UInt8]

    func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.0.lowercased() == n }?.1
    }

    var text: String { String(decoding: body, as: UTF8.self) }
    var json: JSON { (try? JSONParser.parse(body)) ?? .null }
    /// The `error.code` of a JSON error body.
    var errorCode: String? { json["error"]?["code"]?.stringValue }
}

/// A plain HTTP/1.1 client over one TCP connection, for what URLSession hides or does for us:
/// keep-alive on one socket, pipelining, redirects not followed, exact bytes (chunked bodies,
/// wrong lengths), and a chosen source address (127.0.0.2 is a second client on loopback).
final class RawHTTPConnection {
    private let fd: Int32
    private var buffer: [UInt8] = []
    let port: UInt16

    init(port: UInt16, sourceAddress: String? = nil, timeoutS: Int = 15) throws {
        self.port = port
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawHTTPError("socket: \(errno)") }
        var tv = timeval(tv_sec: timeoutS, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
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
        guard r == 0 else { Glibc.close(fd); throw RawHTTPError("connect: \(errno)") }
    }

    deinit { Glibc.close(fd) }

    /// The bytes of one request; `Content-Length` is added for a body unless `headers` frames it.
    static func requestBytes(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) -> [UInt8] {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        let framed = headers.contains { ["content-length", "transfer-encoding"].contains($0.0.lowercased()) }
        if let b = body, !framed { head += "Content-Length: \(b.count)\r\n" }
        head += "\r\n"
        return Array(head.utf8) + (body ?? [])
    }

    /// Writes everything; false when the peer closed or the write timed out.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }

    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &chunk, chunk.count, 0)
        guard n > 0 else { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// Reads one response (Content-Length or chunked framing); nil when the connection closed
    /// or timed out first. `headOnly` for answers to HEAD.
    func readResponse(headOnly: Bool = false) -> RawResponse? {
        let sep: [UInt8] = [13, 10, 13, 10]
        var end: Int?
        while end == nil {
            if let r = find(sep, in: buffer) { end = r; break }
            if !fill() { return nil }
        }
        let headText = String(decoding: buffer[0..<end!], as: UTF8.self)
        buffer.removeFirst(end! + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        var headers: [(String, String)] = []
        for l in lines {
            guard let c = l.firstIndex(of: ":") else { continue }
            headers.append((String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)))
        }
        let resp = RawResponse(status: status, headers: headers, body: [])
        if headOnly || status == 204 || status == 304 { return resp }
        if resp.header("transfer-encoding")?.lowercased().contains("chunked") == true {
            var body: [UInt8] = []
            while true {
                var lineEnd: Int?
                while lineEnd == nil {
                    if let r = find([13, 10], in: buffer) { lineEnd = r; break }
                    if !fill() { return nil }
                }
                let sizeText = String(decoding: buffer[0..<lineEnd!], as: UTF8.self).split(separator: ";").first ?? ""
                buffer.removeFirst(lineEnd! + 2)
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return nil }
                while buffer.count < size + 2 { if !fill() { return nil } }
                body += buffer[0..<size]
                buffer.removeFirst(size + 2)
                if size == 0 { break }
            }
            return RawResponse(status: status, headers: headers, body: body)
        }
        let length = Int(resp.header("content-length") ?? "0") ?? 0
        while buffer.count < length { if !fill() { return nil } }
        let body = Array(buffer[0..<length])
        buffer.removeFirst(length)
        return RawResponse(status: status, headers: headers, body: body)
    }

    /// True when the server closed the connection (EOF) within the receive timeout.
    func peerClosed() -> Bool {
        if !buffer.isEmpty { return false }
        var b: UInt8 = 0
        return recv(fd, &b, 1, 0) == 0
    }

    private func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] {
            if Array(hay[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }
}

struct RawHTTPError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// One request on a fresh connection: the common case in these tests.
func rawRequest(port: UInt16, _ method: String, _ path: String, token: String? = nil, json: JSON? = nil, body: [UInt8]? = nil,
                headers: [(String, String)] = [], sourceAddress: String? = nil, timeoutS: Int = 15) -> RawResponse {
    var h = headers
    if let t = token { h.append(("Authorization", "Bearer \(t)")) }
    var b = body
    if let j = json {
        b = j.serializedBytes()
        if !h.contains(where: { $0.0.lowercased() == "content-type" }) { h.append(("Content-Type", "application/json")) }
    }
    h.append(("Connection", "close"))
    guard let c = try? RawHTTPConnection(port: port, sourceAddress: sourceAddress, timeoutS: timeoutS) else {
        return RawResponse(status: 0, headers: [], body: Array("cannot connect".utf8))
    }
    c.send(RawHTTPConnection.requestBytes(method, path, headers: h, body: b))
    return c.readResponse(headOnly: method == "HEAD") ?? RawResponse(status: 0, headers: [], body: Array("no response".utf8))
}
