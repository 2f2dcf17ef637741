import Foundation
import JSON

/// The strict reading of HTTP/1.1 answers the tests rely on: one parser frames an answer
/// (RFC 9112 section 6) and lists every way it breaks the message syntax (sections 2–5), and
/// `gatewayProblems` checks what the Gateway promises of every answer on top of that.
public enum HTTPWire {
    public enum Parse {
        /// More bytes are needed.
        case incomplete
        /// One answer, `consumed` bytes long, with its syntax violations (empty when well-formed).
        case complete(RawResponse, consumed: Int, violations: [String])
        /// Not an HTTP/1.1 answer, or one whose framing cannot be determined.
        case malformed(String)
    }

    /// Largest head the parser waits for before calling the bytes malformed.
    public static let maxHead = 256 * 1024

    /// Parses the answer at the start of `buf`. `atEOF`: the peer closed after these bytes (an
    /// answer without a length ends there). `headOnly`: the answer to HEAD, which has no body.
    public static func parseResponse(_ buf: ArraySlice<UInt8>, headOnly: Bool = false, atEOF: Bool = false) -> Parse {
        let start = buf.startIndex
        let prefix = Array("HTTP/".utf8)
        let seen = min(buf.count, prefix.count)
        if Array(buf[start..<start + seen]) != Array(prefix[0..<seen]) {
            return .malformed("the answer does not start with \"HTTP/\"")
        }
        guard let headEnd = find([13, 10, 13, 10], in: buf) else {
            return buf.count > maxHead ? .malformed("no end of the head within \(maxHead) bytes") : .incomplete
        }
        var violations: [String] = []
        let head = Array(buf[start..<headEnd])
        var lines: [[UInt8]] = []
        var lineStart = 0
        var i = 0
        while i < head.count {
            if head[i] == 13 && i + 1 < head.count && head[i + 1] == 10 {
                lines.append(Array(head[lineStart..<i]))
                i += 2
                lineStart = i
            } else {
                if head[i] == 13 || head[i] == 10 { violations.append("a bare \(head[i] == 13 ? "CR" : "LF") in the head") }
                i += 1
            }
        }
        lines.append(Array(head[lineStart..<head.count]))

        // status-line = HTTP-version SP status-code SP [ reason-phrase ]
        let statusLine = lines.removeFirst()
        let sl = String(decoding: statusLine, as: UTF8.self)
        guard statusLine.count >= 12, sl.hasPrefix("HTTP/1."), statusLine[8] == 0x20,
              statusLine[9...11].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let status = Int(String(decoding: statusLine[9...11], as: UTF8.self)), (100...599).contains(status)
        else { return .malformed("not a status line: \(escape(statusLine))") }
        if statusLine[7] != 0x31 && statusLine[7] != 0x30 { violations.append("version \(sl.prefix(8)) is not HTTP/1.x") }
        if statusLine.count > 12 {
            if statusLine[12] != 0x20 { violations.append("no SP after the status code: \(escape(statusLine))") }
            if !statusLine[13...].allSatisfy(isFieldByte) { violations.append("a control character in the reason phrase: \(escape(statusLine))") }
        }

        // field-line = field-name ":" OWS field-value OWS
        var headers: [(String, String)] = []
        for line in lines {
            if line.first == 0x20 || line.first == 0x09 {
                violations.append("an obs-fold continuation line: \(escape(line))")
                continue
            }
            guard let colon = line.firstIndex(of: 0x3A), colon > 0 else {
                violations.append("a head line that is not a field line (a second status line?): \(escape(line))")
                continue
            }
            let name = line[0..<colon]
            if !name.allSatisfy(isTokenByte) { violations.append("an invalid field name: \(escape(line))") }
            var value = line[(colon + 1)...]
            while let f = value.first, f == 0x20 || f == 0x09 { value = value.dropFirst() }
            while let l = value.last, l == 0x20 || l == 0x09 { value = value.dropLast() }
            if !value.allSatisfy(isFieldByte) { violations.append("a control character in a field value: \(escape(line))") }
            headers.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        let bodyStart = headEnd + 4
        func values(_ n: String) -> [String] { headers.filter { $0.0.lowercased() == n }.map(\.1) }
        let te = values("transfer-encoding"), cl = values("content-length")

        // Interim answers, 204 and 304 have no body whatever their fields say.
        if status < 200 || status == 204 || status == 304 || headOnly {
            if status < 200 && (!te.isEmpty || !cl.isEmpty) { violations.append("a \(status) answer with framing fields") }
            if status == 204 && (!te.isEmpty || !cl.isEmpty) { violations.append("a 204 answer with framing fields") }
            if status == 101 { violations.append("a protocol switch (101) nobody asked the Gateway for") }
            return .complete(RawResponse(status: status, headers: headers, body: []), consumed: bodyStart - start, violations: violations)
        }
        if !te.isEmpty {
            if !cl.isEmpty { violations.append("both Transfer-Encoding and Content-Length") }
            guard te.count == 1, te[0].lowercased() == "chunked" else {
                return .malformed("Transfer-Encoding \(te) is not one \"chunked\"")
            }
            switch dechunk(buf[bodyStart...]) {
            case .incomplete: return atEOF ? .malformed("the connection closed inside a chunked body") : .incomplete
            case .malformed(let why): return .malformed(why)
            case .complete(let body, let used, _):
                return .complete(RawResponse(status: status, headers: headers, body: body.body), consumed: bodyStart + used - start, violations: violations)
            }
        }
        if !cl.isEmpty {
            if cl.count > 1 { violations.append("\(cl.count) Content-Length fields") }
            guard Set(cl).count == 1, !cl[0].isEmpty, cl[0].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), cl[0].utf8.count <= 15,
                  let length = Int(cl[0])
            else { return .malformed("Content-Length \(cl) is not one decimal length") }
            let available = buf.count - (bodyStart - start)
            if available < length { return atEOF ? .malformed("the body is shorter than Content-Length \(length)") : .incomplete }
            let body = Array(buf[bodyStart..<bodyStart + length])
            return .complete(RawResponse(status: status, headers: headers, body: body), consumed: bodyStart + length - start, violations: violations)
        }
        // No length: the body runs to the close (legal, but the Gateway always sends a length).
        violations.append("no Content-Length (the body runs to the close)")
        guard atEOF else { return .incomplete }
        return .complete(RawResponse(status: status, headers: headers, body: Array(buf[bodyStart...])), consumed: buf.count, violations: violations)
    }

