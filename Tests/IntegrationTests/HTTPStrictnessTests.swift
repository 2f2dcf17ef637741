import Foundation
import HTTPServer
import JSON
import Runtime
import TestSupport
import XCTest

/// RFC 9112 strictness: what the server refuses before any handler runs, and how. Each case is
/// sent byte for byte on a raw socket; the answer must be exactly one well-formed response with
/// the JSON error body and `X-Request-Id`, and then the connection must close (so that nothing
/// hidden after a refused request is ever served).
final class HTTPStrictnessTests: XCTestCase {
    private var server: HTTPServer!
    private let served = Locked<[String]>([])

    override func setUpWithError() throws {
        var options = HTTPServerOptions()
        options.maxBodyBytes = 1024
        options.maxHeaderBytes = 8 * 1024
        options.maxHeaderCount = 50
        let served = self.served
        server = try HTTPServer(host: "127.0.0.1", port: 0, options: options) { req in
            served.withLock { $0.append(req.path) }
            return .json(200, "{\"path\":\"\(req.path)\",\"auth\":\"\(req.header("authorization") ?? "")\"}")
        }
    }

    override func tearDown() { server.stop() }

    /// Sends `raw` and checks that exactly one answer comes back, strictly well-formed, with
    /// the status, the JSON error body and `X-Request-Id` (`HTTPWire`), and that the server
    /// then closes the connection.
    private func expectRefusal(_ raw: [UInt8], status: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let c = try RawHTTPConnection(port: server.boundPort, timeoutS: 10)
        _ = c.send(raw)  // the server may close before it has read everything
        let ex = c.readAnswers(firstS: 10, quietS: 1)
        let shown = ex.answers.map { "\($0.status) \($0.text)" }
        XCTAssertEqual(ex.problems, [], shown.description, file: file, line: line)
        XCTAssertEqual(ex.answers.map(\.status), [status], shown.description, file: file, line: line)
        if let r = ex.answers.first {
            XCTAssertEqual(HTTPWire.gatewayProblems(r, also5xx: [505]), [], file: file, line: line)
            XCTAssertEqual(r.header("Connection"), "close", file: file, line: line)
        }
        XCTAssertTrue(ex.closed, "the connection is closed after a refusal", file: file, line: line)
        XCTAssertEqual(served.current, [], "no handler ran", file: file, line: line)
    }

    private func req(_ s: String) -> [UInt8] { Array(s.utf8) }

    func testTwoDifferentContentLengthsAreRefusedAndTheHiddenRequestIsNeverServed() throws {
        let smuggled = "GET /hidden HTTP/1.1\r\nHost: x\r\n\r\n"
        try expectRefusal(req("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: \(smuggled.utf8.count)\r\n\r\n\(smuggled)"), status: 400)
        try expectRefusal(req("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: \(smuggled.utf8.count)\r\nContent-Length: 0\r\n\r\n\(smuggled)"), status: 400)
    }

    func testContentLengthWithChunkedIsRefused() throws {
        let smuggled = "GET /hidden HTTP/1.1\r\nHost: x\r\n\r\n"
        try expectRefusal(req("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\(smuggled)"), status: 400)
        try expectRefusal(req("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n\(smuggled)"), status: 400)
        // Transfer-Encoding on HTTP/1.0 is faulty framing (RFC 9112 §6.1).
        try expectRefusal(req("POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\(smuggled)"), status: 400)
        // A coding other than chunked leaves the length unknown: refused too.
        try expectRefusal(req("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc"), status: 400)
    }

    func testControlCharactersInTheDecodedTargetAreRefused() throws {
        for target in ["/auth/me%00.js", "/wallet%00/x.png", "/orders/%00/cancel", "/a%0d%0aX-Injected:%201", "/a%7f", "/a?x=1%00",
                       "/a%zz", "/a%4", "/a%c3%28"] {
            try expectRefusal(req("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n"), status: 400)
        }
    }

    func testControlCharactersInHeaderValuesAreRefused() throws {
        try expectRefusal(req("GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\0garbage\r\n\r\n"), status: 400)
        try expectRefusal(req("GET /me HTTP/1.1\r\nHost: x\r\nIdempotency-Key: K\u{1}a\r\n\r\n"), status: 400)
        try expectRefusal(req("GET /me HTTP/1.1\r\nHost: x\r\nX-A: a\u{7f}\r\n\r\n"), status: 400)
    }

