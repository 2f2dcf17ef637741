import Foundation
import JSON

/// The UTF-8 bytes of `s`.
private func u(_ s: String) -> [UInt8] { Array(s.utf8) }

/// One fuzzed exchange: the bytes to send on a fresh connection, in `writes` pieces.
public struct HTTPFuzzCase: Sendable {
    public let seed: UInt64
    public let index: Int
    /// Which generator made it, and what it did.
    public let kind: String
    public let writes: [[UInt8]]
    /// The only request is a well-formed HEAD: answers carry no body.
    public let headOnly: Bool
    /// A request goes to the dashboard, whose refusals may be HTML pages for a browser.
    public var dashboard: Bool { HTTPWire.find(Array("/admin/queues".utf8), in: bytes[...]) != nil }
    /// 5xx codes RFC 9110 gives for what this case sends: 501 for an unknown method or transfer
    /// coding, 505 for an HTTP version other than 1.x.
    public let also5xx: Set<Int>
    public var bytes: [UInt8] { writes.flatMap { $0 } }
}

/// Builds mutated and random HTTP/1.1 requests against the Gateway's routes: request lines
/// (methods, targets with odd encodings, versions), headers (duplicates, NULs, CR/LF injection,
/// obs-fold, oversize), framing (odd Content-Length, Transfer-Encoding variants, chunk-size
/// garbage, truncation), pipelining, and bodies with bad JSON or UTF-8. A case depends only on
/// (seed, index) and the context.
public struct HTTPFuzzer: Sendable {
    /// A valid access token of a merchant the fuzzer may spend, and one of its order ids.
    public let token: String
    public let orderId: String

    public init(token: String, orderId: String) {
        self.token = token
        self.orderId = orderId
    }

    public func makeCase(seed: UInt64, index: Int) -> HTTPFuzzCase {
        var g = Gen(rng: SplitMix64(seed: seed ^ (UInt64(index) &* 0xD1B5_4A32_D192_ED03)), f: self)
        let kinds: [(Int, (inout Gen) -> [UInt8])] = [
            (10, { $0.valid() }), (14, { $0.requestLine() }), (16, { $0.headers() }), (16, { $0.framing() }),
            (10, { $0.chunked() }), (12, { $0.body() }), (8, { $0.pipeline() }), (6, { $0.truncated() }),
            (10, { $0.mutated() }), (4, { $0.garbage() }),
        ]
        var pick = g.int(0, kinds.map(\.0).reduce(0, +) - 1)
        var bytes: [UInt8] = []
        for (w, make) in kinds {
            if pick < w { bytes = make(&g); break }
            pick -= w
        }
        // Sometimes the bytes go out in pieces, so parsers see every state split across reads.
        var writes = [bytes]
        if bytes.count > 4 && g.chance(0.2) {
            let cuts = (0..<g.int(1, 5)).map { _ in g.int(1, bytes.count - 1) }
            let points = Array(Set(cuts)).sorted()
            writes = []
            var last = 0
            for p in points { writes.append(Array(bytes[last..<p])); last = p }
            writes.append(Array(bytes[last...]))
            g.notes.append("in \(writes.count) writes")
        }
        return HTTPFuzzCase(seed: seed, index: index, kind: g.notes.joined(separator: ", "), writes: writes, headOnly: g.headOnly,
                            also5xx: g.also5xx)
    }

    // MARK: - pools

