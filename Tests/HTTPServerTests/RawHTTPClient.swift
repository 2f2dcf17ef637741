import Foundation

/// A response read off a raw socket by the tests' minimal HTTP/1.1 client.
struct RawResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    func headerValues(_ name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
}

struct RawHTTPError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A TCP connection to the server under test, so tests control exactly what goes on the wire
/// (keep-alive, oversize bodies sent or not sent) instead of trusting a client library.
final class RawConnection {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16, timeoutMs: Int = 15_000) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawHTTPError("socket failed") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0 else {
            let e = errno
            Glibc.close(fd)
            throw RawHTTPError("connect failed: \(String(cString: strerror(e)))")
        }
        var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: Int((timeoutMs % 1000) * 1000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { Glibc.close(fd) }

    func send(_ s: String) throws { try send(Array(s.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; throw RawHTTPError("send failed: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    /// Reads more bytes; false at end of stream.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET { return false }
                throw RawHTTPError("recv failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return false }
            buffer.append(contentsOf: chunk[0..<n])
            return true
        }
    }

    /// True when the server closed the connection (reads end of stream).
    func isClosedByPeer() -> Bool {
        buffer.isEmpty && ((try? fill()) ?? true) == false
    }

    func readResponse(expectBody: Bool = true) throws -> RawResponse {
        let sep: [UInt8] = [13, 10, 13, 10]
        var headerEnd: Int?
        while headerEnd == nil {
            if buffer.count >= 4 {
                for i in 0...(buffer.count - 4) where Array(buffer[i..<i + 4]) == sep { headerEnd = i; break }
            }
            if headerEnd == nil { guard try fill() else { throw RawHTTPError("connection closed before a response") } }
        }
        let head = String(decoding: buffer[0..<headerEnd!], as: UTF8.self)
        buffer.removeFirst(headerEnd! + 4)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw RawHTTPError("bad status line") }
        var headers: [(String, String)] = []
        for l in lines {
            guard let c = l.firstIndex(of: ":") else { continue }
            headers.append((String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)))
        }
        let response = RawResponse(status: status, headers: headers, body: [])
        var body: [UInt8] = []
        if !expectBody {
            return response
        } else if let cl = response.header("content-length").flatMap({ Int($0) }) {
            while buffer.count < cl { guard try fill() else { throw RawHTTPError("short body") } }
            body = Array(buffer[0..<cl])
            buffer.removeFirst(cl)
        } else if response.header("transfer-encoding")?.lowercased() == "chunked" {
            while true {
                var lineEnd: Int?
                while lineEnd == nil {
                    if buffer.count >= 2 { for i in 0..<(buffer.count - 1) where buffer[i] == 13 && buffer[i + 1] == 10 { lineEnd = i; break } }
                    if lineEnd == nil { guard try fill() else { throw RawHTTPError("short chunk") } }
                }
                let size = Int(String(decoding: buffer[0..<lineEnd!], as: UTF8.self).split(separator: ";")[0], radix: 16) ?? 0
                buffer.removeFirst(lineEnd! + 2)
                while buffer.count < size + 2 { guard try fill() else { throw RawHTTPError("short chunk") } }
                body.append(contentsOf: buffer[0..<size])
                buffer.removeFirst(size + 2)
                if size == 0 { break }
            }
        } else if status != 204 && status != 304 {
            while try fill() {}
            body = buffer
            buffer = []
        }
        var r = response
        r.body = body
        return r
    }
}

/// One request on a fresh connection.
func rawRequest(port: UInt16, method: String = "GET", path: String, headers: [(String, String)] = [], body: [UInt8] = [],
                timeoutMs: Int = 15_000) throws -> RawResponse {
    let c = try RawConnection(port: port, timeoutMs: timeoutMs)
    var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
    for (k, v) in headers { head += "\(k): \(v)\r\n" }
    if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
    head += "\r\n"
    try c.send(Array(head.utf8) + body)
    return try c.readResponse()
}
