import Foundation
@testable import HTTPClient
import ParcelXAPI
import Runtime
import TestSupport
import XCTest

/// CurlHTTPClient against real servers: nginx over HTTP and over HTTPS with a certificate signed
/// by a CA generated for the test, the ParcelXSandbox binary, and a socket that never answers.
final class CurlHTTPClientTests: XCTestCase {
    private var dir: TempDir!
    private var nginx: ChildProcess?
    private var httpPort: UInt16 = 0
    private var httpsPort: UInt16 = 0

    override func setUp() { dir = TempDir("curl") }

    override func tearDown() {
        _ = nginx?.stop()
        dir?.remove()
    }

    private func run(_ exe: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw RuntimeError("\(exe) \(args.joined(separator: " ")) exited \(p.terminationStatus)") }
    }

    /// A CA named `name` (ca-name.pem) and, when `server` is set, a server certificate it signs for
    /// 127.0.0.1 only (server.pem, server.key).
    private func makeCA(_ name: String, server: Bool) throws {
        guard let ssl = which("openssl") else { throw XCTSkip("openssl is not installed") }
        let d = dir.path
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try run(ssl, ["req", "-x509"] + ec + ["-keyout", "\(d)/ca-\(name).key", "-out", "\(d)/ca-\(name).pem", "-days", "2", "-subj", "/CN=OOPS test CA \(name)"])
        guard server else { return }
        try "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n".write(toFile: "\(d)/ext.cnf", atomically: true, encoding: .utf8)
        try run(ssl, ["req"] + ec + ["-keyout", "\(d)/server.key", "-out", "\(d)/server.csr", "-subj", "/CN=127.0.0.1"])
        try run(ssl, ["x509", "-req", "-in", "\(d)/server.csr", "-CA", "\(d)/ca-\(name).pem", "-CAkey", "\(d)/ca-\(name).key", "-CAcreateserial",
                      "-out", "\(d)/server.pem", "-days", "2", "-extfile", "\(d)/ext.cnf"])
    }

    /// nginx with a plain and a TLS listener (HTTP/2 on TLS); each request is logged with its
    /// connection serial number, so reuse can be counted.
    private func startNginx() throws {
        guard let exe = which("nginx") else { throw XCTSkip("nginx is not installed") }
        try makeCA("test", server: true)
        httpPort = freePort()
        httpsPort = freePort()
        let d = dir.path
        try FileManager.default.createDirectory(atPath: d + "/tmp", withIntermediateDirectories: true)
        let conf = """
        daemon off;
        \(getuid() == 0 ? "user root;" : "")
        worker_processes 1;
        pid \(d)/nginx.pid;
        error_log \(d)/error.log warn;
        events { worker_connections 1024; }
        http {
          log_format conn '$connection $status $request_method $uri';
          access_log \(d)/access.log conn;
          client_body_temp_path \(d)/tmp; proxy_temp_path \(d)/tmp; fastcgi_temp_path \(d)/tmp; uwsgi_temp_path \(d)/tmp; scgi_temp_path \(d)/tmp;
          keepalive_requests 100000;
          server {
            listen 127.0.0.1:\(httpPort);
            listen 127.0.0.1:\(httpsPort) ssl http2;
            ssl_certificate \(d)/server.pem;
            ssl_certificate_key \(d)/server.key;
            location /busy { add_header Retry-After 7 always; return 429 '{"status":false,"message":"slow down"}'; }
            location / { default_type application/json; return 200 '{"status":true,"method":"$request_method","len":"$content_length"}'; }
          }
        }
        """
        try conf.write(toFile: d + "/nginx.conf", atomically: true, encoding: .utf8)
        nginx = try ChildProcess(exe, ["-c", d + "/nginx.conf", "-p", d, "-e", d + "/error.log"], logFile: d + "/nginx.out")
        let port = httpPort
        let up = waitUntil(timeoutMs: 10_000) {
            let c = try? CurlHTTPClient(options: CurlClientOptions())
            defer { c?.close() }
            return c?.send(HTTPCall(method: "GET", url: "http://127.0.0.1:\(port)/")).status == 200
        }
        XCTAssertTrue(up, "nginx did not start: \((try? String(contentsOfFile: d + "/error.log", encoding: .utf8)) ?? "")")
    }

    private func client(caFile: String? = nil, totalTimeoutMs: Int = 15_000, connections: Int = 64) throws -> CurlHTTPClient {
        var o = CurlClientOptions()
        o.caFile = caFile
        o.totalTimeoutMs = totalTimeoutMs
        o.maxConnectionsPerHost = connections
        return try CurlHTTPClient(options: o)
    }

    func testTLSAcceptsOnlyTheConfiguredCAAndTheRightHost() throws {
        try startNginx()
        let url = "https://127.0.0.1:\(httpsPort)/api/order/create_order"
        let post = HTTPCall(method: "POST", url: url, headers: [("Content-Type", "application/json")], body: Array(#"{"a":1}"#.utf8))

        // The system's trust store does not know the test CA: refused, no answer.
        let system = try client()
        defer { system.close() }
        let refused = system.send(post)
        XCTAssertNil(refused.status)
        guard case .untrustedCertificate = refused.failure else { return XCTFail("expected an untrusted certificate, got \(String(describing: refused.failure))") }

        // Another CA configured: still refused.
        try makeCA("other", server: false)
        let other = try client(caFile: dir.path + "/ca-other.pem")
        defer { other.close() }
        XCTAssertNil(other.send(post).status)
        guard case .untrustedCertificate = other.send(post).failure else { return XCTFail("a certificate from another CA was accepted") }

        // The test CA configured: accepted, over HTTP/2, body sent.
        let trusting = try client(caFile: dir.path + "/ca-test.pem")
        defer { trusting.close() }
        let ok = trusting.send(post)
        XCTAssertNil(ok.failure)
        XCTAssertEqual(ok.status, 200)
        XCTAssertEqual(String(decoding: ok.body, as: UTF8.self), #"{"status":true,"method":"POST","len":"7"}"#)

        // The certificate names 127.0.0.1 only: the same server reached as "localhost" is refused.
        let wrongName = trusting.send(HTTPCall(method: "GET", url: "https://localhost:\(httpsPort)/"))
        XCTAssertNil(wrongName.status)
        XCTAssertNotNil(wrongName.failure)
    }

    func testManyCallsShareFewKeptAliveConnections() throws {
        try startNginx()
        let c = try client(connections: 4)
        defer { c.close() }
        let n = 400
        let statuses = Locked([Int: Int]())
        let all = DispatchGroup()
        for i in 0..<n {
            all.enter()
            c.start(HTTPCall(method: i % 2 == 0 ? "GET" : "POST", url: "http://127.0.0.1:\(httpPort)/track/\(i)", body: i % 2 == 0 ? nil : [UInt8](repeating: 65, count: 3000))) { a in
                statuses.withLock { $0[a.status ?? -1, default: 0] += 1 }
                all.leave()
            }
        }
        XCTAssertEqual(all.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(statuses.current, [200: n])
        XCTAssertEqual(c.inFlight, 0)
        // nginx logs each request's connection: at most the 4 allowed connections carried all 400.
        func logged() -> [Substring] {
            ((try? String(contentsOfFile: dir.path + "/access.log", encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.contains(" /track/") }
        }
        XCTAssertTrue(waitUntil { logged().count == n })
        let connections = Set(logged().map { $0.split(separator: " ")[0] })
        XCTAssertLessThanOrEqual(connections.count, 4, "connections used: \(connections.count)")
    }

    func testRetryAfterIsReportedWithTheStatus() throws {
        try startNginx()
        let c = try client()
        defer { c.close() }
        let a = c.send(HTTPCall(method: "POST", url: "http://127.0.0.1:\(httpPort)/busy", body: Array("{}".utf8)))
        XCTAssertEqual(a.status, 429)
        XCTAssertEqual(a.retryAfter, "7")
        XCTAssertEqual(String(decoding: a.body, as: UTF8.self), #"{"status":false,"message":"slow down"}"#)
        XCTAssertNil(c.send(HTTPCall(method: "GET", url: "http://127.0.0.1:\(httpPort)/")).retryAfter)
    }

    func testAServerThatNeverAnswersTimesOutAndOthersStillGetThrough() throws {
        // A listening socket nobody accepts from: the kernel completes the connection, the request
        // is sent, no answer ever comes.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        XCTAssertEqual(bound, 0)
        XCTAssertEqual(listen(fd, 64), 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let port = UInt16(bigEndian: addr.sin_port)
        try startNginx()

        let c = try client(totalTimeoutMs: 1000)
        defer { c.close() }
        let hung = Locked([HTTPAnswer]())
        let all = DispatchGroup()
        for _ in 0..<20 {
            all.enter()
            c.start(HTTPCall(method: "POST", url: "http://127.0.0.1:\(port)/api/order/create_order", body: Array("{}".utf8))) { a in
                hung.withLock { $0.append(a) }
                all.leave()
            }
        }
        // While those hang, the same loop answers other calls.
        XCTAssertEqual(c.send(HTTPCall(method: "GET", url: "http://127.0.0.1:\(httpPort)/")).status, 200)
        XCTAssertEqual(all.wait(timeout: .now() + 30), .success)
        for a in hung.current {
            XCTAssertEqual(a.failure, .timedOut)
            XCTAssertNil(a.status)
            XCTAssertGreaterThanOrEqual(a.durationNanos, 900_000_000)
        }
    }

    func testCallsAgainstTheSandboxAndBadInput() throws {
        let exe = productsDirectory() + "/ParcelXSandbox"
        guard FileManager.default.isExecutableFile(atPath: exe) else { return XCTFail("ParcelXSandbox is not built at \(exe)") }
        let port = freePort()
        let sandbox = try ChildProcess(exe, [], env: ["OOPS_SANDBOX_ADDR": "127.0.0.1:\(port)", "PARCELX_ACCESS_KEY": "k", "PARCELX_SECRET_KEY": "s"],
                                       logFile: dir.path + "/sandbox.log")
        defer { sandbox.kill9() }
        let c = try client()
        defer { c.close() }
        XCTAssertTrue(waitUntil { c.send(HTTPCall(method: "GET", url: "http://127.0.0.1:\(port)/healthz")).status == 200 })
        // Every call answered 250 ms late, 200 at once on one loop thread.
        let cfg = c.send(HTTPCall(method: "POST", url: "http://127.0.0.1:\(port)/__sandbox/config", headers: [("Content-Type", "application/json")],
                                  body: Array(#"{"latencyMs":250,"failureRate":0}"#.utf8)))
        XCTAssertEqual(cfg.status, 200)
        let statuses = Locked([Int: Int]())
        let all = DispatchGroup()
        for i in 0..<200 {
            all.enter()
            let token = ParcelXAuth.accessToken(accessKey: "k", secretKey: "s")
            let url = ParcelXOperation.trackByClientOrderId.endpoint.url(baseURL: "http://127.0.0.1:\(port)", value: "none-\(i)")
            c.start(HTTPCall(method: "GET", url: url, headers: i % 2 == 0 ? [(ParcelXAuth.headerName, token)] : [])) { a in
                statuses.withLock { $0[a.status ?? -1, default: 0] += 1 }
                all.leave()
            }
        }
        XCTAssertEqual(all.wait(timeout: .now() + 60), .success)
        // With the access token the sandbox looks the order up (it has none); without, 401.
        let seen = statuses.current
        XCTAssertEqual(seen[401], 100, "\(seen)")
        XCTAssertEqual(seen.values.reduce(0, +), 200)
        XCTAssertEqual(seen.count, 2, "\(seen)")
        XCTAssertNil(seen[-1], "\(seen)")

        // A header that would split the request, and an unsupported scheme: refused before sending.
        let split = c.send(HTTPCall(method: "GET", url: "http://127.0.0.1:\(port)/healthz", headers: [("X-A", "1\r\nX-B: 2")]))
        XCTAssertNil(split.status)
        XCTAssertNotNil(split.failure)
        let ftp = c.send(HTTPCall(method: "GET", url: "ftp://127.0.0.1:\(port)/"))
        XCTAssertNil(ftp.status)
        XCTAssertNotNil(ftp.failure)
        XCTAssertEqual(c.inFlight, 0)
        // Limits out of range are refused with a clear error.
        var bad = CurlClientOptions()
        bad.totalTimeoutMs = 0
        XCTAssertThrowsError(try CurlHTTPClient(options: bad))
        bad = CurlClientOptions()
        bad.caFile = dir.path + "/missing.pem"
        XCTAssertThrowsError(try CurlHTTPClient(options: bad))
    }
}

/// ProviderGate in front of a real CurlHTTPClient, against a scripted provider (a small Python
/// HTTP server that answers 429 with Retry-After as told and logs when each request came) and a
/// socket that never answers.
final class ProviderGateTests: XCTestCase {
    private var dir: TempDir!
    private var server: ChildProcess?
    private var port: UInt16 = 0

    override func setUp() { dir = TempDir("gate") }
    override func tearDown() {
        server?.kill9()
        dir?.remove()
    }

    /// `/busy/<n>/<s>`: the first n requests to this path get 429 with `Retry-After: s`, later
    /// ones 200. `/log`: every request so far as `[path, seconds]`.
    private func startScriptedProvider() throws {
        guard let py = which("python3") else { throw XCTSkip("python3 is not installed") }
        let script = """
        import json, sys, time, threading
        from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
        lock = threading.Lock(); log = []; seen = {}
        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def log_message(self, *a): pass
            def answer(self, code, body, extra=()):
                b = json.dumps(body).encode()
                self.send_response(code)
                for k, v in extra: self.send_header(k, v)
                self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(b)))
                self.end_headers(); self.wfile.write(b)
            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n: self.rfile.read(n)
                if self.path == "/log":
                    with lock: return self.answer(200, log)
                with lock:
                    log.append([self.path, time.monotonic()]); seen[self.path] = seen.get(self.path, 0) + 1; k = seen[self.path]
                parts = self.path.split("/")
                if len(parts) == 4 and parts[1] == "busy" and k <= int(parts[2]):
                    return self.answer(429, {"status": False, "message": "slow down"}, [("Retry-After", parts[3])])
                self.answer(200, {"status": True})
            do_GET = handle_any; do_POST = handle_any
        ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
        """
        try script.write(toFile: dir.path + "/provider.py", atomically: true, encoding: .utf8)
        port = freePort()
        server = try ChildProcess(py, [dir.path + "/provider.py", "\(port)"], logFile: dir.path + "/provider.log")
        let c = try CurlHTTPClient(options: CurlClientOptions())
        defer { c.close() }
        XCTAssertTrue(waitUntil { c.send(HTTPCall(method: "GET", url: "http://127.0.0.1:\(self.port)/log")).status == 200 }, "provider did not start")
    }

    private func providerLog(_ path: String) throws -> [Double] {
        let c = try CurlHTTPClient(options: CurlClientOptions())
        defer { c.close() }
        let a = c.send(HTTPCall(method: "GET", url: "http://127.0.0.1:\(port)/log"))
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(a.body)) as? [[Any]])
        return rows.filter { ($0[0] as? String) == path }.compactMap { $0[1] as? Double }
    }

    func testA429WithRetryAfterPausesSendingHalvesTheWindowAndCostsTheCallerNothing() throws {
        try startScriptedProvider()
        var limits = ProviderLimits()
        limits.maxConcurrent = 64
        let gate = try ProviderGate(try CurlHTTPClient(options: CurlClientOptions()), limits: limits)
        defer { gate.stop() }
        // Two 429s with Retry-After: 1, then 200: the caller sees one answer, the 200.
        let a = gate.send(HTTPCall(method: "POST", url: "http://127.0.0.1:\(port)/busy/2/1", body: Array("{}".utf8)))
        XCTAssertEqual(a.status, 200)
        XCTAssertNil(a.failure)
        let times = try providerLog("/busy/2/1")
        XCTAssertEqual(times.count, 3, "sent once and again twice")
        for i in 1..<times.count {
            XCTAssertGreaterThanOrEqual(times[i] - times[i - 1], 0.95, "the gate waited out Retry-After before sending again")
        }
        let s = gate.state
        XCTAssertEqual(s.resentTotal, 2)
        XCTAssertLessThanOrEqual(s.window, 16, "halved twice from 64, grown back by one success at most")
        XCTAssertEqual(s.breaker, .closed, "a 429 is backpressure, not a failure")

        // Other calls made during a pause wait it out too; urgent ones go first when it ends
        // (one call at a time, so the order sent is the order answered).
        var one = ProviderLimits()
        one.maxConcurrent = 1
        let serial = try ProviderGate(try CurlHTTPClient(options: CurlClientOptions()), limits: one)
        defer { serial.stop() }
        let order = Locked([String]())
        let done = DispatchGroup()
        done.enter()
        serial.start(HTTPCall(method: "GET", url: "http://127.0.0.1:\(port)/busy/1/2")) { _ in done.leave() }
        XCTAssertTrue(waitUntil { serial.state.pausedForMs > 0 }, "the 429 paused sending")
        for (name, urgent) in [("create-1", false), ("create-2", false), ("cancel", true)] {
            done.enter()
            serial.start(HTTPCall(method: "GET", url: "http://127.0.0.1:\(port)/\(name)", urgent: urgent)) { _ in
                order.withLock { $0.append(name) }
                done.leave()
            }
        }
        XCTAssertEqual(serial.state.waiting, 4, "the three, and the refused call waiting to go again")
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(order.current, ["cancel", "create-1", "create-2"])
        XCTAssertEqual(try providerLog("/busy/1/2").count, 2)
        XCTAssertEqual(serial.state.resentTotal, 1)
    }

    func testAHangingProviderTimesOutOpensTheBreakerAndOneProbeClosesIt() throws {
        try startScriptedProvider()
        // A listening socket nobody accepts from: every call to it hangs until its timeout.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        XCTAssertEqual(listen(fd, 64), 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        let hangPort = UInt16(bigEndian: addr.sin_port)

        var o = CurlClientOptions()
        o.totalTimeoutMs = 500
        var limits = ProviderLimits()
        limits.breakerFailures = 5
        limits.breakerOpenMs = 2_000
        let gate = try ProviderGate(try CurlHTTPClient(options: o), limits: limits)
        defer { gate.stop() }
        let all = DispatchGroup()
        let answers = Locked([HTTPAnswer]())
        for _ in 0..<5 {
            all.enter()
            gate.start(HTTPCall(method: "POST", url: "http://127.0.0.1:\(hangPort)/api/v3/order/create_order", body: Array("{}".utf8))) { a in
                answers.withLock { $0.append(a) }
                all.leave()
            }
        }
        XCTAssertEqual(all.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(answers.current.map(\.failure), Array(repeating: .timedOut, count: 5), "each call timed out on its own timeout")
        XCTAssertEqual(gate.state.breaker, .open)
        XCTAssertEqual(gate.state.breakerOpenedTotal, 1)

        // While open, a call is held, not sent and not failed; after the open time it goes as
        // the probe, and its success closes the breaker.
        let t0 = Date()
        all.enter()
        let probe = Locked<HTTPAnswer?>(nil)
        gate.start(HTTPCall(method: "GET", url: "http://127.0.0.1:\(port)/probe")) { a in
            probe.withLock { $0 = a }
            all.leave()
        }
        XCTAssertEqual(gate.state.waiting, 1)
        XCTAssertEqual(try providerLog("/probe").count, 0)
        XCTAssertEqual(all.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(probe.current?.status, 200)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(t0), 1.5, "held while the breaker was open")
        XCTAssertEqual(gate.state.breaker, .closed)
        XCTAssertEqual(try providerLog("/probe").count, 1)
    }

    func testACallHeldLongerThanTheHoldLimitFailsUnsent() throws {
        try startScriptedProvider()
        var limits = ProviderLimits()
        limits.breakerFailures = 1
        limits.breakerOpenMs = 600_000
        limits.maxHoldMs = 300
        let gate = try ProviderGate(try CurlHTTPClient(options: CurlClientOptions()), limits: limits)
        defer { gate.stop() }
        // Nothing listens on a fresh port: refused at once, and one failure opens the breaker.
        let refused = gate.send(HTTPCall(method: "GET", url: "http://127.0.0.1:\(freePort())/"))
        XCTAssertNil(refused.status)
        XCTAssertEqual(gate.state.breaker, .open)
        let held = gate.send(HTTPCall(method: "GET", url: "http://127.0.0.1:\(port)/held"))
        guard case .notSent = held.failure else { return XCTFail("expected a call failed unsent, got \(String(describing: held.failure))") }
        XCTAssertGreaterThanOrEqual(held.durationNanos, 300_000_000)
        XCTAssertEqual(try providerLog("/held").count, 0, "the provider never saw it")
        XCTAssertEqual(gate.state.waiting, 0)
    }

    func testRetryAfterValuesAndLimitsAreRangeChecked() throws {
        XCTAssertEqual(ProviderGate.retryAfterMs("7"), 7000)
        XCTAssertNil(ProviderGate.retryAfterMs("-1"))
        XCTAssertNil(ProviderGate.retryAfterMs("99999999999999999999"))
        XCTAssertNil(ProviderGate.retryAfterMs("soon"))
        XCTAssertEqual(ProviderGate.retryAfterMs("Wed, 21 Oct 2015 07:28:00 GMT"), 0, "a date in the past means now")
        var bad = ProviderLimits()
        bad.maxConcurrent = 0
        XCTAssertThrowsError(try ProviderGate(try CurlHTTPClient(options: CurlClientOptions()), limits: bad))
        bad = ProviderLimits()
        bad.callsPerSecond = -1
        XCTAssertThrowsError(try ProviderGate(try CurlHTTPClient(options: CurlClientOptions()), limits: bad))
    }
}