    static let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"]
    static let oddMethods = ["get", "Get", "G3T", "FOO", "PRI", "M-SEARCH", String(repeating: "A", count: 300), "GET\u{0}", "", "GE T",
                             "POST\t", "GET:", "\u{7F}GET", "ÇET"]
    static let oddVersions = ["HTTP/2.0", "HTTP/2", "HTTP/3", "HTTP/1.2", "HTTP/0.9", "HTTP/9.9", "http/1.1", "HTTP/1.1 ", "HTTP/01.1",
                              "HTTP/1.10", "HTTP/1", "HTTPS/1.1", "HTTP/1.1\u{0}", "HTTP/1.\u{ff}", "", "HTTP/1.1 HTTP/1.1", "HTTP/-1.1",
                              "HTTP/4294967297.1"]
    func paths() -> [String] {
        ["/healthz", "/readyz", "/auth/me", "/wallet", "/wallet/transactions", "/wallet/transactions?limit=2", "/orders",
         "/orders?limit=1&status=enqueued", "/orders/\(orderId)", "/orders/ord_missing", "/kyc", "/openapi.json", "/metrics",
         "/admin/queues", "/admin/queues/api/overview", "/nope", "/"]
    }
    static let oddTargets = [
        "*", "http://127.0.0.1/healthz", "https://evil.example/auth/me", "127.0.0.1:80", "//healthz", "/./healthz", "/healthz/.",
        "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/auth/%2e%2e/healthz", "/%", "/%2", "/%zz", "/%00", "/auth/me%00.js",
        "/wallet%00/x.png", "/orders/%00/cancel", "/%C0%AF", "/%c0%ae%c0%ae/", "/%ff%fe", "/%u0041", "/auth/me#frag",
        "/auth/me;jsessionid=1", "/auth//me", "/AUTH/ME", "/auth/me/", "/healthz?", "/healthz??", "/healthz?a=1&a=2&a", "/healthz?=&&=",
        "/wallet/transactions?limit=-1", "/wallet/transactions?limit=99999999999999999999", "/wallet/transactions?limit=1e3",
        "/wallet/transactions?cursor=%00", "/orders?cursor=garbage", "/orders?limit=9223372036854775807", "/orders?limit=-9223372036854775808",
        "/admin/queues/api/parcelx-orders-queue/failed?page=9223372036854775807", "/admin/queues?page=-1",
        "/admin/queues/parcelx-orders-queue/failed?page=461168601842738792", "/auth/me?q=%0d%0aX-Injected:%201",
        "/é", "/\u{ff}", "/\t", "/a b", "/healthz\u{0}", "/healthz\u{1}", "/healthz\u{7F}", "", "/" + String(repeating: "a/", count: 4000),
        "/healthz?" + (0..<3000).map { "p\($0)=\($0)" }.joined(separator: "&"), "/%%%%", "/%2F%2F", "/orders/%2Fetc%2Fpasswd",
        "/orders/" + String(repeating: "9", count: 400), "/healthz%20", "/healthz%", "/\\auth\\me",
    ]
    static let lengths = ["-1", "+5", " 5", "5 ", "0x5", "5, 5", "5,6", "5 5", "", "1e3", "٥", "99999999999999999999999",
                          "18446744073709551616", "18446744073709551615", "9223372036854775807", "9223372036854775808", "1048577",
                          "00000000000000000002", "2\u{0}", "2;", "-0", "0"]
    static let transferEncodings = ["chunked", "Chunked", "CHUNKED", "chunked, chunked", "gzip, chunked", "chunked, gzip", "identity",
                                    "xchunked", " chunked", "chunked\t", "chunked ,", "chunk", "chunked\u{0}", "\"chunked\"", "chunked;q=1"]
    static let oddHeaderNames = ["Bad Name", "X\u{0}Y", "(x)", "", "é", "X-\u{7F}", "X\tY", "X/Y", "{}", "Host\u{0}"]
    static let bodies: [[UInt8]] = {
        var b: [[UInt8]] = ["{", "}", "{\"a\":}", "[", "[]", "null", "\"x\"", "1e999999", "{\"amountPaise\": 1e309}",
                            "{\"amountPaise\": 9223372036854775808}", "{\"amountPaise\": -9223372036854775809}", "{\"amountPaise\": -1}",
                            "{\"amountPaise\": 1.5}", "{\"amountPaise\": \"100\"}", "{\"amountPaise\": 100, \"amountPaise\": 200}",
                            "{\"a\":\"\\ud800\"}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\udc00\\ud800\"}", "{}x", "{} {}", "{\"a\":1,}",
                            "{'a':1}", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":01}", "{\"a\":.5}", "{\"a\":\"\t\"}", "",
                            "{\"email\":{\"$ne\":null},\"password\":{\"$gt\":\"\"}}", "{\"__proto__\":{\"admin\":true}}",
                            "{\"refreshToken\":\"\(String(repeating: "A", count: 5000))\"}"].map { Array($0.utf8) }
        b.append([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xFF, 0x22, 0x7D])            // {"a":"\xFF"}
        b.append([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC0, 0xAF, 0x22, 0x7D])      // overlong '/'
        b.append([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x7D]) // raw surrogate
        b.append([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0x00, 0x22, 0x7D])            // raw NUL in a string
        b.append([0xEF, 0xBB, 0xBF] + Array("{}".utf8))                              // BOM
        b.append([0xFE, 0xFF, 0x00, 0x7B, 0x00, 0x7D])                               // UTF-16
        b.append(Array(String(repeating: "[", count: 5000).utf8) + Array(String(repeating: "]", count: 5000).utf8))
        b.append(Array(String(repeating: "{\"a\":", count: 3000).utf8) + Array("1".utf8) + Array(String(repeating: "}", count: 3000).utf8))
        b.append(Array("{\"a\":\"".utf8) + [UInt8](repeating: 0x62, count: 600_000) + Array("\"}".utf8))
        b.append(Array("[".utf8) + Array((0..<50_000).map { _ in "1," }.joined().utf8) + Array("1]".utf8))
        // Just under the default body limit (1 MiB): the Gateway accepts it, so it must fit
        // everything behind the Gateway too (issue 18, defect 2).
        b.append(Array("{\"email\":1,\"pad\":\"".utf8) + [UInt8](repeating: 0x62, count: 1_048_476 - 20) + Array("\"}".utf8))
        return b
    }()
}

