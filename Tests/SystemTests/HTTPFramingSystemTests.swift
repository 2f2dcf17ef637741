import XCTest
import Foundation
import JSON
import Runtime
import TestSupport

/// HTTP/1.1 message syntax and framing at the Gateway (RFC 9112), over raw sockets since a
/// client library would normalise these requests: request smuggling through conflicting
/// lengths, control characters in the path, query and header values, the Host rules, refusals
/// the HTTP layer makes itself (431, 400, 413) and chunked bodies over the limit. Every refusal
/// is the Gateway's JSON error with `X-Request-Id` in one well-formed answer (`HTTPWire`).
final class HTTPFramingSystemTests: XCTestCase {
    nonisolated(unsafe) static var system: OOPSSystem?
    nonisolated(unsafe) static var merchant: (userId: String, token: String)?
    var sys: OOPSSystem { Self.system! }
    var token: String { Self.merchant!.token }
    /// The Gateway's default body limit, which this system keeps.
    static let maxBody = 1 << 20

    override class func setUp() {
        do {
            let s = try OOPSSystem(extraEnv: ["OOPS_RATE_USER_PER_S": "100000", "OOPS_RATE_USER_BURST": "100000"])
            system = s
            merchant = s.merchant("framing")
        } catch {
            XCTFail("system did not start: \(error)")
        }
    }

    override class func tearDown() {
        system?.stop()
        system = nil
    }

    override func setUpWithError() throws {
        try XCTSkipIf(Self.system == nil, "system did not start")
        XCTAssertFalse(token.isEmpty, "the merchant fixture was not created")
    }

    // MARK: - helpers