    /// A chunked body's data, or why its framing is broken. `.complete` carries the data as the
    /// body of a status-0 response and the bytes used including the trailer section.
    private static func dechunk(_ buf: ArraySlice<UInt8>) -> Parse {
        var body: [UInt8] = []
        var i = buf.startIndex
        while true {
            guard let lineEnd = find([13, 10], in: buf[i...]) else { return .incomplete }
            let sizeText = String(decoding: buf[i..<lineEnd], as: UTF8.self).split(separator: ";", maxSplits: 1).first ?? ""
            guard !sizeText.isEmpty, sizeText.count <= 8, let size = Int(sizeText, radix: 16), size >= 0 else {
                return .malformed("bad chunk size line \(escape(Array(buf[i..<lineEnd])))")
            }
            i = lineEnd + 2
            if size == 0 {
                // Trailer section: field lines up to an empty line.
                while true {
                    guard let end = find([13, 10], in: buf[i...]) else { return .incomplete }
                    let empty = end == i
                    i = end + 2
                    if empty { return .complete(RawResponse(status: 0, headers: [], body: body), consumed: i - buf.startIndex, violations: []) }
                }
            }
            guard buf.endIndex - i >= size + 2 else { return .incomplete }
            body += buf[i..<i + size]
            guard buf[i + size] == 13, buf[i + size + 1] == 10 else { return .malformed("chunk data not followed by CRLF") }
            i += size + 2
        }
    }