/// The state of building one case.
struct Gen {
    var rng: SplitMix64
    let f: HTTPFuzzer
    var notes: [String] = []
    var headOnly = false
    var also5xx: Set<Int> = []

    mutating func int(_ lo: Int, _ hi: Int) -> Int { hi <= lo ? lo : Int.random(in: lo...hi, using: &rng) }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
    mutating func pick<T>(_ a: [T]) -> T { a[int(0, a.count - 1)] }

    /// A route the fuzzer can call with a sensible body: method, path, body.
    mutating func route() -> (String, String, [UInt8]?) {
        let order = String(decoding: OOPSSystem.orderBody("FZ-\(int(0, 1_000_000))").serializedBytes(), as: UTF8.self)
        let routes: [(String, String, String?)] = [
            ("GET", pick(f.paths()), nil), ("GET", pick(f.paths()), nil), ("GET", "/auth/me", nil), ("GET", "/wallet", nil),
            ("POST", "/wallet/topup", "{\"amountPaise\":\(int(1, 500))}"), ("POST", "/orders/create", order),
            ("POST", "/orders/\(f.orderId)/cancel", nil), ("POST", "/auth/refresh", "{\"refreshToken\":\"rt_garbage\"}"),
            // Bodies that fail validation before any password hash: the fuzzer must not become
            // a sign-up flood (a different defect, with its own test).
            ("POST", "/auth/login", "{}"), ("POST", "/auth/register", "{\"email\":1}"), ("POST", "/kyc", "{}"),
            ("POST", "/auth/logout", "{\"refreshToken\":\"x\"}"),
        ]
        let r = pick(routes)
        return (r.0, r.1, r.2.map(u))
    }

    /// Headers a normal client would send for this route.
    mutating func baseHeaders(body: [UInt8]?) -> [([UInt8], [UInt8])] {
        var h: [([UInt8], [UInt8])] = [(u("Host"), u("127.0.0.1"))]
        if chance(0.8) { h.append((u("Authorization"), u("Bearer \(f.token)"))) }
        if body != nil {
            h.append((u("Content-Type"), u("application/json")))
            h.append((u("Idempotency-Key"), u("fz-\(int(0, 1 << 30))")))
        }
        if chance(0.3) { h.append((u("X-Request-Id"), u("fz-\(int(0, 1 << 30))"))) }
        return h
    }

