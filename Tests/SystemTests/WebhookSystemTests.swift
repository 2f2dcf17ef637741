import XCTest
import Foundation
import JSON
import Runtime
import Crypto
import TestSupport

/// Signed webhooks end to end: a local receiver (Tests/Python/webhook_receiver.py) that fails,
/// hangs, answers slowly or redirects; OrderSvc's delivery worker sends every status and tracking
/// change at least once, in order per order, signed; SSRF targets are refused; a failing
/// endpoint is disabled with a notice; merchants see only their own endpoint and deliveries.
final class WebhookSystemTests: XCTestCase {
    nonisolated(unsafe) static var system: OOPSSystem?
    nonisolated(unsafe) static var receiver: ChildProcess?
    nonisolated(unsafe) static var receiverPort: UInt16 = 0
    nonisolated(unsafe) static var receiverLog = ""
    nonisolated(unsafe) static var startError: Error?
    var sys: OOPSSystem { Self.system! }

    override class func setUp() {
        do {
            guard let python = which("python3") else { throw RuntimeError("python3 not found") }
            receiverPort = freePort()
            receiverLog = NSTemporaryDirectory() + "oops-webhooks-\(receiverPort).jsonl"
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().path + "/Python/webhook_receiver.py"
            receiver = try ChildProcess(python, [script, String(receiverPort), receiverLog])
            guard waitUntil(timeoutMs: 10_000, { HTTP.request("POST", "http://127.0.0.1:\(receiverPort)/ok").status == 200 }) else {
                throw RuntimeError("webhook receiver did not start")
            }
            system = try OOPSSystem(extraEnv: [
                "OOPS_WEBHOOK_ALLOW_HOSTS": "127.0.0.1:\(receiverPort)", "OOPS_WEBHOOK_BACKOFF_MS": "200", "OOPS_WEBHOOK_ATTEMPTS": "8",
                "OOPS_WEBHOOK_TIMEOUT_MS": "2500", "OOPS_WEBHOOK_DISABLE_AFTER": "6",
                "OOPS_TRACK_POLL_MS": "200", "OOPS_TRACK_MAX_POLL_MS": "400",
            ])
        } catch { startError = error }
    }

    override func setUpWithError() throws {
        if let e = Self.startError { throw e }
    }

    override class func tearDown() {
        system?.stop()
        system = nil
        _ = receiver?.stop()
        try? FileManager.default.removeItem(atPath: receiverLog)
    }

    var base: String { "http://127.0.0.1:\(Self.receiverPort)" }