    func testHostMustAppearExactlyOnceOnHTTP11() throws {
        try expectRefusal(req("GET /me HTTP/1.1\r\n\r\n"), status: 400)
        try expectRefusal(req("GET /me HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), status: 400)
        try expectRefusal(req("GET /me HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), status: 400)
        for bad in ["a b", "h:p:x", "[::1", "x:8o", "a/b"] {
            try expectRefusal(req("GET /me HTTP/1.1\r\nHost: \(bad)\r\n\r\n"), status: 400)
        }
    }

    func testOversizedHeadersGet431AsJSON() throws {
        try expectRefusal(req("GET /me HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 70_000))\r\n\r\n"), status: 431)
        var many = "GET /me HTTP/1.1\r\nHost: x\r\n"
        for i in 0..<200 { many += "X-H\(i): v\r\n" }
        try expectRefusal(req(many + "\r\n"), status: 431)
    }

    func testBadContentLengthsGetOneJSONAnswer() throws {
        try expectRefusal(req("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"), status: 400)
        try expectRefusal(req("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n"), status: 400)
        try expectRefusal(req("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"), status: 413)
        try expectRefusal(req("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n"), status: 413)
    }

    func testChunkedBodyOverTheLimitGetsTheJSON413() throws {
        let chunk = String(repeating: "x", count: 600)
        try expectRefusal(req("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n\(chunk)\r\n258\r\n\(chunk)\r\n0\r\n\r\n"), status: 413)
        try expectRefusal(req("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), status: 400)
    }

    func testAClientStillSendingARefusedBodyReadsThe413() throws {
        // Megabytes keep coming after the refusal, and the client reads only once it has sent
        // them all: the answer must not be lost to a reset caused by unread input.
        for head in ["POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                     "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4194304\r\n\r\n"] {
            let c = try RawHTTPConnection(port: server.boundPort)
            let piece = Array((head.contains("chunked") ? "10000\r\n" + String(repeating: "x", count: 65536) + "\r\n"
                                                        : String(repeating: "x", count: 65536)).utf8)
            _ = c.send(head)
            for _ in 0..<64 { XCTAssertTrue(c.send(piece), "the server reads a refused body to its end") }
            let r = try XCTUnwrap(c.readResponse())
            XCTAssertEqual(r.status, 413)
            XCTAssertEqual(try JSONParser.parse(r.body)["error"]?["code"]?.stringValue, "payload_too_large")
        }
    }

    func testOtherVersionsAndMalformedLinesAreRefused() throws {
        try expectRefusal(req("GET /me HTTP/2.0\r\nHost: x\r\n\r\n"), status: 505)
        try expectRefusal(req("GET /me HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"), status: 400)
        try expectRefusal(req("GET /me HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n"), status: 400)
        try expectRefusal(req("\u{1}\u{2}garbage\r\n\r\n"), status: 400)

    }

    func testAClientRequestIdIsKeptOnARefusalWhenItIsSafe() throws {
        let c = try RawHTTPConnection(port: server.boundPort)
        _ = c.send("GET /a%00 HTTP/1.1\r\nHost: x\r\nX-Request-Id: trace-42\r\n\r\n")
        let r = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r.status, 400)
        XCTAssertEqual(r.header("x-request-id"), "trace-42")
    }

    func testAcceptedRequestsStillWork() throws {
        // Absolute form, HTTP/1.0 without Host, a decoded slash and a plus in the query; hosts
        // with a port, an IPv6 literal and an empty one are valid.
        for host in ["example.com:8080", "[::1]:80", "", "127.0.0.1"] {
            let h = try RawHTTPConnection(port: server.boundPort)
            _ = h.send("GET /h HTTP/1.1\r\nHost: \(host)\r\n\r\n")
            XCTAssertEqual(h.readResponse()?.status, 200, "Host: \(host)")
        }
        served.withLock { $0 = [] }
        let c = try RawHTTPConnection(port: server.boundPort)
        _ = c.send("GET http://x/a%2Fb?q=a+b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.0\r\n\r\n")
        let a = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(a.status, 200)
        XCTAssertEqual(try JSONParser.parse(a.body)["path"]?.stringValue, "/a/b")
        let b = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(b.status, 200)
        XCTAssertEqual(b.header("connection"), "close")
        XCTAssertTrue(c.peerClosed())
        XCTAssertEqual(served.current, ["/a/b", "/c"])
    }

    func testThousandsOfPipelinedRequestsAreAnsweredInOrder() throws {
        let c = try RawHTTPConnection(port: server.boundPort)
        var batch = ""
        for i in 0..<3000 { batch += "GET /p\(i) HTTP/1.1\r\nHost: x\r\n\r\n" }
        // Sent from another thread: the server answers while the batch is still arriving.
        nonisolated(unsafe) let conn = c
        let bytes = Array(batch.utf8)
        let sender = Thread { _ = conn.send(bytes) }
        sender.start()
        for i in 0..<3000 {
            let r = try XCTUnwrap(c.readResponse())
            XCTAssertEqual(try JSONParser.parse(r.body)["path"]?.stringValue, "/p\(i)")
        }
        XCTAssertEqual(served.current.count, 3000)
    }

    func testAMethodTheParserDoesNotKnowReachesTheHandler() throws {
        server.stop()
        server = try HTTPServer(host: "127.0.0.1", port: 0) { req in .text(405, "\(req.method) \(req.path) \(req.bodyText)") }
        let c = try RawHTTPConnection(port: server.boundPort)
        _ = c.send("QUERY /search?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiBREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try XCTUnwrap(c.readResponse()).text, "QUERY /search hi")
        XCTAssertEqual(try XCTUnwrap(c.readResponse()).text, "BREW /pot ")
    }

    func testHalfSentRequestGets408AfterTheTimeout() throws {
        server.stop()
        var options = HTTPServerOptions()
        options.connectionTimeoutSeconds = 1
        server = try HTTPServer(host: "127.0.0.1", port: 0, options: options) { _ in .text(200, "") }
        let c = try RawHTTPConnection(port: server.boundPort)
        _ = c.send("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        let r = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r.status, 408)
        XCTAssertTrue(c.peerClosed())
    }
}