    func assemble(_ line: [UInt8], _ headers: [([UInt8], [UInt8])], _ body: [UInt8], eol: [UInt8] = [13, 10]) -> [UInt8] {
        var out = line + eol
        for (k, v) in headers { out += k + u(": ") + v + eol }
        return out + eol + body
    }

    func line(_ m: String, _ t: String, _ v: String = "HTTP/1.1") -> [UInt8] { u(v.isEmpty ? "\(m) \(t)" : "\(m) \(t) \(v)") }

    /// A well-formed request with Content-Length framing.
    mutating func plain(allowHead: Bool = false) -> ([UInt8], String) {
        var (m, p, body) = route()
        if allowHead && m == "GET" && chance(0.15) { m = "HEAD"; headOnly = true }
        var h = baseHeaders(body: body)
        if let b = body { h.append((u("Content-Length"), u("\(b.count)"))) }
        if chance(0.3) { h.append((u("Connection"), u(pick(["close", "keep-alive"])))) }
        return (assemble(line(m, p), h, body ?? []), "\(m) \(p)")
    }

    // MARK: - generators

    mutating func valid() -> [UInt8] {
        let (b, what) = plain(allowHead: true)
        notes.append("valid \(what)")
        return b
    }

    mutating func requestLine() -> [UInt8] {
        var m = pick(HTTPFuzzer.methods), t = pick(f.paths()), v = "HTTP/1.1"
        switch int(0, 4) {
        case 0:
            m = pick(HTTPFuzzer.oddMethods)
            also5xx.insert(501)
        case 1: t = pick(HTTPFuzzer.oddTargets)
        case 2:
            v = pick(HTTPFuzzer.oddVersions)
            also5xx.insert(505)
        case 3:
            // Odd separators between the parts.
            let sep = pick(["  ", "\t", " \u{0B}", "\u{0C}", "\r", " \r "])
            notes.append("request line `\(HTTPWire.escape(u("\(m)\(sep)\(t)\(sep)\(v)"), limit: 120))`")
            return assemble(u("\(m)\(sep)\(t)\(sep)\(v)"), [(u("Host"), u("127.0.0.1"))], [])
        default:
            m = pick(HTTPFuzzer.oddMethods)
            t = pick(HTTPFuzzer.oddTargets)
            v = pick(HTTPFuzzer.oddVersions)
            also5xx = [501, 505]
        }
        var h = baseHeaders(body: nil)
        if chance(0.3) { h.append((u("Connection"), u("close"))) }
        let lead: [UInt8] = chance(0.1) ? pick([u("\r\n"), u("\r\n\r\n"), u(" "), [0]]) : []
        notes.append("request line \(m) \(t.prefix(80)) \(v)\(lead.isEmpty ? "" : " after \(lead.count) leading bytes")")
        return lead + assemble(line(m, t, v), h, [])
    }