    /// What the receiver got, in arrival order.
    func received() -> [JSON] {
        let text = (try? String(contentsOfFile: Self.receiverLog, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
    }

    func received(order id: String) -> [JSON] {
        received().filter { (try? JSONParser.parse($0["body"]?.stringValue ?? ""))?["data"]?["orderId"]?.stringValue == id }
    }

    @discardableResult
    func register(_ token: String, _ path: String) -> String {
        let r = sys.call("POST", "/webhooks/endpoint", token: token, body: ["url": .string(base + path)])
        XCTAssertEqual(r.status, 201, r.text)
        return r.body["secret"]?.stringValue ?? ""
    }

    func placedOrder(_ m: (userId: String, token: String), _ ref: String, name: String = "Ravi Kumar") -> (id: String, awb: String) {
        let r = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody(ref, name: name))
        XCTAssertEqual(r.status, 201, r.text)
        let id = r.body["id"]?.stringValue ?? ""
        var awb = ""
        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 100) {
            let o = self.sys.call("GET", "/orders/\(id)", token: m.token).body
            awb = o["awbNumber"]?.stringValue ?? ""
            return !awb.isEmpty && o["trackingStatus"] == "placed"
        }, "\(ref) placed and tracked")
        return (id, awb)
    }

    /// Moves the shipment along its path to the end, waiting for each step to be recorded.
    func deliver(_ id: String, _ awb: String, token: String, steps: Int) {
        for _ in 0..<steps {
            let code = HTTP.request("POST", sys.sandbox + "/__sandbox/advance", body: ["awb": .string(awb)]).body["status_code"]?.intValue
            XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 50) {
                self.sys.call("GET", "/orders/\(id)", token: token).body["tracking"]?.arrayValue?.last?["providerCode"]?.intValue == code
            })
        }
    }

    func verify(_ r: JSON, secret: String) -> Bool {
        guard let sig = r["headers"]?["oops-signature"]?.stringValue, let body = r["body"]?.stringValue else { return false }
        let parts = Dictionary(uniqueKeysWithValues: sig.split(separator: ",").compactMap { p -> (String, String)? in
            let kv = p.split(separator: "=", maxSplits: 1)
            return kv.count == 2 ? (String(kv[0]), String(kv[1])) : nil
        })
        guard let t = parts["t"], let v1 = parts["v1"] else { return false }
        return Sodium.hex(Sodium.hmacSHA256(key: Array(secret.utf8), Array("\(t).\(body)".utf8))) == v1
    }

    /// Every change of an order reaches a receiver that fails each event twice: at least once,
    /// signed, and the successful deliveries in the order of the changes; the deliveries list
    /// shows the failed attempts; a replay sends the same event id and body again.
    func testEveryChangeArrivesSignedInOrderDespiteFailures() throws {
        let m = sys.merchant("hooks", balancePaise: 100_000)
        let secret = register(m.token, "/flaky")
        XCTAssertTrue(secret.hasPrefix("whsec_"))
        XCTAssertNil(sys.call("GET", "/webhooks/endpoint", token: m.token).body["secret"], "the secret is shown once")
        let (id, awb) = placedOrder(m, "W-1")
        deliver(id, awb, token: m.token, steps: 4)

        // created (pending), placed, then tracking placed → picked_up → in_transit → out_for_delivery → delivered.
        let expected = 7
        var got: [JSON] = []
        XCTAssertTrue(waitUntil(timeoutMs: 60_000, intervalMs: 200) {
            got = self.received(order: id)
            return Set(got.filter { $0["status"] == 200 }.compactMap { $0["headers"]?["oops-event-id"]?.stringValue }).count >= expected
        }, "delivered: \(got.count) requests")
        XCTAssertTrue(got.allSatisfy { verify($0, secret: secret) }, "every request is signed with the endpoint's secret")
        XCTAssertFalse(got.contains { verify($0, secret: "whsec_wrong") })
        let delivered = got.filter { $0["status"] == 200 }.compactMap { r -> JSON? in try? JSONParser.parse(r["body"]?.stringValue ?? "") }
        var firsts: [String] = []
        for e in delivered { if let i = e["id"]?.stringValue, !firsts.contains(i) { firsts.append(i) } }
        let seqs = firsts.compactMap { Int($0.split(separator: "_").last ?? "") }
        XCTAssertEqual(seqs, seqs.sorted(), "in order per order: \(firsts)")
        let events = firsts.compactMap { i in delivered.first { $0["id"]?.stringValue == i } }
        XCTAssertEqual(events.map { $0["type"]?.stringValue ?? "" }, ["order.created", "order.status_changed"] + Array(repeating: "order.tracking_changed", count: 5))
        XCTAssertEqual(events.map { $0["data"]?["status"]?.stringValue ?? "" }, ["pending"] + Array(repeating: "placed", count: 6))
        XCTAssertEqual(events.compactMap { $0["data"]?["trackingStatus"]?.stringValue },
                       ["placed", "picked_up", "in_transit", "out_for_delivery", "delivered"])
        XCTAssertEqual(events[1]["data"]?["previousStatus"], "pending")
        XCTAssertEqual(events.last?["data"]?["previousTrackingStatus"], "out_for_delivery")
        XCTAssertTrue(events.allSatisfy { $0["createdAt"]?.stringValue != nil && $0["data"]?["orderId"]?.stringValue == id })
        XCTAssertGreaterThanOrEqual(got.filter { $0["status"] == 500 }.count, 2 * expected, "each event failed twice first")

        // The merchant's deliveries: every event delivered, with the failed attempts and responses.
        let list = sys.call("GET", "/webhooks/deliveries?limit=50", token: m.token)
        XCTAssertEqual(list.status, 200, list.text)
        let mine = (list.body["items"]?.arrayValue ?? []).filter { $0["orderId"]?.stringValue == id }
        XCTAssertEqual(mine.count, expected)
        XCTAssertTrue(mine.allSatisfy { $0["state"] == "delivered" }, list.text)
        XCTAssertTrue(mine.allSatisfy { ($0["attempts"]?.arrayValue ?? []).contains { $0["httpStatus"] == 500 } })

        // The order's timeline shows the webhook attempts, failed and delivered.
        let timeline = sys.call("GET", "/orders/\(id)/timeline", token: m.token).body["events"]?.arrayValue ?? []
        let hooks = timeline.filter { $0["type"] == "webhook" }
        XCTAssertTrue(hooks.contains { $0["httpStatus"] == 500 } && hooks.contains { $0["httpStatus"] == 200 }, hooks.description)

        // A replay: the same id and body again, recognisable by the id.
        let first = firsts[0]
        let before = received(order: id).filter { $0["headers"]?["oops-event-id"]?.stringValue == first && $0["status"] == 200 }.count
        let replay = sys.call("POST", "/webhooks/deliveries/\(first)/replay", token: m.token)
        XCTAssertEqual(replay.status, 202, replay.text)
        XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 100) {
            self.received(order: id).filter { $0["headers"]?["oops-event-id"]?.stringValue == first && $0["status"] == 200 }.count > before
        })
        let copies = Set(received(order: id).filter { $0["headers"]?["oops-event-id"]?.stringValue == first }.compactMap { $0["body"]?.stringValue })
        XCTAssertEqual(copies.count, 1, "a replay sends the same body")

        // The API document describes the event and its headers.
        let doc = sys.call("GET", "/openapi.json").body
        XCTAssertEqual(doc["components"]?["schemas"]?["WebhookEvent"]?["properties"]?["type"]?["enum"]?.arrayValue?.count, 3)
        XCTAssertNotNil(doc["webhooks"]?["orderEvent"]?["post"]?["requestBody"])
        XCTAssertNotNil(doc["paths"]?["/webhooks/deliveries/{eventId}/replay"]?["post"])
        for e in events {
            for k in ["id", "type", "createdAt", "data"] { XCTAssertNotNil(e[k], "event field \(k) as documented") }
        }

        // Another merchant sees none of it.
        let b = sys.merchant("hooksB", balancePaise: 0)
        XCTAssertEqual(sys.call("GET", "/webhooks/endpoint", token: b.token).status, 404)
        XCTAssertEqual(sys.call("GET", "/webhooks/deliveries", token: b.token).body["items"], [])
        XCTAssertEqual(sys.call("POST", "/webhooks/deliveries/\(first)/replay", token: b.token).status, 404)
        XCTAssertEqual(sys.call("GET", "/webhooks/deliveries", token: sys.adminToken()).status, 403)
    }

    /// OrderSvc dies (kill -9, a test failpoint) right after storing the order's first tracking
    /// status and before recording its webhook event, and is started again: the receiver still
    /// gets every event of the order, in order. Before the fix that event was never recorded: the
    /// poll's retry reports the same status, which changes nothing, so nothing emitted it.
    func testAnEventOwedWhenOrderSvcDiesIsStillDelivered() throws {
        let m = sys.merchant("hooksCrash", balancePaise: 100_000)
        register(m.token, "/ok")
        try sys.procs.crashAndRestart("order", extraEnv: ["OOPS_ORDER_FAILPOINT": "after_change:W-crash:3"])
        let r = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("W-crash"))
        XCTAssertEqual(r.status, 201, r.text)
        let id = r.body["id"]?.stringValue ?? ""
        XCTAssertTrue(waitUntil(timeoutMs: 60_000, intervalMs: 100) { !(self.sys.procs.child("order-0")?.isRunning ?? false) },
                      "OrderSvc reached the failpoint when the first tracking status was stored")
        XCTAssertTrue(sys.procs.log("order-0").contains("failpoint reached"))
        try sys.procs.crashAndRestart("order")
        var awb = ""
        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 100) {
            let o = self.sys.call("GET", "/orders/\(id)", token: m.token).body
            awb = o["awbNumber"]?.stringValue ?? ""
            return o["trackingStatus"] == "placed"
        }, "the tracking status stored before the crash")
        deliver(id, awb, token: m.token, steps: 4)

        let expected = 7
        var firsts: [String] = []
        var delivered: [JSON] = []
        XCTAssertTrue(waitUntil(timeoutMs: 60_000, intervalMs: 200) {
            delivered = self.received(order: id).filter { $0["status"] == 200 }.compactMap { try? JSONParser.parse($0["body"]?.stringValue ?? "") }
            firsts = []
            for e in delivered { if let i = e["id"]?.stringValue, !firsts.contains(i) { firsts.append(i) } }
            return firsts.count >= expected
        }, "delivered: \(firsts)")
        XCTAssertEqual(firsts, (1...expected).map { "evt_\(id)_\($0)" }, "every event, in order")
        let events = firsts.compactMap { i in delivered.first { $0["id"]?.stringValue == i } }
        XCTAssertEqual(events.map { $0["type"]?.stringValue ?? "" }, ["order.created", "order.status_changed"] + Array(repeating: "order.tracking_changed", count: 5))
        XCTAssertEqual(events.compactMap { $0["data"]?["trackingStatus"]?.stringValue }, ["placed", "picked_up", "in_transit", "out_for_delivery", "delivered"])
        let owed = events.count > 2 ? events[2] : [:]
        XCTAssertEqual(owed["data"]?["previousTrackingStatus"], .null)
        XCTAssertEqual(owed["data"]?["status"], "placed")
        if firsts.count < expected { print(sys.procs.allLogs("order-0").suffix(6000)) }
    }

    /// A receiver that hangs past the timeout, and one that is slow but in time: both get every
    /// event; the hanging attempt is recorded as a timeout.
    func testHangingAndSlowReceiversGetEveryEvent() {
        for path in ["/hang", "/slow"] {
            let m = sys.merchant("hooks\(path.dropFirst())", balancePaise: 100_000)
            let secret = register(m.token, path)
            let (id, _) = placedOrder(m, "W\(path)")
            var got: [JSON] = []
            XCTAssertTrue(waitUntil(timeoutMs: 60_000, intervalMs: 200) {
                got = self.received(order: id)
                // created, placed, tracking placed
                return Set(got.compactMap { $0["headers"]?["oops-event-id"]?.stringValue }).count >= 3
                    && self.sys.call("GET", "/webhooks/deliveries", token: m.token).body["items"]?.arrayValue?.allSatisfy { $0["state"] == "delivered" } == true
            }, "\(path): \(sys.call("GET", "/webhooks/deliveries", token: m.token).text)")
            XCTAssertTrue(got.allSatisfy { verify($0, secret: secret) })
            if path == "/hang" {
                let attempts = sys.call("GET", "/webhooks/deliveries", token: m.token).body["items"]?.arrayValue?.flatMap { $0["attempts"]?.arrayValue ?? [] } ?? []
                XCTAssertTrue(attempts.contains { ($0["error"]?.stringValue ?? "").contains("timed out") || ($0["error"]?.stringValue ?? "").contains("timeout") },
                              attempts.description)
            }
        }
    }

    /// SSRF: loopback, the metadata address, private ranges, names resolving to them, plain http,
    /// credentials in the URL are refused at registration, and nothing is stored; a redirect is
    /// never followed.
    func testUnsafeTargetsAreRefusedAndRedirectsNotFollowed() {
        let m = sys.merchant("ssrf", balancePaise: 100_000)
        for url in ["https://127.0.0.1/hook", "https://169.254.169.254/latest/meta-data", "https://10.1.2.3/h", "https://192.168.0.10/h",
                    "https://172.16.5.4/h", "https://100.64.0.1/h", "https://[::1]/h", "https://[fd00::1]/h", "https://[::ffff:127.0.0.1]/h",
                    "https://localhost/h", "https://127.1/h", "https://0x7f000001/h", "https://0.0.0.0/h",
                    "http://example.com/h", "https://user:pw@example.com/h", "ftp://example.com/h", "not a url",
                    "http://127.0.0.1:\(Self.receiverPort == 1 ? 2 : 1)/h"] {
            let r = sys.call("POST", "/webhooks/endpoint", token: m.token, body: ["url": .string(url)])
            XCTAssertTrue(r.status == 422 || r.status == 400, "\(url): \(r.status) \(r.text)")
            if r.status == 422 { XCTAssertEqual(r.body["error"]?["code"], "webhook_url_refused", url) }
        }
        XCTAssertEqual(sys.call("GET", "/webhooks/endpoint", token: m.token).status, 404, "nothing was stored")

        register(m.token, "/redirect")
        let (id, _) = placedOrder(m, "W-REDIR")
        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 200) {
            let items = self.sys.call("GET", "/webhooks/deliveries", token: m.token).body["items"]?.arrayValue ?? []
            return items.contains { ($0["attempts"]?.arrayValue ?? []).contains { $0["httpStatus"] == 302 && $0["error"] == "redirects are not followed" } }
        })
        XCTAssertFalse(received().contains { $0["path"] == "/redirect-target" }, "the redirect was not followed")
        XCTAssertFalse(received(order: id).contains { $0["status"] == 200 })
    }

    /// An endpoint that keeps failing is disabled, says why, and the merchant's profile carries a
    /// notice; registering again enables it.
    func testAnEndpointThatKeepsFailingIsDisabledWithANotice() {
        let m = sys.merchant("down", balancePaise: 100_000)
        register(m.token, "/down")
        _ = placedOrder(m, "W-DOWN")
        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 200) {
            self.sys.call("GET", "/webhooks/endpoint", token: m.token).body["enabled"] == false
        })
        let ep = sys.call("GET", "/webhooks/endpoint", token: m.token).body
        XCTAssertEqual(ep["consecutiveFailures"]?.intValue ?? 0 >= 6, true, ep.serialized())
        XCTAssertTrue(ep["disabledReason"]?.stringValue?.contains("failed delivery attempts") ?? false)
        let me = sys.call("GET", "/auth/me", token: m.token).body
        XCTAssertEqual(me["notices"]?.arrayValue?.first?["kind"], "webhook_endpoint_disabled", me.serialized())
        register(m.token, "/ok")
        XCTAssertEqual(sys.call("GET", "/webhooks/endpoint", token: m.token).body["enabled"], true)
        XCTAssertNil(sys.call("GET", "/auth/me", token: m.token).body["notices"])
    }
}
