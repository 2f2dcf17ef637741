import XCTest
import JSON
import Runtime
import TestSupport

/// /metrics parses as Prometheus text and moves with known traffic; the request id reaches
/// every process's logs; the failed-job spike alert fires and clears by itself.
final class ObservabilitySystemTests: XCTestCase {
    /// A strict reader of the Prometheus text format 0.0.4: every sample belongs to a family
    /// declared by one HELP and one TYPE line, label values are quoted, values are numbers.
    static func parse(_ text: String) throws -> [String: Double] {
        var samples: [String: Double] = [:]
        var types: [String: String] = [:]
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line.isEmpty { continue }
            if line.hasPrefix("# HELP ") { continue }
            if line.hasPrefix("# TYPE ") {
                let p = line.split(separator: " ")
                guard p.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(String(p[3])) else { throw RuntimeError("bad TYPE: \(line)") }
                guard types[String(p[2])] == nil else { throw RuntimeError("TYPE declared twice: \(line)") }
                types[String(p[2])] = String(p[3])
                continue
            }
            guard let sp = line.lastIndex(of: " ") else { throw RuntimeError("no value: \(line)") }
            let key = String(line[..<sp])
            let valueText = String(line[line.index(after: sp)...])
            guard let v = Double(valueText.replacingOccurrences(of: "+Inf", with: "inf")) else { throw RuntimeError("bad value: \(line)") }
            let name = String(key.prefix { $0 != "{" })
            guard name.range(of: "^[a-zA-Z_:][a-zA-Z0-9_:]*$", options: .regularExpression) != nil else { throw RuntimeError("bad name: \(line)") }
            if key.contains("{") {
                guard key.hasSuffix("}"), key.range(of: #"^[^{]+\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\}$"#, options: .regularExpression) != nil else {
                    throw RuntimeError("bad labels: \(line)")
                }
            }
            let family = types[name] != nil ? name : ["_bucket", "_sum", "_count"].compactMap { name.hasSuffix($0) ? String(name.dropLast($0.count)) : nil }.first ?? name
            guard types[family] != nil else { throw RuntimeError("sample without TYPE: \(line)") }
            samples[key] = v
        }
        return samples
    }

    static func sum(_ s: [String: Double], _ prefix: String, _ contains: [String] = []) -> Double {
        s.filter { k, _ in k.hasPrefix(prefix + "{") && contains.allSatisfy { k.contains($0) } }.values.reduce(0, +)
    }

    func testMetricsParseAndMoveWithTrafficAndTheSpikeAlertFiresAndClears() throws {
        let hook = try WebhookCatcher()
        defer { hook.stop() }
        let sys = try OOPSSystem(extraEnv: ["OOPS_ALERT_FAILED_JOBS_THRESHOLD": "3", "OOPS_ALERT_FAILED_JOBS_WINDOW_S": "6",
                                            "OOPS_ALERT_WEBHOOK_URL": hook.url, "OOPS_LOG_LEVEL": "debug"])
        defer { sys.stop() }
        let before = try Self.parse(sys.operatorGet("/metrics").text)
        let m = sys.merchant("obs", balancePaise: 1_000_000)
        let rid = "obs-trace-\(UInt32.random(in: 0...UInt32.max))"
        let good = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("OBS-1"), headers: ["X-Request-Id": rid])
        XCTAssertEqual(good.status, 201)
        XCTAssertEqual(good.header("X-Request-Id"), rid)
        let id = good.body["id"]?.stringValue ?? ""
        XCTAssertTrue(waitUntil(timeoutMs: 15_000) { sys.call("GET", "/orders/\(id)", token: m.token).body["status"] == "placed" })

        // The request id reaches every process that worked on the request, the worker included.
        for key in ["order-0", "wallet-0", "auth-0", "parcelx-0"] {
            XCTAssertTrue(waitUntil(timeoutMs: 3000) { sys.procs.log(key).contains(rid) }, "\(key) logs carry the request id")
        }

        // Four orders the provider refuses at once (401): a spike of failures.
        for i in 0..<4 {
            _ = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("BAD-\(i)", name: "Key trouble [sandbox:http401]"))
        }
        XCTAssertTrue(waitUntil(timeoutMs: 15_000) { sys.operatorGet("/readyz").body["alerts"]?.arrayValue?.isEmpty == false }, "alert on /readyz")
        XCTAssertTrue(waitUntil(timeoutMs: 5000) { sys.procs.log("parcelx-0").contains("alert firing: failed-job spike") }, "an error-level log line")
        XCTAssertTrue(waitUntil(timeoutMs: 5000) { hook.bodies.contains { $0.contains("\"firing\"") } }, "webhook told")
        let page = sys.call("GET", "/admin/queues", token: sys.adminToken())
        XCTAssertTrue(page.text.contains("Alert: failed-job spike"), "the dashboard shows the alert")

        let after = try Self.parse(sys.operatorGet("/metrics").text)
        XCTAssertEqual(Self.sum(after, "oops_http_requests_total", ["POST /orders/create", "\"201\""]) - Self.sum(before, "oops_http_requests_total", ["POST /orders/create", "\"201\""]), 5)
        XCTAssertGreaterThanOrEqual(Self.sum(after, "oops_rpc_calls_total", ["service=\"order\"", "orders.create", "outcome=\"ok\""]), 5)
        XCTAssertGreaterThanOrEqual(Self.sum(after, "oops_orders_created_total"), 5)
        XCTAssertGreaterThanOrEqual(Self.sum(after, "oops_queue_jobs_completed_total", ["parcelx-orders-queue"]), 1)
        XCTAssertGreaterThanOrEqual(Self.sum(after, "oops_queue_jobs_failed_total", ["parcelx-orders-queue"]), 4)
        XCTAssertGreaterThanOrEqual(Self.sum(after, "oops_provider_calls_total", ["create_order", "success"]), 1)
        XCTAssertGreaterThanOrEqual(Self.sum(after, "oops_provider_calls_total", ["create_order", "http_error"]), 4)
        XCTAssertEqual(Self.sum(after, "oops_alert_firing"), 1)
        XCTAssertEqual(Self.sum(after, "oops_service_up"), 4, "one up series per live instance")
        XCTAssertNotNil(after.keys.first { $0.hasPrefix("oops_queue_jobs{") && $0.contains("state=\"failed\"") })
        // The provider gate: nothing in flight now, breaker closed (a 401 is an answer), latency known.
        XCTAssertEqual(Self.sum(after, "oops_provider_calls_in_flight"), 0)
        XCTAssertEqual(Self.sum(after, "oops_provider_breaker_state", ["state=\"closed\""]), 1)
        XCTAssertEqual(Self.sum(after, "oops_provider_breaker_state", ["state=\"open\""]), 0)
        XCTAssertGreaterThan(Self.sum(after, "oops_provider_call_latency_seconds", ["quantile=\"0.99\""]), 0)
        XCTAssertTrue(page.text.contains("data-provider-breaker=\"closed\""), "the dashboard shows the provider breaker")

        // It clears by itself once the window has passed.
        XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 250) { sys.operatorGet("/readyz").body["alerts"]?.arrayValue?.isEmpty == true }, "alert clears")
        XCTAssertTrue(waitUntil(timeoutMs: 5000) { hook.bodies.contains { $0.contains("\"resolved\"") } })

        // A dead instance disappears from /metrics instead of freezing.
        sys.procs.child("wallet-0")?.kill9()
        let dead = try Self.parse(sys.operatorGet("/metrics").text)
        XCTAssertEqual(Self.sum(dead, "oops_service_up", ["service=\"wallet\""]), 0)
        XCTAssertNil(dead.keys.first { $0.hasPrefix("oops_rpc_calls_total{") && $0.contains("service=\"wallet\"") })
    }
}

