import CHTTP
import Foundation
import Runtime

/// One client connection, owned by the event loop that accepted it: only that loop's thread
/// touches it. A worker running its request only holds it to hand the response back.
final class Connection: @unchecked Sendable {
    let fd: Int32
    let token: UInt64
    let peer: String
    let limits: HTTPServerOptions
    private let parser: UnsafeMutablePointer<http_parser>

    // Input read but not yet parsed, from `pendingStart` on: what followed a complete request
    // (pipelining).
    var pending: [UInt8] = []
    var pendingStart = 0
    /// Edge-triggered epoll: the socket may hold more input than was read.
    var readable = true
    /// The client closed its side; answer what was read, then close.
    var eof = false

    // The request being read.
    private(set) var started = false
    private var url: [UInt8] = []
    private var headerFields: [(name: [UInt8], value: [UInt8])] = []
    private var lastWasValue = false
    private var headerBytes = 0
    private var body: [UInt8] = []
    private var target: RequestTarget?
    private var method = "GET"
    /// The method of the current request when the parser does not know it.
    private var unknownMethod: String?
    /// Set by a parser callback that stops parsing; answered, then the connection is closed.
    private(set) var refusal: HTTPRefusal?
    private(set) var complete = false
    private(set) var keepAlive = true
    var requestStartNanos: UInt64 = 0
    /// The request counts in the server's in-flight total until its answer is written.
    var counted = false
    /// A 100 Continue to send before reading the body.
    var wantsContinue = false

    // Output and state.
    /// A worker is producing the answer to the current request; nothing more is read.
    var busy = false
    /// The request being answered is a HEAD: its answer has headers only.
    var isHead = false
    var out: [UInt8] = []
    var outOffset = 0
    var closeAfterWrite = false
    var closed = false
    var lastActivityNanos: UInt64

