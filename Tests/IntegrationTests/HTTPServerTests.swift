import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTPServer
import Runtime
import TestSupport
import XCTest

final class HTTPServerTests: XCTestCase {
    private func start(_ options: HTTPServerOptions = HTTPServerOptions(),
                       _ handler: @escaping @Sendable (HTTPRequest) -> HTTPResponse) throws -> HTTPServer {
        try HTTPServer(host: "127.0.0.1", port: 0, options: options, handler: handler)
    }

    func testGetReceivesPathQueryAndHeadersAndSendsHeadersBack() throws {
        let seen = Locked<HTTPRequest?>(nil)
        let server = try start { req in
            seen.withLock { $0 = req }
            // A framing header from the handler is dropped, whatever its case: the server frames.
            return HTTPResponse(status: 203, headers: [("X-Reply", "yes"), ("Set-Cookie", "a=1; HttpOnly"), ("Set-Cookie", "b=2"),
                                                       ("CONTENT-length", "999"), ("Transfer-Encoding", "chunked")],
                                body: Array("hello".utf8))
        }
        defer { server.stop() }
        XCTAssertNotEqual(server.boundPort, 0)

        let r = rawRequest(port: server.boundPort, "GET", "/v1/things?name=a%20b&n=42&flag",
                           headers: [("X-Trace-Id", "abc"), ("Cookie", "s=1"), ("Cookie", "t=2")])
        XCTAssertEqual(r.status, 203)
        XCTAssertEqual(r.text, "hello")
        XCTAssertEqual(r.headerValues("content-length"), ["5"])
        XCTAssertEqual(r.headerValues("transfer-encoding"), [])
        XCTAssertEqual(r.header("x-reply"), "yes")
        XCTAssertEqual(r.headerValues("set-cookie"), ["a=1; HttpOnly", "b=2"])

        let req = try XCTUnwrap(seen.current)
        XCTAssertEqual(req.method, "GET")
        XCTAssertEqual(req.path, "/v1/things")
        XCTAssertEqual(req.query, ["name": "a b", "n": "42", "flag": ""])
        XCTAssertEqual(req.header("X-Trace-Id"), "abc")
        XCTAssertEqual(req.header("x-trace-id"), "abc")
        XCTAssertEqual(req.headers["x-trace-id"], "abc")
        XCTAssertEqual(req.header("cookie"), "s=1; t=2")
        XCTAssertEqual(req.remoteAddress, "127.0.0.1")
        XCTAssertTrue(req.body.isEmpty)
    }

    func testPostBodyArrivesWholeThroughURLSession() throws {
        let server = try start { req in
            .json(200, Array("{\"method\":\"\(req.method)\",\"length\":\(req.body.count),\"type\":\"\(req.header("content-type") ?? "")\"}".utf8)
                  + [10] + req.body)
        }
        defer { server.stop() }
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(server.boundPort)/upload")!)
        request.httpMethod = "POST"
        request.httpBody = Data(payload)
        request.setValue("application/octet-stream", forHTTPHeaderField: "Content-Type")
        let (status, data, contentType) = try fetch(request)
        XCTAssertEqual(status, 200)
        XCTAssertEqual(contentType, "application/json")
        let bytes = [UInt8](data)
        let nl = try XCTUnwrap(bytes.firstIndex(of: 10))
        XCTAssertEqual(String(decoding: bytes[..<nl], as: UTF8.self),
                       "{\"method\":\"POST\",\"length\":300000,\"type\":\"application/octet-stream\"}")
        XCTAssertEqual(Array(bytes[(nl + 1)...]), payload)
    }