    mutating func headers() -> [UInt8] {
        let (m, p, body) = route()
        var h = baseHeaders(body: body)
        var eol: [UInt8] = [13, 10]
        let n = int(1, 3)
        for _ in 0..<n {
            switch int(0, 15) {
            case 0:
                let i = int(0, h.count - 1)
                h.insert(h[i], at: int(0, h.count))
                notes.append("duplicate \(String(decoding: h[i].0, as: UTF8.self))")
            case 1:
                let i = int(0, h.count - 1)
                h[i].1 += pick([[0], u("\u{0}garbage"), [1], [0x1B], [0x7F], [0x0B], [0x0C]])
                notes.append("control byte in \(String(decoding: h[i].0, as: UTF8.self))")
            case 2:
                let i = int(0, h.count - 1)
                h[i].1 += pick([u("\r\nX-Injected: 1"), u("\nX-Injected: 1"), u("\rX-Injected: 1"), u("\r\n\r\nGET /readyz HTTP/1.1"), u("\r")])
                notes.append("CR/LF injection in \(String(decoding: h[i].0, as: UTF8.self))")
            case 3:
                h.append((u("X-Fold"), u("a\r\n b")))
                if chance(0.5) { h.append((u("Authorization"), u("Bearer\r\n \(f.token)"))) }
                notes.append("obs-fold")
            case 4:
                h.append((u(pick(["Host ", "Content-Length ", "Transfer-Encoding ", "X-A\t"])), u("5")))
                notes.append("whitespace before the colon")
            case 5:
                h.append((u(pick(HTTPFuzzer.oddHeaderNames)), u("v")))
                notes.append("odd header name")
            case 6:
                h.append((u("X-Big"), [UInt8](repeating: 0x61, count: pick([8 * 1024, 17 * 1024, 70 * 1024, 200 * 1024]))))
                notes.append("a big header")
            case 7:
                for i in 0..<pick([50, 101, 200, 1000]) { h.append((u("X-H\(i)"), u("v\(i)"))) }
                notes.append("many headers")
            case 8:
                h.removeAll { $0.0 == u("Host") }
                if chance(0.5) { h.append((u("Host"), u(pick(["", "a b", "evil.example", "[::1", "127.0.0.1:99999", "x:1:2", "ä"])))) }
                notes.append("odd or missing Host")
            case 9:
                h.append((u("Authorization"), u(pick(["Bearer", "Bearer ", "Basic YTpi", "bearer \(f.token)", "Bearer \(f.token) x",
                                                       "Bearer " + String(repeating: "A", count: 9000), "Bearer a.b.c", "Bearer ..",
                                                       "Bearer \(f.token.dropLast(3))", "Bearer e30.e30."]))))
                notes.append("odd Authorization")
            case 10:
                h.append((u(pick(["Connection", "Upgrade", "Expect", "TE", "Trailer", "Keep-Alive", "Range", "If-None-Match", "Cookie"])),
                          u(pick(["close", "Upgrade", "websocket", "h2c", "100-continue", "200-ok", "trailers", "timeout=0, max=-1",
                                  "bytes=0-1", "bytes=-99999999999999999999", "*", "oops_session=\(String(repeating: "z", count: 4000))",
                                  "close, close", "keep-alive, close"]))))
                notes.append("hop-by-hop or conditional header")
            case 11:
                h.append((u("X-Request-Id"), u(pick([String(repeating: "x", count: 500), "a b", "<script>", "ä", "id\u{0}", "", "\"", "a,b"]))))
                notes.append("odd X-Request-Id")
            case 12:
                h.append((u("X-Obs"), [0x80, 0xFF, 0xC3, 0xA4, 0xFE]))
                notes.append("obs-text in a value")
            case 13:
                eol = pick([[10], [13], [10, 13]])
                notes.append("line ends \(eol == [10] ? "LF" : eol == [13] ? "CR" : "LFCR")")
            case 14:
                h.insert((u(" Host"), u("127.0.0.1")), at: 0)
                notes.append("whitespace before the first header")
            default:
                h.append((u("Content-Type"), u(pick(["text/plain", "application/json; charset=utf-16", "application/jsonx", "", "multipart/form-data; boundary=x",
                                                     "application/json\u{0}"]))))
                notes.append("odd Content-Type")
            }
        }
        let b = body ?? []
        if !b.isEmpty || m == "POST" { h.append((u("Content-Length"), u("\(b.count)"))) }
        notes.insert("headers on \(m) \(p)", at: 0)
        return assemble(line(m, p), h, b, eol: eol)
    }