/// A tiny HTTP server on loopback that records request bodies (the alert webhook's receiver).
final class WebhookCatcher: @unchecked Sendable {
    let fd: Int32
    let port: UInt16
    private let received = Locked<[String]>([])
    var url: String { "http://127.0.0.1:\(port)/hook" }
    var bodies: [String] { received.current }

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = UInt16(bigEndian: addr.sin_port)
        listen(fd, 16)
        let lfd = fd
        let rec = received
        Thread.detachNewThread {
            while true {
                let c = accept(lfd, nil, nil)
                if c < 0 { return }
                var data: [UInt8] = []
                var buf = [UInt8](repeating: 0, count: 8192)
                var tv = timeval(tv_sec: 2, tv_usec: 0)
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                while true {
                    let n = read(c, &buf, buf.count)
                    if n <= 0 { break }
                    data.append(contentsOf: buf[0..<n])
                    let text = String(decoding: data, as: UTF8.self)
                    if let r = text.range(of: "\r\n\r\n") {
                        let head = text[..<r.lowerBound].lowercased()
                        let cl = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }.flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
                        if text[r.upperBound...].utf8.count >= cl {
                            rec.withLock { $0.append(String(text[r.upperBound...])) }
                            break
                        }
                    }
                }
                let resp = Array("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
                _ = resp.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(c)
            }
        }
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