    /// tchar of RFC 9110 section 5.6.2.
    public static func isTokenByte(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        default: return Array("!#$%&'*+-.^_`|~".utf8).contains(c)
        }
    }

    /// field-vchar, SP or HTAB (RFC 9110 section 5.5): anything but a control character.
    public static func isFieldByte(_ c: UInt8) -> Bool { c == 0x09 || (c >= 0x20 && c != 0x7F) }

    static func find(_ needle: [UInt8], in hay: ArraySlice<UInt8>) -> Int? {
        guard hay.count >= needle.count else { return nil }
        var i = hay.startIndex
        while i <= hay.endIndex - needle.count {
            if hay[i] == needle[0] {
                var match = true
                for k in 1..<needle.count where hay[i + k] != needle[k] { match = false; break }
                if match { return i }
            }
            i += 1
        }
        return nil
    }

    /// Bytes as a readable Swift-like literal: printable ASCII as is, CR LF TAB as escapes,
    /// anything else as \xHH, long runs of one byte as <'x' × n>, at most `limit` characters.
    public static func escape<C: Collection>(_ bytes: C, limit: Int = 2000) -> String where C.Element == UInt8 {
        var out = ""
        let a = Array(bytes)
        var i = 0
        func one(_ c: UInt8) -> String {
            switch c {
            case 13: return "\\r"
            case 10: return "\\n"
            case 9: return "\\t"
            case 0x5C: return "\\\\"
            case 0x20...0x7E: return String(UnicodeScalar(c))
            default: return String(format: "\\x%02X", c)
            }
        }
        while i < a.count {
            var run = 1
            while i + run < a.count && a[i + run] == a[i] { run += 1 }
            if run > 16 {
                out += "<'\(one(a[i]))' × \(run)>"
            } else {
                for _ in 0..<run { out += one(a[i]) }
            }
            i += run
            if out.count > limit { return String(out.prefix(limit)) + "… (\(a.count) bytes)" }
        }
        return out
    }

    /// What the Gateway promises of every final answer, beyond the syntax: an `X-Request-Id`;
    /// for a refusal (4xx, 5xx) the JSON error body `{"error":{"code","message","requestId"}}`
    /// with `Content-Type: application/json` and the header's request id; no 5xx but 503/504
    /// with `Retry-After` (and those in `also5xx`). An answer to HEAD (`headOnly`) has no body to
    /// check; with `htmlPages` (a request to the dashboard) a refusal may be an HTML page for a
    /// browser. Empty when all hold.
    public static func gatewayProblems(_ r: RawResponse, headOnly: Bool = false, htmlPages: Bool = false, also5xx: Set<Int> = []) -> [String] {
        guard r.status >= 200 else { return [] }
        var p: [String] = []
        let ids = r.headerValues("X-Request-Id")
        if ids.count != 1 || ids[0].isEmpty { p.append("\(ids.count) X-Request-Id headers \(ids), want one non-empty") }
        if r.status >= 500 && !also5xx.contains(r.status) {
            if r.status != 503 && r.status != 504 {
                p.append("status \(r.status): no 5xx but 503 and 504")
            } else if !(r.header("Retry-After").map { !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } } ?? false) {
                p.append("a \(r.status) without a Retry-After of whole seconds")
            }
        }
        if r.status >= 400 {
            let ct = (r.header("Content-Type") ?? "").lowercased()
            if htmlPages && ct.hasPrefix("text/html") { return p }
            if !ct.hasPrefix("application/json") { p.append("Content-Type \(r.header("Content-Type") ?? "missing") on a \(r.status), want application/json") }
            if headOnly { return p }
            guard let e = r.json["error"]?.objectValue else {
                p.append("a \(r.status) whose body is not the JSON error body: \(escape(r.body, limit: 300))")
                return p
            }
            if (e["code"]?.stringValue ?? "").isEmpty { p.append("error.code missing or empty: \(escape(r.body, limit: 300))") }
            if e["message"]?.stringValue == nil { p.append("error.message missing: \(escape(r.body, limit: 300))") }
            if let id = ids.first, e["requestId"]?.stringValue != id {
                p.append("error.requestId \(e["requestId"]?.stringValue ?? "missing") is not the X-Request-Id \(id)")
            }
        }
        return p
    }
}