    /// A request from its head lines (CRLF added; they may hold any byte, NULs included) and body.
    func wire(_ lines: [String], _ body: [UInt8] = []) -> [UInt8] {
        Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8) + body
    }

    /// Sends `bytes` on a fresh connection and reads what comes back. `quietS`: how long to
    /// wait after an answer for another one (or the close).
    func exchange(_ bytes: [UInt8], headOnly: Bool = false, quietS: Double = 1) -> Exchange {
        guard let c = try? RawHTTPConnection(port: sys.httpPort) else {
            return Exchange(answers: [], problems: ["cannot connect to the Gateway"], closed: true)
        }
        c.send(bytes)
        return c.readAnswers(headOnly: headOnly, firstS: 15, quietS: quietS)
    }

    /// `bytes` get exactly one answer, a well-formed JSON refusal with one of `statuses`; with
    /// `close`, the server then closes the connection (and answers nothing else).
    @discardableResult
    func assertRefused(_ bytes: [UInt8], _ statuses: Set<Int>, close: Bool, _ what: String,
                       file: StaticString = #filePath, line: UInt = #line) -> RawResponse? {
        // After a refusal that closes, wait long for the close; otherwise a second answer (the
        // smuggled request's) would come within a second.
        let ex = exchange(bytes, quietS: close ? 10 : 1)
        let req = "request: \(HTTPWire.escape(bytes, limit: 600))"
        XCTAssertEqual(ex.problems, [], "\(what): malformed answer. \(req)", file: file, line: line)
        guard let r = ex.answers.first else {
            XCTFail("\(what): no answer (connection \(ex.closed ? "closed" : "left open")), want \(statuses.sorted()). \(req)", file: file, line: line)
            return nil
        }
        XCTAssertTrue(statuses.contains(r.status), "\(what): status \(r.status), want \(statuses.sorted()): \(HTTPWire.escape(r.body, limit: 300)). \(req)", file: file, line: line)
        XCTAssertEqual(HTTPWire.gatewayProblems(r), [], "\(what). \(req)", file: file, line: line)
        if ex.answers.count > 1 {
            XCTFail("\(what): \(ex.answers.count) answers to one request; the next was \(ex.answers[1].status) \(HTTPWire.escape(ex.answers[1].body, limit: 200)). \(req)",
                    file: file, line: line)
        }
        if close { XCTAssertTrue(ex.closed, "\(what): the connection stayed open after the refusal. \(req)", file: file, line: line) }
        return r
    }

    /// `bytes` get exactly one well-formed answer with `status`.
    @discardableResult
    func assertServed(_ bytes: [UInt8], _ status: Int, _ what: String, file: StaticString = #filePath, line: UInt = #line) -> RawResponse? {
        let ex = exchange(bytes)
        let req = "request: \(HTTPWire.escape(bytes, limit: 600))"
        XCTAssertEqual(ex.problems, [], "\(what): malformed answer. \(req)", file: file, line: line)
        XCTAssertEqual(ex.answers.count, 1, "\(what): \(ex.answers.map(\.status)) answers. \(req)", file: file, line: line)
        guard let r = ex.answers.first else { return nil }
        XCTAssertEqual(r.status, status, "\(what): \(HTTPWire.escape(r.body, limit: 300)). \(req)", file: file, line: line)
        XCTAssertEqual(HTTPWire.gatewayProblems(r), [], "\(what). \(req)", file: file, line: line)
        return r
    }

    func balance() -> Int64? {
        rawRequest(port: sys.httpPort, "GET", "/wallet", token: token).json["balancePaise"]?.intValue
    }

    /// A complete top-up of 100 paise for the fixture merchant: a smuggled request whose effect
    /// shows in the wallet even if its answer is never read.
    func smuggledTopUp(_ key: String) -> [UInt8] {
        let body = Array("{\"amountPaise\":100}".utf8)
        return wire(["POST /wallet/topup HTTP/1.1", "Host: 127.0.0.1", "Authorization: Bearer \(token)", "Content-Type: application/json",
                     "Idempotency-Key: \(key)", "Content-Length: \(body.count)"], body)
    }

    // MARK: - defect 4: request smuggling

    /// RFC 9112 section 6.3: differing Content-Length values make the framing invalid; the
    /// server answers 400 and closes, and the request hidden in the body is never served.
    func testConflictingContentLengthsAre400AndTheSmuggledRequestIsNeverServed() throws {
        let before = try XCTUnwrap(balance())
        let hidden = smuggledTopUp("smuggle-cl-\(UInt32.random(in: 0...UInt32.max))")
        let login = ["POST /auth/login HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
        let cases: [(String, [String])] = [
            ("0 then the body's length", ["Content-Length: 0", "Content-Length: \(hidden.count)"]),
            ("the body's length then 0", ["Content-Length: \(hidden.count)", "Content-Length: 0"]),
            ("one field with two values", ["Content-Length: 0, \(hidden.count)"]),
            ("one field with two values, reversed", ["Content-Length: \(hidden.count), 0"]),
        ]
        for (what, lengths) in cases {
            assertRefused(wire(login + lengths, hidden), [400], close: true, "Content-Length \(what)")
        }
        // A hidden plain GET too: what the issue saw answered 200.
        let readyz = wire(["GET /readyz HTTP/1.1", "Host: 127.0.0.1"])
        assertRefused(wire(login + ["Content-Length: 0", "Content-Length: \(readyz.count)"], readyz), [400], close: true, "hidden GET /readyz")
        XCTAssertEqual(balance(), before, "a smuggled top-up was served")
    }

    /// Content-Length with Transfer-Encoding: chunked: 400 and close (RFC 9112 section 6.3 lets a
    /// server refuse it and requires the close either way), whichever length the server believes.
    func testContentLengthWithChunkedIs400AndTheSmuggledRequestIsNeverServed() throws {
        let before = try XCTUnwrap(balance())
        let hidden = smuggledTopUp("smuggle-te-\(UInt32.random(in: 0...UInt32.max))")
        let lastChunk = Array("0\r\n\r\n".utf8)
        let login = ["POST /auth/login HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
        // Content-Length covers only the last chunk: a server reading either length finishes
        // the body there and would take the top-up as the next request.
        let cases: [(String, [String])] = [
            ("CL then TE", ["Content-Length: \(lastChunk.count)", "Transfer-Encoding: chunked"]),
            ("TE then CL", ["Transfer-Encoding: chunked", "Content-Length: \(lastChunk.count)"]),
            ("TE in capitals", ["Content-Length: \(lastChunk.count)", "Transfer-Encoding: CHUNKED"]),
            ("CL covering everything", ["Transfer-Encoding: chunked", "Content-Length: \(lastChunk.count + hidden.count)"]),
        ]
        for (what, framing) in cases {
            assertRefused(wire(login + framing, lastChunk + hidden), [400], close: true, what)
        }
        XCTAssertEqual(balance(), before, "a smuggled top-up was served")
    }

    /// Identical duplicates may be refused (400 and close) or read as one value; never two answers.
    func testIdenticalDuplicateContentLengthsAreRefusedOrReadAsOne() {
        let body = Array("{}".utf8)
        for lengths in [["Content-Length: 2", "Content-Length: 2"], ["Content-Length: 2, 2"]] {
            let bytes = wire(["POST /auth/login HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", "Connection: close"] + lengths, body)
            let ex = exchange(bytes, quietS: 10)
            XCTAssertEqual(ex.problems, [], "\(lengths)")
            XCTAssertEqual(ex.answers.count, 1, "\(lengths): \(ex.answers.map(\.status))")
            guard let r = ex.answers.first else { continue }
            // Read as one: the login is refused by validation (no email, no password).
            XCTAssertTrue([400].contains(r.status), "\(lengths): \(r.status) \(r.text)")
            XCTAssertEqual(HTTPWire.gatewayProblems(r), [], "\(lengths)")
            XCTAssertTrue(ex.closed, "\(lengths): asked to close")
        }
    }

    /// RFC 9112 section 6.3: a Transfer-Encoding whose final coding is not chunked leaves the
    /// length unknown (400 and close), as does Transfer-Encoding on HTTP/1.0 (section 6.1:
    /// faulty framing, close). Not in the issue's list; MUSTs of the same section.
    func testTransferEncodingWithoutFinalChunkedOrOnHTTP10IsRefusedAndClosed() throws {
        let before = try XCTUnwrap(balance())
        let hidden = smuggledTopUp("smuggle-te10-\(UInt32.random(in: 0...UInt32.max))")
        for te in ["chunked, gzip", "chunked, identity", "gzip"] {
            assertRefused(wire(["POST /auth/login HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", "Transfer-Encoding: \(te)"],
                               Array("0\r\n\r\n".utf8) + hidden), [400, 501], close: true, "Transfer-Encoding: \(te)")
        }
        assertRefused(wire(["POST /auth/login HTTP/1.0", "Host: 127.0.0.1", "Content-Type: application/json", "Transfer-Encoding: chunked",
                            "Connection: keep-alive"], Array("0\r\n\r\n".utf8) + hidden), [400], close: true, "Transfer-Encoding on HTTP/1.0")
        XCTAssertEqual(balance(), before, "a smuggled top-up was served")
    }

    /// RFC 9112 section 5.1: whitespace between a field name and the colon is refused with 400
    /// (`Transfer-Encoding : chunked` is a known smuggling vector); section 2.2: a line starting
    /// with whitespace right after the request line is refused or ignored, never read as a field.
    /// Not in the issue's list; MUSTs of RFC 9112.
    func testWhitespaceBeforeTheColonIs400() throws {
        let before = try XCTUnwrap(balance())
        let hidden = smuggledTopUp("smuggle-ws-\(UInt32.random(in: 0...UInt32.max))")
        // GET /healthz would be served (200) by a server that ignored the field.
        for field in ["Transfer-Encoding : chunked", "Content-Length : 5", "Transfer-Encoding\t: chunked"] {
            assertRefused(wire(["GET /healthz HTTP/1.1", "Host: 127.0.0.1", field],
                               Array("0\r\n\r\n".utf8) + hidden), [400], close: true, field)
        }
        XCTAssertEqual(balance(), before, "a smuggled top-up was served")
        let folded = exchange(wire(["GET /auth/me HTTP/1.1", " Authorization: Bearer \(token)", "Host: 127.0.0.1", "Connection: close"]))
        XCTAssertEqual(folded.problems, [])
        if let r = folded.answers.first {
            XCTAssertTrue([400, 401].contains(r.status), "a whitespace-preceded first line was read as a field: \(r.status) \(HTTPWire.escape(r.body, limit: 200))")
            XCTAssertEqual(HTTPWire.gatewayProblems(r), [])
        }
    }

    // MARK: - defect 5: control characters in the target

    func testControlCharacterInThePathIs400() {
        let me = rawRequest(port: sys.httpPort, "GET", "/auth/me", token: token)
        XCTAssertEqual(me.status, 200, me.text)
        let email = me.json["email"]?.stringValue ?? "@"
        let paths = ["/auth/me%00.js", "/wallet%00/x.png", "/orders/%00/cancel", "/auth/me%00", "/auth/me%01", "/auth/me%1f", "/auth/me%1F",
                     "/auth/me%7f", "/auth/me%0a", "/auth/me%0D%0AX-Injected:%201", "/auth/me%09", "/wallet/%00", "/healthz%00", "/orders%00"]
        for p in paths {
            let bytes = wire(["GET \(p) HTTP/1.1", "Host: 127.0.0.1", "Authorization: Bearer \(token)", "Connection: close"])
            let r = assertRefused(bytes, [400], close: false, "GET \(p)")
            XCTAssertFalse(r?.text.contains(email) ?? false, "GET \(p) served the profile")
            XCTAssertNil(r?.json["balancePaise"], "GET \(p) served the wallet")
            XCTAssertNil(r?.header("X-Injected"), "GET \(p) injected a header")
        }
        // The raw bytes, undecoded, are not a request-target at all (RFC 9112 section 3.2).
        for raw in ["\u{0}", "\u{1}", "\u{1B}", "\u{7F}"] {
            let bytes = wire(["GET /auth/me\(raw).js HTTP/1.1", "Host: 127.0.0.1", "Authorization: Bearer \(token)", "Connection: close"])
            assertRefused(bytes, [400], close: false, "a raw \(HTTPWire.escape(Array(raw.utf8))) in the target")
        }
    }

    func testControlCharacterInTheQueryIs400() {
        // Parameters each route ignores or accepts, so only the control character can refuse them.
        let targets = ["/auth/me?q=%00", "/auth/me?q=a%00b", "/wallet?x=a%01b", "/healthz?%7F=1", "/orders?status=enqueued%00",
                       "/orders?status=%0D%0AX-Injected:%201", "/auth/me?q=%1b%5b31m"]
        for t in targets {
            let bytes = wire(["GET \(t) HTTP/1.1", "Host: 127.0.0.1", "Authorization: Bearer \(token)", "Connection: close"])
            let r = assertRefused(bytes, [400], close: false, "GET \(t)")
            XCTAssertNil(r?.header("X-Injected"), "GET \(t) injected a header")
        }
        // The same routes without the control character are served: the refusals above are not
        // about the parameters themselves.
        for t in ["/auth/me?q=a", "/wallet?x=ab", "/healthz?q=1"] {
            assertServed(wire(["GET \(t) HTTP/1.1", "Host: 127.0.0.1", "Authorization: Bearer \(token)", "Connection: close"]), 200, "GET \(t)")
        }
    }

    // MARK: - defect 6: header values and Host

    func testNULInTheAuthorizationHeaderIs400NotAnotherTokensAccess() {
        for tail in ["\u{0}garbage", "\u{0}", "\u{1}x", "\u{7F}"] {
            let bytes = wire(["GET /auth/me HTTP/1.1", "Host: 127.0.0.1", "Authorization: Bearer \(token)\(tail)", "Connection: close"])
            let r = assertRefused(bytes, [400], close: false, "Authorization with \(HTTPWire.escape(Array(tail.utf8)))")
            XCTAssertNil(r?.json["email"], "authenticated despite the control character")
        }
        // HTAB is whitespace, not a control character the grammar forbids (RFC 9110 section 5.5).
        assertServed(wire(["GET /auth/me HTTP/1.1", "Host: 127.0.0.1", "Authorization: Bearer \(token)\t", "X-Note: a\tb", "Connection: close"]),
                     200, "a tab in header values")
    }

    func testNULInTheIdempotencyKeyIs400AndChargesNothing() throws {
        let before = try XCTUnwrap(balance())
        let key = "nul-\(UInt32.random(in: 0...UInt32.max))"
        let body = Array("{\"amountPaise\":100}".utf8)
        for suffix in ["\u{0}a", "\u{0}b"] {
            let bytes = wire(["POST /wallet/topup HTTP/1.1", "Host: 127.0.0.1", "Authorization: Bearer \(token)", "Content-Type: application/json",
                              "Idempotency-Key: \(key)\(suffix)", "Content-Length: \(body.count)", "Connection: close"], body)
            assertRefused(bytes, [400], close: false, "Idempotency-Key with \(HTTPWire.escape(Array(suffix.utf8)))")
        }
        XCTAssertEqual(balance(), before, "a top-up with a NUL in its key was applied")
        // The same top-up with a clean key is applied: the refusals were about the NUL alone.
        let ok = rawRequest(port: sys.httpPort, "POST", "/wallet/topup", token: token, json: ["amountPaise": 100], headers: [("Idempotency-Key", key + "a")])
        XCTAssertEqual(ok.status, 201, ok.text)
        XCTAssertEqual(balance(), before + 100)
    }

    func testControlCharacterInAnyHeaderValueIs400() {
        let cases: [(String, [String])] = [
            ("X-Request-Id", ["GET /healthz HTTP/1.1", "Host: 127.0.0.1", "X-Request-Id: abc\u{0}def"]),
            ("a custom header", ["GET /healthz HTTP/1.1", "Host: 127.0.0.1", "X-Anything: a\u{1}b"]),
            ("an escape sequence", ["GET /healthz HTTP/1.1", "Host: 127.0.0.1", "X-Anything: \u{1B}[31mred"]),
            ("DEL", ["GET /healthz HTTP/1.1", "Host: 127.0.0.1", "X-Anything: a\u{7F}"]),
            ("Content-Type", ["POST /auth/login HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json\u{0}x", "Content-Length: 2"]),
            ("Host", ["GET /healthz HTTP/1.1", "Host: 127.0.0.1\u{0}.evil"]),
        ]
        for (what, lines) in cases {
            let body: [UInt8] = lines[0].hasPrefix("POST") ? Array("{}".utf8) : []
            assertRefused(wire(lines + ["Connection: close"], body), [400], close: false, "a control character in \(what)")
        }
    }

    /// RFC 9112 section 3.2: an HTTP/1.1 request without Host, or with more than one, is 400.
    func testHostMustBeThereExactlyOnceOnHTTP11() {
        assertRefused(wire(["GET /healthz HTTP/1.1", "Connection: close"]), [400], close: false, "no Host on HTTP/1.1")
        assertRefused(wire(["GET /healthz HTTP/1.1", "Host: 127.0.0.1", "Host: 127.0.0.1", "Connection: close"]), [400], close: false, "two identical Hosts")
        assertRefused(wire(["GET /healthz HTTP/1.1", "Host: 127.0.0.1", "Host: evil.example", "Connection: close"]), [400], close: false, "two Hosts")
        assertRefused(wire(["GET /auth/me HTTP/1.1", "Host: a", "Authorization: Bearer \(token)", "Host: b", "Connection: close"]), [400], close: false,
                      "two Hosts around a token")
        // HTTP/1.0 has no Host requirement.
        assertServed(wire(["GET /healthz HTTP/1.0"]), 200, "HTTP/1.0 without Host")
    }

    /// RFC 9112 section 3.2 also refuses a Host field with an invalid value (not in the
    /// contract list of issue 18, but a MUST of the same sentence).
    func testHostWithAnInvalidValueIs400() {
        for bad in ["a b", "exa mple.com:80", "host:port:x", "[::1"] {
            assertRefused(wire(["GET /healthz HTTP/1.1", "Host: \(bad)", "Connection: close"]), [400], close: false, "Host: \(bad)")
        }
    }

    // MARK: - defect 7: refusals by the HTTP layer follow the contract

    func testTooLargeHeadersAre431AsJSONWithARequestId() {
        let big = String(repeating: "a", count: 70 * 1024)
        assertRefused(wire(["GET /healthz HTTP/1.1", "Host: 127.0.0.1", "X-Big: \(big)", "Connection: close"]), [431], close: false, "a 70 KB header")
        let many = (0..<200).map { "X-Header-\($0): value-\($0)" }
        assertRefused(wire(["GET /healthz HTTP/1.1", "Host: 127.0.0.1"] + many + ["Connection: close"]), [431], close: false, "200 headers")
    }

    /// An invalid Content-Length is a framing error: 400 and close (RFC 9112 section 6.3).
    func testInvalidContentLengthIs400AndClose() {
        let next = wire(["GET /readyz HTTP/1.1", "Host: 127.0.0.1"])
        for v in ["-1", "+5", "0x5", "5 5", "1e3", "", "5;", "٥"] {
            assertRefused(wire(["POST /auth/login HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", "Content-Length: \(v)"], next),
                          [400], close: true, "Content-Length: \(v)")
        }
    }

    /// A Content-Length beyond any integer is too large, not a parse failure; the body (here a
    /// request) is never read as the next request.
    func testContentLengthBeyond2To64Is413AsJSON() {
        let next = wire(["GET /readyz HTTP/1.1", "Host: 127.0.0.1"])
        for v in ["99999999999999999999999", "18446744073709551616", "18446744073709551615", "9223372036854775808", String(Self.maxBody + 1)] {
            let r = assertRefused(wire(["POST /auth/login HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", "Content-Length: \(v)"], next),
                                  [413], close: false, "Content-Length: \(v)")
            XCTAssertEqual(r?.errorCode, "payload_too_large", "Content-Length: \(v)")
        }
    }

    // MARK: - defect 8: chunked bodies over the limit

    func testChunkedBodyOverTheLimitGetsTheJSON413LikeContentLength() throws {
        let chunk = [UInt8](repeating: 0x20, count: 64 * 1024)
        let c = try RawHTTPConnection(port: sys.httpPort)
        c.send(wire(["POST /auth/login HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", "Transfer-Encoding: chunked"]))
        var sent = 0
        // Stop when the server has stopped reading and closed.
        while sent <= Self.maxBody, c.send(Array(String(chunk.count, radix: 16).utf8) + [13, 10] + chunk + [13, 10]) { sent += chunk.count }
        c.send(Array("0\r\n\r\n".utf8))
        let ex = c.readAnswers(quietS: 5)
        XCTAssertEqual(ex.problems, [])
        let r = try XCTUnwrap(ex.answers.first, "a chunked body of \(sent) bytes got no answer (closed: \(ex.closed))")
        XCTAssertEqual(ex.answers.count, 1)
        XCTAssertEqual(r.status, 413, r.text)
        XCTAssertEqual(r.errorCode, "payload_too_large")
        XCTAssertEqual(HTTPWire.gatewayProblems(r), [])

        // The same size with Content-Length: the same answer.
        let same = rawRequest(port: sys.httpPort, "POST", "/auth/login", body: [UInt8](repeating: 0x20, count: Self.maxBody + 1),
                              headers: [("Content-Type", "application/json")])
        XCTAssertEqual(same.status, 413, same.text)
        XCTAssertEqual(same.errorCode, "payload_too_large")
    }

    /// A chunk size beyond any integer, or not hexadecimal: refused with the JSON error, and the
    /// connection closed since the body cannot be framed.
    func testChunkSizeOverflowOrGarbageIsRefusedAndClosed() {
        let head = ["POST /auth/login HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", "Transfer-Encoding: chunked"]
        assertRefused(wire(head, Array("FFFFFFFFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n".utf8)), [400, 413], close: true, "a chunk size over 2^64")
        assertRefused(wire(head, Array("10000000000000000\r\n{}\r\n0\r\n\r\n".utf8)), [400, 413], close: true, "a chunk size of 2^64")
        assertRefused(wire(head, Array("zz\r\n{}\r\n0\r\n\r\n".utf8)), [400], close: true, "a chunk size that is not hex")
        assertRefused(wire(head, Array("-2\r\n{}\r\n0\r\n\r\n".utf8)), [400], close: true, "a negative chunk size")
    }
}
