import XCTest
import JSON
import Queue
import Redis
import Runtime
import TestSupport

/// An order's story end to end. Tracking: the sandbox walks each shipment along a tracking path (on
/// demand, or on its clock), ParcelXSvc polls the provider's track API from its own queue and
/// reports, OrderSvc records, and the merchant reads the tracking status on GET /orders/{id}.
final class OrderStorySystemTests: XCTestCase {
    nonisolated(unsafe) static var system: OOPSSystem?
    nonisolated(unsafe) static var startError: Error?
    var sys: OOPSSystem { Self.system! }

    override class func setUp() {
        // Polls 200 ms apart, at most 400 ms: seconds per path, not hours.
        do {
            system = try OOPSSystem(extraEnv: ["OOPS_TRACK_POLL_MS": "200", "OOPS_TRACK_MAX_POLL_MS": "400", "OOPS_PROVIDER_LATENCY_SAMPLE_MS": "300"])
        } catch { startError = error }
    }

    override func setUpWithError() throws {
        if let e = Self.startError { throw e }
    }

    override class func tearDown() {
        system?.stop()
        system = nil
    }

    func order(_ id: String, _ token: String) -> JSON { sys.call("GET", "/orders/\(id)", token: token).body }

    /// Creates an order for a consignee whose name picks the sandbox path; waits for its AWB and,
    /// with `tracked`, for the first poll to record the booking.
    func placedOrder(_ m: (userId: String, token: String), _ ref: String, name: String, tracked: Bool = true) -> (id: String, awb: String) {
        let r = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody(ref, name: name))
        XCTAssertEqual(r.status, 201, r.text)
        let id = r.body["id"]?.stringValue ?? ""
        var awb = ""
        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 100) {
            awb = self.order(id, m.token)["awbNumber"]?.stringValue ?? ""
            return !awb.isEmpty
        }, "\(ref) placed")
        if tracked {
            XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 50) { self.order(id, m.token)["trackingStatus"] == "placed" }, order(id, m.token).serialized())
        }
        return (id, awb)
    }

    @discardableResult
    func advance(_ awb: String, _ body: [String: JSON] = [:]) -> HTTPResult {
        var b = body
        b["awb"] = .string(awb)
        return HTTP.request("POST", sys.sandbox + "/__sandbox/advance", body: .object(b))
    }

    /// Moves each shipment one step at a time (all of them together), each time waiting until
    /// every order has recorded its new provider status; answers the orders at the end.
    func walk(_ shipments: [(id: String, awb: String, steps: Int)], token: String) -> [JSON] {
        for step in 0..<(shipments.map(\.steps).max() ?? 0) {
            var expected: [(String, Int64)] = []
            for s in shipments where step < s.steps {
                let moved = advance(s.awb)
                XCTAssertEqual(moved.status, 200, moved.text)
                expected.append((s.id, moved.body["status_code"]?.intValue ?? -1))
            }
            for (id, code) in expected {
                XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 50) {
                    self.order(id, token)["tracking"]?.arrayValue?.last?["providerCode"]?.intValue == code
                }, "order \(id) records provider status \(code): \(order(id, token).serialized())")
            }
        }
        return shipments.map { order($0.id, token) }
    }

    func trackingStatuses(_ o: JSON) -> [String] { o["tracking"]?.arrayValue?.map { $0["status"]?.stringValue ?? "raw:\($0["providerCode"]?.intValue ?? -1)" } ?? [] }

    func testEverySandboxPathEndsInItsStatusWithItsEvents() throws {
        let m = sys.merchant("track", balancePaise: 1_000_000)
        let paths: [(ref: String, name: String, steps: Int, statuses: [String], final: String)] = [
            ("T-DEL", "Ravi Kumar", 4, ["placed", "picked_up", "in_transit", "out_for_delivery", "delivered"], "delivered"),
            ("T-NDR", "Ravi [sandbox:ndr]", 6,
             ["placed", "picked_up", "in_transit", "out_for_delivery", "delivery_failed", "out_for_delivery", "delivered"], "delivered"),
            ("T-RTO", "Ravi [sandbox:rto]", 7,
             ["placed", "picked_up", "in_transit", "out_for_delivery", "delivery_failed", "rto_in_transit", "rto_in_transit", "rto_delivered"],
             "rto_delivered"),
            ("T-LOST", "Ravi [sandbox:lost]", 3, ["placed", "picked_up", "in_transit", "lost"], "lost"),
        ]
        // The first poll records the booking itself.
        let placed = paths.map { placedOrder(m, $0.ref, name: $0.name) }
        let results = walk(paths.indices.map { (placed[$0].id, placed[$0].awb, paths[$0].steps) }, token: m.token)
        for (i, p) in paths.enumerated() {
            let o = results[i]
            XCTAssertEqual(o["trackingStatus"]?.stringValue, p.final, "\(p.ref): \(o.serialized())")
            XCTAssertEqual(trackingStatuses(o), p.statuses, p.ref)
            XCTAssertEqual(o["status"], "placed", "tracking never moves the order's status")
            let entries = o["tracking"]?.arrayValue ?? []
            XCTAssertTrue(entries.allSatisfy { ($0["providerTitle"]?.stringValue ?? "").count > 0 && $0["at"]?.stringValue != nil }, p.ref)
        }

        // Polling stops at a final state: no tracking job is left waiting, and the provider is
        // asked nothing more about those shipments.
        let redis = try RedisClient(url: sys.redis.url)
        defer { redis.disconnect() }
        func pendingPolls() throws -> [String] {
            let ids = try redis.run(["ZRANGE", "bull:parcelx-tracking-queue:delayed", "0", "-1"]).strings
                + redis.run(["LRANGE", "bull:parcelx-tracking-queue:wait", "0", "-1"]).strings
                + redis.run(["LRANGE", "bull:parcelx-tracking-queue:active", "0", "-1"]).strings
            return ids.filter { id in placed.contains { id.hasPrefix("track-\($0.id)-") } }
        }
        var left: [String] = []
        XCTAssertTrue(waitUntil(timeoutMs: 10_000, intervalMs: 100) { left = (try? pendingPolls()) ?? ["?"]; return left.isEmpty }, "polls left: \(left)")
        let calls = trackCalls()
        Thread.sleep(forTimeInterval: 1.5)  // several poll intervals
        XCTAssertEqual(trackCalls(), calls, "no poll after a final state")

        // Every poll is in the provider audit log, like every provider call.
        let logs = sys.call("GET", "/admin/orders/\(placed[0].id)/provider-logs", token: sys.adminToken())
        let tracks = logs.body["entries"]?.arrayValue?.filter { $0["request"]?["operation"] == "track_order" } ?? []
        XCTAssertGreaterThanOrEqual(tracks.count, 5, logs.text)
        XCTAssertTrue(tracks.allSatisfy { $0["response"]?["httpStatus"] == 200 && ($0["request"]?["url"]?.stringValue ?? "").contains(placed[0].awb) })
        XCTAssertFalse(logs.text.contains("sandbox-secret"))
    }

    func trackCalls() -> Int64 {
        HTTP.request("GET", sys.sandbox + "/__sandbox/stats").body["endpoints"]?["track_order"]?["calls"]?.intValue ?? -1
    }

    /// A provider status the table does not know is kept raw on the order and logged, and the
    /// tracking status stays where it was; tracking goes on to the end.
    func testAnUnknownProviderStatusIsKeptRawNotGuessed() {
        let m = sys.merchant("trackraw", balancePaise: 100_000)
        let (id, awb) = placedOrder(m, "T-RAW", name: "Asha Rao")
        _ = walk([(id, awb, 1)], token: m.token)
        XCTAssertEqual(advance(awb, ["statusCode": 299, "statusTitle": "Misrouted"]).status, 200)
        XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 50) { self.order(id, m.token)["tracking"]?.arrayValue?.last?["providerCode"] == 299 })
        let o = order(id, m.token)
        XCTAssertEqual(o["trackingStatus"], "picked_up", o.serialized())
        XCTAssertEqual(o["tracking"]?.arrayValue?.last?["providerTitle"], "Misrouted")
        XCTAssertNil(o["tracking"]?.arrayValue?.last?["status"])
        XCTAssertTrue(sys.procs.log("parcelx-0").contains("unknown provider tracking status"))
        // Back on its path, it is followed to delivery.
        XCTAssertEqual(advance(awb, ["statusCode": 223]).status, 200)
        XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 50) { self.order(id, m.token)["trackingStatus"] == "in_transit" })
        // 223 is step 2 of the delivered path: two more steps reach delivery.
        XCTAssertEqual(advance(awb, ["path": "delivered", "steps": 2]).body["status_code"], 226)
        XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 50) { self.order(id, m.token)["trackingStatus"] == "delivered" }, order(id, m.token).serialized())
    }

    /// The sandbox's clock moves shipments by itself; the poll follows them to the end.
    func testTheSandboxClockMovesShipmentsToDelivery() {
        XCTAssertEqual(HTTP.request("POST", sys.sandbox + "/__sandbox/config", body: ["trackStepMs": 300]).status, 200)
        defer { _ = HTTP.request("POST", sys.sandbox + "/__sandbox/config", body: ["trackStepMs": 0]) }
        let m = sys.merchant("trackclock", balancePaise: 100_000)
        let (id, _) = placedOrder(m, "T-CLOCK", name: "Meera [sandbox:lost]", tracked: false)
        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 100) { self.order(id, m.token)["trackingStatus"] == "lost" }, order(id, m.token).serialized())
        XCTAssertEqual(HTTP.request("POST", sys.sandbox + "/__sandbox/config", body: ["trackStepMs": -1]).status, 400, "range-checked")
    }

    /// The sandbox's on-demand endpoint refuses what it cannot do, and changes nothing.
    func testSandboxAdvanceRefusesBadRequests() {
        XCTAssertEqual(advance("00000000000000").status, 404)
        XCTAssertEqual(HTTP.request("POST", sys.sandbox + "/__sandbox/advance", body: ["awb": "1", "steps": 0]).status, 400)
        XCTAssertEqual(HTTP.request("POST", sys.sandbox + "/__sandbox/advance", body: ["awb": "1", "path": "moon"]).status, 400)
        XCTAssertEqual(HTTP.request("POST", sys.sandbox + "/__sandbox/advance", body: ["awb": "1", "statusCode": 100_000]).status, 400)
        XCTAssertEqual(HTTP.request("POST", sys.sandbox + "/__sandbox/advance", body: ["awb": "1", "bogus": 1]).status, 400)
    }

    // MARK: timeline

    /// The merchant's timeline of an order that needed three create attempts, was booked and
    /// picked up: every event in time order, provider calls without bodies; the admin's has the
    /// bodies; another merchant gets 404; the admin finds the order by id, clientOrderId and AWB.
    func testTheTimelineTellsTheWholeStoryToTheOwnerAndTheAdminOnly() {
        let a = sys.merchant("storyA", balancePaise: 100_000)
        let b = sys.merchant("storyB", balancePaise: 100_000)
        // Two HTTP 500s from the provider, then a booking.
        let (id, awb) = placedOrder(a, "S-1", name: "Kiran [sandbox:flaky2]")
        _ = walk([(id, awb, 1)], token: a.token)

        let r = sys.call("GET", "/orders/\(id)/timeline", token: a.token)
        XCTAssertEqual(r.status, 200, r.text)
        let events = r.body["events"]?.arrayValue ?? []
        let times = events.compactMap { $0["at"]?.stringValue }
        XCTAssertEqual(times.count, events.count, "every event has a time")
        XCTAssertEqual(times, times.sorted(), "in time order")
        XCTAssertEqual(r.body["incomplete"], [])
        XCTAssertEqual(events.first?["type"], "created")
        func of(_ type: String) -> [JSON] { events.filter { $0["type"]?.stringValue == type } }
        XCTAssertEqual(of("charge").count, 1)
        XCTAssertGreaterThan(of("charge").first?["amountPaise"]?.intValue ?? 0, 0)
        XCTAssertEqual(of("refund").count, 0)
        XCTAssertEqual(of("status").map { $0["status"] }, ["placed"])
        XCTAssertEqual(of("tracking").compactMap { $0["trackingStatus"]?.stringValue }, ["placed", "picked_up"])
        let creates = of("provider_call").filter { $0["operation"] == "create_order" }
        XCTAssertEqual(creates.compactMap { $0["httpStatus"]?.intValue }, [500, 500, 200], creates.description)
        XCTAssertEqual(creates.compactMap { $0["attempt"]?.intValue }, [1, 2, 3])
        XCTAssertTrue(creates.allSatisfy { $0["durationMs"]?.intValue != nil && $0["jobId"] == .string("create-\(id)") })
        XCTAssertGreaterThanOrEqual(of("provider_call").filter { $0["operation"] == "track_order" }.count, 2)
        XCTAssertTrue(of("provider_call").allSatisfy { $0["requestBody"] == nil && $0["responseBody"] == nil && $0["url"] == nil },
                      "no provider bodies for the merchant")
        XCTAssertTrue(of("job_added").contains { $0["jobId"] == .string("create-\(id)") })
        XCTAssertTrue(of("job_finished").contains { $0["jobId"] == .string("create-\(id)") && $0["state"] == "completed" && $0["attemptsMade"] == 3 })
        XCTAssertTrue(of("job_added").contains { $0["jobId"] == .string("track-\(id)-1") })

        // Merchant B cannot read it (nor tell it exists); no token, 401.
        let other = sys.call("GET", "/orders/\(id)/timeline", token: b.token)
        XCTAssertEqual(other.status, 404, other.text)
        XCTAssertFalse(other.text.contains(awb))
        XCTAssertEqual(sys.call("GET", "/orders/\(id)/timeline").status, 401)
        XCTAssertEqual(sys.call("GET", "/orders/ord_doesnotexist/timeline", token: a.token).status, 404)

        // The admin sees the same story, with the provider's bodies.
        let admin = sys.adminToken()
        let full = sys.call("GET", "/orders/\(id)/timeline", token: admin)
        XCTAssertEqual(full.status, 200, full.text)
        XCTAssertGreaterThanOrEqual(full.body["events"]?.arrayValue?.count ?? 0, events.count, "polls go on meanwhile")
        let adminCreate = full.body["events"]?.arrayValue?.first { $0["type"] == "provider_call" && $0["operation"] == "create_order" && $0["httpStatus"] == 200 }
        XCTAssertEqual(adminCreate?["requestBody"]?["client_order_id"]?.stringValue, id)
        XCTAssertEqual(adminCreate?["responseBody"]?["data"]?["awb_number"]?.stringValue, awb)
        XCTAssertFalse(full.text.contains("sandbox-secret"))

        // The admin finds it by id, by the merchant's number and by the AWB; merchants may not search.
        for q in [id, "S-1", awb] {
            let f = sys.call("GET", "/admin/orders?q=\(q)", token: admin)
            XCTAssertEqual(f.status, 200, f.text)
            XCTAssertTrue(f.body["items"]?.arrayValue?.contains { $0["id"] == .string(id) } ?? false, "found by \(q): \(f.text)")
        }
        XCTAssertEqual(sys.call("GET", "/admin/orders?q=nothing-like-it", token: admin).body["items"], [])
        XCTAssertEqual(sys.call("GET", "/admin/orders?q=\(id)", token: a.token).status, 403)
        XCTAssertEqual(sys.call("GET", "/admin/orders", token: admin).status, 400)

        // And on the dashboard: the search page links to the timeline page, which lists the events.
        let search = HTTP.request("GET", sys.base + "/admin/queues/orders?q=\(awb)", headers: ["Authorization": "Bearer \(admin)"])
        XCTAssertEqual(search.status, 200, search.text)
        XCTAssertTrue(search.text.contains("/admin/queues/orders/\(id)/timeline"))
        let page = HTTP.request("GET", sys.base + "/admin/queues/orders/\(id)/timeline", headers: ["Authorization": "Bearer \(admin)"])
        XCTAssertEqual(page.status, 200, page.text)
        XCTAssertGreaterThanOrEqual(page.text.components(separatedBy: "<tr data-event=").count - 1, events.count)
        XCTAssertTrue(page.text.contains("client_order_id"), "provider bodies for the admin")
        XCTAssertFalse(page.text.contains("<script>"), "no inline script")
        // The API document describes the route and its events.
        let doc = sys.call("GET", "/openapi.json").body
        let op = doc["paths"]?["/orders/{id}/timeline"]?["get"]
        XCTAssertEqual(op?["x-access"], "user")
        let schema = op?["responses"]?["200"]?["content"]?["application/json"]?["schema"]
        XCTAssertNotNil(schema?["properties"]?["events"]?["items"]?["properties"]?["type"]?["enum"], schema?.serialized() ?? "no schema")
        XCTAssertNotNil(doc["paths"]?["/admin/orders"]?["get"])
        let merchantPage = HTTP.request("GET", sys.base + "/admin/queues/orders/\(id)/timeline", headers: ["Authorization": "Bearer \(a.token)"])
        XCTAssertEqual(merchantPage.status, 403)
    }

    /// A cancelled order's timeline ends with the cancellation and its refund.
    func testACancelledOrdersTimelineShowsTheRefund() {
        let a = sys.merchant("storyC", balancePaise: 100_000)
        let (id, _) = placedOrder(a, "S-2", name: "Lata Menon")
        XCTAssertEqual(sys.call("POST", "/orders/\(id)/cancel", token: a.token).status, 202)
        XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 100) { self.order(id, a.token)["status"] == "cancelled" })
        let events = sys.call("GET", "/orders/\(id)/timeline", token: a.token).body["events"]?.arrayValue ?? []
        let kinds = events.map { $0["type"]?.stringValue ?? "" }
        XCTAssertEqual(events.filter { $0["type"] == "status" }.map { $0["status"] }, ["placed", "cancel_requested", "cancelled"])
        XCTAssertEqual(kinds.filter { $0 == "refund" }.count, 1)
        XCTAssertLessThan(kinds.firstIndex(of: "charge") ?? 99, kinds.firstIndex(of: "refund") ?? -1, "charged before refunded")
        XCTAssertTrue(events.contains { $0["type"] == "provider_call" && $0["operation"] == "cancel_order" && $0["outcome"] == "success" })
    }

    // MARK: provider latency over time

    /// The dashboard's latency chart draws the samples ParcelXSvc keeps in Redis: one line per
    /// quantile with a point per sample.
    func testTheLatencyChartDrawsTheSamplesInRedis() throws {
        let m = sys.merchant("latency", balancePaise: 100_000)
        _ = placedOrder(m, "L-1", name: "Dev Anand")
        let redis = try RedisClient(url: sys.redis.url)
        defer { redis.disconnect() }
        XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 100) { ((try? redis.run(["LLEN", "oops:parcelx:latency:0"]).intValue) ?? 0) >= 2 })
        let page = HTTP.request("GET", sys.base + "/admin/queues", headers: ["Authorization": "Bearer \(sys.adminToken())"])
        XCTAssertEqual(page.status, 200)
        // Samples only grow while the page is read: the chart has at least those seen before.
        let samples = try redis.run(["LRANGE", "oops:parcelx:latency:0", "0", "-1"]).strings.compactMap { try? JSONParser.parse($0) }
        XCTAssertTrue(samples.allSatisfy { ($0["answered"]?.intValue ?? 0) > 0 && $0["ms"]?["p99"]?.doubleValue != nil }, samples.description)
        XCTAssertTrue(page.text.contains("data-latency-chart=\"0\""), "no latency chart")
        for q in ["p50", "p90", "p99"] {
            guard let r = page.text.range(of: "data-quantile=\"\(q)\" data-points=\"") else { XCTFail("no \(q) line"); continue }
            let n = Int(page.text[r.upperBound...].prefix { $0.isNumber }) ?? 0
            XCTAssertGreaterThanOrEqual(n, 2, q)
            XCTAssertLessThanOrEqual(n, samples.count + 5, q)
        }
        XCTAssertEqual(sys.call("GET", "/admin/queues", token: m.token).status, 403)
    }
}