    mutating func framing() -> [UInt8] {
        let (_, p, body) = route()
        var b = body ?? u("{}")
        var h = baseHeaders(body: b)
        let smuggle = u("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        if chance(0.4) { b += smuggle }
        switch int(0, 5) {
        case 0:
            let v = pick(HTTPFuzzer.lengths)
            h.append((u("Content-Length"), u(v)))
            notes.append("Content-Length \(v.prefix(30))")
        case 1:
            let a = pick(["0", "\(b.count)", "\(max(0, b.count - smuggle.count))", "5"]), c = pick(["0", "\(b.count)", "\(b.count + 10)"])
            h.append((u("Content-Length"), u(a)))
            h.append((u("Content-Length"), u(c)))
            notes.append("Content-Length \(a) and \(c)")
        case 2:
            let te = pick(HTTPFuzzer.transferEncodings)
            if te.lowercased() != "chunked" { also5xx.insert(501) }
            h.append((u("Transfer-Encoding"), u(te)))
            if chance(0.5) { h.append((u("Content-Length"), u(pick(["5", "0", "\(b.count)"])))) }
            b = chance(0.5) ? chunk(b) : u("0\r\n\r\n") + b
            notes.append("Transfer-Encoding \(te)")
        case 3:
            h.append((u("Transfer-Encoding"), u("chunked")))
            h.append((u("Transfer-Encoding"), u(pick(["chunked", "identity", "gzip"]))))
            also5xx.insert(501)
            b = chunk(b)
            notes.append("two Transfer-Encoding fields")
        case 4:
            // A length that promises more or less than what follows.
            let delta = pick([-100, -1, 1, 100, 100_000])
            h.append((u("Content-Length"), u("\(max(0, b.count + delta))")))
            notes.append("Content-Length off by \(delta)")
        default:
            h.append((u("Content-Length"), u("\(b.count)")))
            h.append((u("Expect"), u("100-continue")))
            if chance(0.5) { b = [] }
            notes.append("Expect: 100-continue")
        }
        notes.insert("framing on POST \(p)", at: 0)
        return assemble(line("POST", p), h, b)
    }

    /// `data` as a well-formed chunked body.
    mutating func chunk(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < data.count {
            let n = min(data.count - i, int(1, 64))
            out += u(String(n, radix: 16)) + [13, 10] + data[i..<i + n] + [13, 10]
            i += n
        }
        return out + u("0\r\n\r\n")
    }

    mutating func chunked() -> [UInt8] {
        let (_, p, body) = route()
        let data = body ?? u("{}")
        var h = baseHeaders(body: data)
        h.append((u("Transfer-Encoding"), u("chunked")))
        let size = String(data.count, radix: 16)
        let variants: [(String, [UInt8])] = [
            ("well-formed", chunk(data)),
            ("upper-case hex and leading zeros", u("000" + size.uppercased() + "\r\n") + data + u("\r\n0\r\n\r\n")),
            ("chunk extensions", u(size + ";a=b;c=\"d\"\r\n") + data + u("\r\n0;x\r\n\r\n")),
            ("a bare ';' extension", u(size + ";\r\n") + data + u("\r\n0\r\n\r\n")),
            ("BWS before the extension", u(size + " ;a\r\n") + data + u("\r\n0\r\n\r\n")),
            ("a size with trailing space", u(size + " \r\n") + data + u("\r\n0\r\n\r\n")),
            ("a size that is not hex", u("zz\r\n") + data + u("\r\n0\r\n\r\n")),
            ("a negative size", u("-1\r\n") + data + u("\r\n0\r\n\r\n")),
            ("0x prefix", u("0x" + size + "\r\n") + data + u("\r\n0\r\n\r\n")),
            ("a size over 2^64", u("FFFFFFFFFFFFFFFFFFFFFF\r\n") + data + u("\r\n0\r\n\r\n")),
            ("a size of 2^63", u("8000000000000000\r\n") + data + u("\r\n0\r\n\r\n")),
            ("a size beyond the limit", u("100001\r\n") + data),
            ("no CRLF after the data", u(size + "\r\n") + data + u("0\r\n\r\n")),
            ("more data than the size", u("1\r\n") + data + u("\r\n0\r\n\r\n")),
            ("LF-only chunk lines", u(size + "\n") + data + u("\n0\n\n")),
            ("no last chunk", u(size + "\r\n") + data + u("\r\n")),
            ("no end of the trailer section", u(size + "\r\n") + data + u("\r\n0\r\n")),
            ("trailers", u(size + "\r\n") + data + u("\r\n0\r\nX-Trailer: 1\r\nContent-Length: 5\r\n\r\n")),
            ("a trailer with a NUL", u(size + "\r\n") + data + u("\r\n0\r\nX-T: a\u{0}b\r\n\r\n")),
            ("a huge extension", u(size + ";" + String(repeating: "e", count: 100_000) + "\r\n") + data + u("\r\n0\r\n\r\n")),
            ("a long run of zeros", u(String(repeating: "0", count: 5000) + "1\r\nx\r\n0\r\n\r\n")),
            ("many empty-looking chunks", Array((0..<2000).map { _ in "1\r\n \r\n" }.joined().utf8) + u("0\r\n\r\n")),
            ("a smuggled request after the last chunk", chunk(data) + u("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")),
            ("over the body limit", Array((0..<17).map { _ in "10000\r\n" + String(repeating: " ", count: 65536) + "\r\n" }.joined().utf8) + u("0\r\n\r\n")),
        ]
        let (what, b) = pick(variants)
        notes.append("chunked body on POST \(p): \(what)")
        return assemble(line("POST", p), h, b)
    }

    mutating func body() -> [UInt8] {
        let p = pick(["/wallet/topup", "/orders/create", "/auth/login", "/auth/register", "/auth/refresh", "/kyc", "/auth/logout"])
        let b = pick(HTTPFuzzer.bodies)
        var h = baseHeaders(body: b)
        h.append((u("Content-Length"), u("\(b.count)")))
        notes.append("body on POST \(p): \(HTTPWire.escape(b, limit: 60))")
        return assemble(line("POST", p), h, b)
    }

    mutating func pipeline() -> [UInt8] {
        var out: [UInt8] = []
        var what: [String] = []
        for i in 0..<int(2, 4) {
            if i > 0 && chance(0.25) {
                let m = mutate(plain().0)
                out += m
                what.append("mutated")
            } else {
                let (b, w) = plain()
                out += b
                what.append(w)
            }
        }
        if chance(0.2) {
            out += u("POST /wallet/topup HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50\r\n\r\n{")
            what.append("an incomplete one")
        }
        notes.append("pipelined: \(what.joined(separator: "; "))")
        also5xx = [501, 505]
        return out
    }

    mutating func truncated() -> [UInt8] {
        let (b, what) = plain()
        let cut = int(1, b.count - 1)
        notes.append("\(what) cut at \(cut) of \(b.count)")
        return Array(b[0..<cut])
    }

    /// Random byte-level edits of `b`.
    mutating func mutate(_ b: [UInt8]) -> [UInt8] {
        var b = b
        let special: [UInt8] = [0, 9, 10, 13, 32, 0x3A, 0x25, 0x7F, 0xFF, 0x2C, 0x3B, 0x22]
        for _ in 0..<int(1, 8) where !b.isEmpty {
            let i = int(0, b.count - 1)
            switch int(0, 4) {
            case 0: b[i] ^= UInt8(1 << int(0, 7))
            case 1: b.insert(pick(special), at: i)
            case 2: b.remove(at: i)
            case 3:
                let n = min(int(1, 32), b.count - i)
                b.insert(contentsOf: b[i..<i + n], at: i)
            default: b[i] = pick(special)
            }
        }
        return b
    }

    mutating func mutated() -> [UInt8] {
        let (b, what) = plain()
        notes.append("byte edits of \(what)")
        also5xx = [501, 505]
        return mutate(b)
    }

    mutating func garbage() -> [UInt8] {
        also5xx = [501, 505]
        switch int(0, 3) {
        case 0:
            notes.append("random bytes")
            return (0..<int(1, 512)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        case 1:
            notes.append("random printable text")
            return (0..<int(1, 512)).map { _ in pick(Array(" !\"#%&'()*+,-./0123456789:;<=>?@ABCZabcz[]\\^_`{|}~\r\n\t".utf8)) }
        case 2:
            notes.append("the HTTP/2 connection preface")
            return u("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + [0, 0, 0, 4, 0, 0, 0, 0, 0]
        default:
            notes.append("a TLS ClientHello")
            return [0x16, 0x03, 0x01, 0x00, 0xA5, 0x01, 0x00, 0x00, 0xA1, 0x03, 0x03] + (0..<64).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        }
    }
}