    func testBodyDeclaredLargerThanLimitGets413WithoutSendingIt() throws {
        let called = Locked(0)
        var options = HTTPServerOptions()
        options.maxBodyBytes = 1000
        let server = try start(options) { _ in called.withLock { $0 += 1 }; return .text(200, "ok") }
        defer { server.stop() }
        let c = try RawHTTPConnection(port: server.boundPort, timeoutS: 5)
        // Only the headers: a server that waited for the 5 MB body would never answer.
        c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n")
        let r = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r.status, 413)
        XCTAssertTrue(r.text.contains("payload_too_large"))
        XCTAssertEqual(r.header("connection")?.lowercased(), "close")
        XCTAssertTrue(c.peerClosed())
        XCTAssertEqual(called.current, 0)
    }

    func testBodyOverLimitSentInFullGets413AndAtLimitIsAccepted() throws {
        var options = HTTPServerOptions()
        options.maxBodyBytes = 1000
        let server = try start(options) { req in .text(200, "got \(req.body.count)") }
        defer { server.stop() }
        let over = rawRequest(port: server.boundPort, "POST", "/", body: [UInt8](repeating: 65, count: 1001))
        XCTAssertEqual(over.status, 413)
        let exact = rawRequest(port: server.boundPort, "POST", "/", body: [UInt8](repeating: 65, count: 1000))
        XCTAssertEqual(exact.status, 200)
        XCTAssertEqual(exact.text, "got 1000")
    }

    func testChunkedBodyGrowingPastLimitIsRefused() throws {
        let called = Locked(0)
        var options = HTTPServerOptions()
        options.maxBodyBytes = 1000
        let server = try start(options) { _ in called.withLock { $0 += 1 }; return .text(200, "ok") }
        defer { server.stop() }
        let c = try RawHTTPConnection(port: server.boundPort, timeoutS: 5)
        let chunk = String(repeating: "z", count: 800)
        c.send("POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        c.send("320\r\n\(chunk)\r\n")
        c.send("320\r\n\(chunk)\r\n")
        // Either a 413 or a closed connection is a refusal; the handler must never see the body.
        if let r = c.readResponse() {
            XCTAssertEqual(r.status, 413)
        }
        XCTAssertEqual(called.current, 0)
    }

    func testKeepAliveServesTwoRequestsOnOneConnection() throws {
        let count = Locked(0)
        let server = try start { req in
            let n = count.withLock { $0 += 1; return $0 }
            return .text(200, "\(req.path) #\(n) body=\(req.bodyText)")
        }
        defer { server.stop() }
        let c = try RawHTTPConnection(port: server.boundPort)
        c.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        let r1 = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r1.text, "/first #1 body=")
        XCTAssertNotEqual(r1.header("connection")?.lowercased(), "close")
        c.send("POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        let r2 = try XCTUnwrap(c.readResponse())
        XCTAssertEqual(r2.status, 200)
        XCTAssertEqual(r2.text, "/second #2 body=abc")
    }

    func testKeepAliveOffClosesAfterEachResponse() throws {
        var options = HTTPServerOptions()
        options.keepAlive = false
        let server = try start(options) { _ in .text(200, "one") }
        defer { server.stop() }
        let c = try RawHTTPConnection(port: server.boundPort)
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertEqual(try XCTUnwrap(c.readResponse()).text, "one")
        XCTAssertTrue(c.peerClosed())
    }

    func testHundredConcurrentSlowRequestsAreServedInParallel() throws {
        let server = try start { req in
            usleep(300_000)  // a handler blocked on an RPC call
            return .text(200, "id=\(req.query["id"] ?? "?")")
        }
        defer { server.stop() }
        let results = Locked<[Int: String]>([:])
        let group = DispatchGroup()
        let began = Date()
        for i in 0..<100 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                let r = rawRequest(port: server.boundPort, "GET", "/work?id=\(i)")
                if r.status == 200 {
                    results.withLock { $0[i] = r.text }
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        let elapsed = Date().timeIntervalSince(began)
        let got = results.current
        XCTAssertEqual(got.count, 100)
        for i in 0..<100 { XCTAssertEqual(got[i], "id=\(i)") }
        // Served one after another this would take 30 s.
        XCTAssertLessThan(elapsed, 10, "requests did not run concurrently")
    }

    /// One event thread, 40 requests blocked in workers: an answer given at once (`.now`) still
    /// comes at once, and a keep-alive connection can take `.later` and `.now` requests in turn.
    func testImmediateAnswersAreNotHeldUpBySlowWorkers() throws {
        var options = HTTPServerOptions()
        options.eventThreads = 1
        let server = try HTTPServer(host: "127.0.0.1", port: 0, options: options, reply: { req in
            if req.path == "/quick" { return .now(.text(200, "quick")) }
            return .later {
                usleep(1_500_000)
                return .text(200, "slow")
            }
        })
        defer { server.stop() }
        let group = DispatchGroup()
        let slowDone = Locked(0)
        for _ in 0..<40 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                if rawRequest(port: server.boundPort, "GET", "/slow").text == "slow" { slowDone.withLock { $0 += 1 } }
            }
        }
        XCTAssertTrue(waitUntil(timeoutMs: 5000) { server.inFlightRequests == 40 })
        let t0 = Date()
        let quick = rawRequest(port: server.boundPort, "GET", "/quick")
        XCTAssertEqual(quick.text, "quick")
        XCTAssertLessThan(Date().timeIntervalSince(t0), 1.0, "an immediate answer waited for the slow ones")
        XCTAssertEqual(slowDone.current, 0, "the slow requests should still be running")
        XCTAssertEqual(group.wait(timeout: .now() + 20), .success)
        XCTAssertEqual(slowDone.current, 40)

        let c = try RawHTTPConnection(port: server.boundPort)
        for path in ["/slow", "/quick", "/slow", "/quick"] {
            c.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
            XCTAssertEqual(try XCTUnwrap(c.readResponse()).text, String(path.dropFirst()))
        }
    }

    func testStopLetsTheSlowInFlightRequestFinishAndRefusesNewConnections() throws {
        let entered = Locked(false)
        let server = try start { _ in
            entered.withLock { $0 = true }
            usleep(1_000_000)
            return .text(200, "finished")
        }
        let port = server.boundPort
        let result = Locked<RawResponse?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let r = rawRequest(port: port, "GET", "/slow")
            result.withLock { $0 = r }
            done.signal()
        }
        XCTAssertTrue(waitUntil(timeoutMs: 5000) { entered.current })
        let stopBegan = Date()
        server.stop()
        XCTAssertGreaterThan(Date().timeIntervalSince(stopBegan), 0.3, "stop() did not wait for the request")
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        let r = try XCTUnwrap(result.current)
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.text, "finished")
        XCTAssertThrowsError(try RawHTTPConnection(port: port), "still accepting after stop()")
        server.stop()  // idempotent
    }

    func testListeningOnABusyPortThrows() throws {
        let first = try start { _ in .text(200, "") }
        defer { first.stop() }
        XCTAssertThrowsError(try HTTPServer(host: "127.0.0.1", port: first.boundPort, options: HTTPServerOptions()) { _ in .text(200, "") })
    }

    func testFixedPortAndHeadRequest() throws {
        let port = freePort()
        let server = try HTTPServer(host: "127.0.0.1", port: port, options: HTTPServerOptions()) { _ in .text(200, "body") }
        defer { server.stop() }
        XCTAssertEqual(server.boundPort, port)
        let c = try RawHTTPConnection(port: port)
        c.send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        // HEAD carries Content-Length but no body: read only the head, then check the next
        // request on the same connection is framed correctly.
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        let head = try XCTUnwrap(c.readResponse(headOnly: true))
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.header("content-length"), "4")
        XCTAssertEqual(try XCTUnwrap(c.readResponse()).text, "body")
    }

    private func fetch(_ request: URLRequest) throws -> (Int, Data, String?) {
        let out = Locked<(Int, Data, String?)?>(nil)
        let sem = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, _ in
            if let h = response as? HTTPURLResponse {
                out.withLock { $0 = (h.statusCode, data ?? Data(), h.value(forHTTPHeaderField: "Content-Type")) }
            }
            sem.signal()
        }.resume()
        _ = sem.wait(timeout: .now() + 30)
        return try XCTUnwrap(out.current)
    }
}