    init(fd: Int32, token: UInt64, peer: String, limits: HTTPServerOptions, settings: UnsafePointer<http_parser_settings>) {
        self.fd = fd
        self.token = token
        self.peer = peer
        self.limits = limits
        self.settings = settings
        lastActivityNanos = Clock.monotonicNanos()
        parser = .allocate(capacity: 1)
        http_parser_init(parser, HTTP_REQUEST)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit { parser.deallocate() }

    private let settings: UnsafePointer<http_parser_settings>

    /// What parsing some input led to.
    enum Outcome {
        /// Everything was consumed; the request (if any) needs more input.
        case needMore
        /// A whole request is ready (`takeRequest`); `consumed` bytes of the input were used.
        case request(consumed: Int)
        /// The input is refused; answer `refusal` and close.
        case refused
    }

    /// Feeds input to the parser, stopping after one complete request.
    func parse(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        let atStart = !started
        var n = execute(bytes)
        var err = chttp_errno(parser)
        if err == HPE_INVALID_METHOD.rawValue && atStart, let m = Self.methodToken(bytes) {
            // A well-formed method the parser does not know (QUERY, say): the rest of the request
            // is parsed as if it were a GET, and the handler sees the real method (the Gateway
            // answers 405 with Allow, as for any method a route does not take).
            http_parser_init(parser, HTTP_REQUEST)
            parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
            refusal = nil
            _ = Self.getToken.withUnsafeBytes { execute($0) }
            unknownMethod = String(decoding: m, as: UTF8.self)
            n = m.count + execute(UnsafeRawBufferPointer(rebasing: bytes[m.count...]))
            err = chttp_errno(parser)
        }
        if err == HPE_PAUSED.rawValue {
            http_parser_pause(parser, 0)
            return complete ? .request(consumed: n) : .needMore
        }
        if err != HPE_OK.rawValue {
            if refusal == nil { refusal = Self.refusal(for: err, input: bytes, limits: limits) }
            return .refused
        }
        if complete { return .request(consumed: n) }
        if chttp_upgrade(parser) != 0 {
            // An Upgrade request the parser stopped at: nothing after it is HTTP.
            refusal = .malformed
            return .refused
        }
        return .needMore
    }

    private func execute(_ bytes: UnsafeRawBufferPointer) -> Int {
        bytes.count == 0 ? 0 : http_parser_execute(parser, settings, bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count)
    }

    private static let getToken = Array("GET".utf8)

    /// The method at the start of `input` when it is a token of at most 32 characters followed
    /// by a space.
    private static func methodToken(_ input: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer.SubSequence? {
        let name = input.prefix { $0 != 0x20 }
        guard !name.isEmpty, name.count <= 32, name.count < input.count, name.allSatisfy(isTokenChar) else { return nil }
        return name
    }

    /// The request just completed, and the connection made ready for the next one.
    func takeRequest() -> HTTPRequest {
        var headers: [String: String] = [:]
        headers.reserveCapacity(headerFields.count)
        for (name, value) in headerFields {
            let k = String(decoding: name, as: UTF8.self)
            let v = String(decoding: value, as: UTF8.self)
            if let old = headers[k] {
                headers[k] = old + (k == "cookie" ? "; " : ", ") + v
            } else {
                headers[k] = v
            }
        }
        let req = HTTPRequest(method: method, path: target?.path ?? "/", query: target?.query ?? [:],
                              lowercasedHeaders: headers, body: body, remoteAddress: peer)
        if chttp_upgrade(parser) != 0 { keepAlive = false }
        resetRequest()
        return req
    }

    /// The request id for an answer the server gives itself.
    func requestIdForRefusal() -> String {
        let v = headerFields.first { $0.name == Self.requestIdName }?.value
        return RequestID.accept(v.map { String(decoding: $0, as: UTF8.self) })
    }

    private func resetRequest() {
        started = false
        complete = false
        url = []
        headerFields = []
        lastWasValue = false
        headerBytes = 0
        body = []
        target = nil
        wantsContinue = false
        unknownMethod = nil
    }

    /// Sets the refusal for a timed-out request.
    func refuse(_ r: HTTPRefusal) { refusal = r }

    // MARK: parser events

    fileprivate func messageBegin() -> Int32 {
        resetRequest()
        started = true
        requestStartNanos = Clock.monotonicNanos()
        return 0
    }

    fileprivate func urlData(_ p: UnsafeRawBufferPointer) -> Int32 {
        headerBytes += p.count
        if headerBytes > limits.maxHeaderBytes { return stop(.uriTooLong) }
        url.append(contentsOf: p)
        return 0
    }

    fileprivate func headerField(_ p: UnsafeRawBufferPointer) -> Int32 {
        headerBytes += p.count
        if headerBytes > limits.maxHeaderBytes { return stop(.headersTooLarge) }
        if lastWasValue || headerFields.isEmpty {
            if headerFields.count >= limits.maxHeaderCount { return stop(.headersTooLarge) }
            headerFields.append((name: [], value: []))
            lastWasValue = false
        }
        // Field names are tokens (the parser checks); case is folded byte by byte.
        for c in p { headerFields[headerFields.count - 1].name.append(c >= 65 && c <= 90 ? c | 0x20 : c) }
        return 0
    }

    fileprivate func headerValue(_ p: UnsafeRawBufferPointer) -> Int32 {
        headerBytes += p.count
        if headerBytes > limits.maxHeaderBytes { return stop(.headersTooLarge) }
        if headerFields.isEmpty { return stop(.badHeader) }
        lastWasValue = true
        headerFields[headerFields.count - 1].value.append(contentsOf: p)
        return 0
    }

    fileprivate func headersComplete() -> Int32 {
        guard chttp_major(parser) == 1 && chttp_minor(parser) <= 1 else { return stop(.badVersion) }
        let http11 = chttp_minor(parser) == 1
        var hosts = 0
        for i in headerFields.indices {
            // RFC 9110 §5.5: a field value has no leading or trailing whitespace and no control
            // characters other than HTAB (a NUL must never cut a value short).
            var v = headerFields[i].value[...]
            while let f = v.first, f == 0x20 || f == 0x09 { v = v.dropFirst() }
            while let l = v.last, l == 0x20 || l == 0x09 { v = v.dropLast() }
            if v.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) { return stop(.badHeader) }
            if v.count != headerFields[i].value.count { headerFields[i].value = Array(v) }
            // A field name is a token: no whitespace, in particular none before the colon (§5.1).
            if headerFields[i].name.isEmpty || !headerFields[i].name.allSatisfy(Self.isTokenChar) { return stop(.badHeader) }
            if headerFields[i].name == Self.hostName { hosts += 1 }
        }
        // RFC 9112 §3.2: exactly one Host on HTTP/1.1; never two.
        if hosts > 1 || (http11 && hosts == 0) { return stop(.badHost) }
        guard let t = RequestTarget(url) else { return stop(.badTarget) }
        target = t
        if let m = unknownMethod {
            method = m
        } else {
            guard let m = http_method_str(http_method(rawValue: chttp_method(parser))) else { return stop(.malformed) }
            method = String(cString: m)
        }
        if chttp_has_content_length(parser) != 0 && chttp_content_length(parser) > UInt64(limits.maxBodyBytes) {
            return stop(.tooLarge(limits.maxBodyBytes))
        }
        if http11 && chttp_has_body(parser) != 0,
           let e = headerFields.first(where: { $0.name == Self.expectName })?.value,
           e.count == 12 && e.map({ $0 | 0x20 }) == Self.continueValue {
            wantsContinue = true
        }
        return 0
    }

    fileprivate func bodyData(_ p: UnsafeRawBufferPointer) -> Int32 {
        if body.count + p.count > limits.maxBodyBytes { return stop(.tooLarge(limits.maxBodyBytes)) }
        if body.isEmpty && chttp_has_content_length(parser) != 0 {
            body.reserveCapacity(Int(chttp_content_length(parser)))
        }
        body.append(contentsOf: p)
        return 0
    }

    fileprivate func messageComplete() -> Int32 {
        complete = true
        keepAlive = http_should_keep_alive(parser) != 0
        http_parser_pause(parser, 1)
        return 0
    }

    private func stop(_ r: HTTPRefusal) -> Int32 {
        refusal = r
        return -1
    }

    /// RFC 9110 §5.6.2 tchar (names arrive lower-cased).
    private static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x61...0x7A, 0x41...0x5A: return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): return true
        default: return false
        }
    }

    private static let hostName = Array("host".utf8)
    private static let expectName = Array("expect".utf8)
    private static let requestIdName = Array("x-request-id".utf8)
    private static let continueValue = Array("100-continue".utf8)

    /// The answer to input the parser itself rejected.
    private static func refusal(for err: UInt32, input: UnsafeRawBufferPointer, limits: HTTPServerOptions) -> HTTPRefusal {
        switch err {
        case HPE_HEADER_OVERFLOW.rawValue: return .headersTooLarge
        case HPE_UNEXPECTED_CONTENT_LENGTH.rawValue: return .ambiguousLength
        case HPE_INVALID_TRANSFER_ENCODING.rawValue: return .badTransferEncoding
        case HPE_INVALID_METHOD.rawValue: return .malformed
        case HPE_INVALID_CONTENT_LENGTH.rawValue:
            // All digits yet refused: a length too large for 64 bits, so above any limit.
            return contentLengthIsDigits(input) ? .tooLarge(limits.maxBodyBytes) : .badContentLength
        case HPE_INVALID_HEADER_TOKEN.rawValue, HPE_LF_EXPECTED.rawValue: return .badHeader
        default: return .malformed
        }
    }

    /// Whether the Content-Length field in `input` has a value of digits only.
    private static func contentLengthIsDigits(_ input: UnsafeRawBufferPointer) -> Bool {
        let name = Array("\ncontent-length:".utf8)
        let b = Array(input)
        guard b.count > name.count else { return false }
        for i in 0...(b.count - name.count) {
            var match = true
            for j in 0..<name.count where (b[i + j] >= 65 && b[i + j] <= 90 ? b[i + j] | 0x20 : b[i + j]) != name[j] { match = false; break }
            guard match else { continue }
            var k = i + name.count
            while k < b.count && (b[k] == 0x20 || b[k] == 0x09) { k += 1 }
            var digits = 0
            while k < b.count && b[k] >= 0x30 && b[k] <= 0x39 { k += 1; digits += 1 }
            while k < b.count && (b[k] == 0x20 || b[k] == 0x09) { k += 1 }
            return digits > 0 && (k == b.count || b[k] == 0x0D || b[k] == 0x0A)
        }
        return false
    }
}

// MARK: the parser's callbacks

@inline(__always)
private func conn(_ p: UnsafeMutablePointer<http_parser>?) -> Connection {
    Unmanaged<Connection>.fromOpaque(p!.pointee.data).takeUnretainedValue()
}

@inline(__always)
private func buf(_ at: UnsafePointer<CChar>?, _ n: Int) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(start: at, count: n)
}

/// One settings table for every connection (the callbacks find their connection in `data`).
nonisolated(unsafe) let parserSettings: UnsafeMutablePointer<http_parser_settings> = {
    let s = UnsafeMutablePointer<http_parser_settings>.allocate(capacity: 1)
    http_parser_settings_init(s)
    s.pointee.on_message_begin = { conn($0).messageBegin() }
    s.pointee.on_url = { conn($0).urlData(buf($1, $2)) }
    s.pointee.on_header_field = { conn($0).headerField(buf($1, $2)) }
    s.pointee.on_header_value = { conn($0).headerValue(buf($1, $2)) }
    s.pointee.on_headers_complete = { conn($0).headersComplete() }
    s.pointee.on_body = { conn($0).bodyData(buf($1, $2)) }
    s.pointee.on_message_complete = { conn($0).messageComplete() }
    return s
}()
