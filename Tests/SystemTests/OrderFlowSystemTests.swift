import XCTest
import JSON
import RPC
import Runtime
import Store
import TestSupport

/// End to end through the Gateway, against the real process set: HTTP in, RPC between
/// processes, the store (SQLite files here, MongoDB in the subclass), redis-server queues,
/// ParcelXSvc workers and the sandbox.
class OrderFlowSystemTests: XCTestCase {
    class var backend: StoreBackend { .sqlite }
    nonisolated(unsafe) static var system: OOPSSystem?
    nonisolated(unsafe) static var startError: Error?
    var sys: OOPSSystem { Self.system! }

    override class func setUp() {
        do { system = try OOPSSystem(backend: backend) } catch { startError = error }
    }

    override func setUpWithError() throws {
        if let e = Self.startError { throw e }
    }

    override class func tearDown() {
        system?.stop()
        system = nil
    }

    func waitForOrder(_ id: String, token: String, status: String, timeoutMs: Int = 20_000) -> JSON {
        var last: JSON = .null
        _ = waitUntil(timeoutMs: timeoutMs, intervalMs: 100) {
            last = self.sys.call("GET", "/orders/\(id)", token: token).body
            return last["status"]?.stringValue == status
        }
        return last
    }

    func balance(_ token: String) -> Int64 {
        sys.call("GET", "/wallet", token: token).body["balancePaise"]?.intValue ?? -1
    }

    func sandboxShipments() -> [JSON] {
        HTTP.request("GET", sys.sandbox + "/__sandbox/shipments").body["shipments"]?.arrayValue
            ?? HTTP.request("GET", sys.sandbox + "/__sandbox/shipments").body.arrayValue ?? []
    }

    func testReadyzListsEveryProcessHealthy() {
        let r = sys.operatorGet("/readyz")
        XCTAssertEqual(r.status, 200, r.text)
        for s in ["auth", "wallet", "order", "parcelx"] {
            XCTAssertEqual(r.body["services"]?[s]?["healthy"], 1, "\(s): \(r.text)")
        }
        XCTAssertEqual(r.body["redis"]?["ok"], true)
        XCTAssertNotNil(r.header("X-Request-Id"))
    }

    func testOrderIsAcceptedThenPlacedAndChargedOnce() {
        let m = sys.merchant("flow", balancePaise: 100_000)
        let create = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("A-1"))
        XCTAssertEqual(create.status, 201, create.text)
        let id = create.body["id"]?.stringValue ?? ""
        XCTAssertEqual(create.body["status"], "pending")
        let charge = create.body["chargePaise"]?.intValue ?? 0
        XCTAssertGreaterThan(charge, 0)
        XCTAssertEqual(balance(m.token), 100_000 - charge)

        let replay = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("A-1"))
        XCTAssertEqual(replay.status, 200, replay.text)
        XCTAssertEqual(replay.body["id"]?.stringValue, id)
        XCTAssertEqual(balance(m.token), 100_000 - charge, "a replay charges nothing")

        var other = OOPSSystem.orderBody("A-1")
        other["pickupAddressId"] = "WH-2"
        XCTAssertEqual(sys.call("POST", "/orders/create", token: m.token, body: other).status, 409)

        let placed = waitForOrder(id, token: m.token, status: "placed")
        XCTAssertEqual(placed["status"], "placed", placed.serialized())
        XCTAssertEqual(placed["providerSyncStatus"], "synced")
        XCTAssertEqual(placed["awbNumber"]?.stringValue?.count, 14)
        XCTAssertNotNil(placed["parcelxRequestRefId"]?.stringValue)
        let shipments = sandboxShipments().filter { $0["client_order_id"]?.stringValue == id }
        XCTAssertEqual(shipments.count, 1, "exactly one shipment at the provider")

        let logs = sys.call("GET", "/admin/orders/\(id)/provider-logs", token: sys.adminToken())
        XCTAssertEqual(logs.status, 200, logs.text)
        XCTAssertFalse(logs.text.contains("sandbox-secret"), "the provider secret never reaches the audit log")
        XCTAssertGreaterThanOrEqual(logs.body["requestCount"]?.intValue ?? 0, 1)
        XCTAssertEqual(logs.body["requestCount"], logs.body["responseCount"])
        XCTAssertEqual(sys.call("GET", "/admin/orders/\(id)/provider-logs", token: m.token).status, 403)
    }

    func testCancelRefundsAndCancelsAtTheProvider() {
        let m = sys.merchant("cancel", balancePaise: 100_000)
        let create = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("C-1"))
        let id = create.body["id"]?.stringValue ?? ""
        _ = waitForOrder(id, token: m.token, status: "placed")
        let c = sys.call("POST", "/orders/\(id)/cancel", token: m.token)
        XCTAssertEqual(c.status, 202, c.text)
        XCTAssertEqual(sys.call("POST", "/orders/\(id)/cancel", token: m.token).status, 202, "repeating a cancel is harmless")
        let done = waitForOrder(id, token: m.token, status: "cancelled")
        XCTAssertEqual(done["status"], "cancelled", done.serialized())
        XCTAssertEqual(balance(m.token), 100_000, "the charge is refunded exactly once")
        let s = sandboxShipments().first { $0["client_order_id"]?.stringValue == id }
        XCTAssertEqual(s?["status"]?.stringValue?.lowercased().contains("cancel"), true, "\(String(describing: s))")
    }

    /// A crash right after the insert leaves an order `accepted`: stored, not charged, no job.
    /// Cancelling it must not let the recovery pass charge it after the cancel refunded nothing.
    func testCancellingAnOrderInterruptedBeforeItsChargeLeavesTheWalletWhole() throws {
        let m = sys.merchant("interrupted", balancePaise: 100_000)
        let first = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("I-1"))
        XCTAssertEqual(first.status, 201, first.text)
        let charge = first.body["chargePaise"]?.intValue ?? 0
        let rpc = RPCClient(runDir: sys.procs.runDir, service: "order")
        defer { rpc.closeAll() }
        var doc = try XCTUnwrap(try rpc.call("orders.internal.get", ["orderId": first.body["id"] ?? .null], ctx: .new(actor: .system)).objectValue)
        let id = ID.make("ord")
        let now = Clock.wallMillis()
        for (k, v) in ["_id": JSON.string(id), "id": .string(id), "clientOrderId": "I-2", "stage": "accepted", "status": "pending",
                       "providerSyncStatus": "pending", "awbNumber": .null, "createdAtMs": .int(now), "updatedAtMs": .int(now)] as [String: JSON] {
            doc[k] = v
        }
        let store = try sys.procs.openStore("order")
        defer { store.close() }
        guard case .created = try store.insert("orders", .object(doc)) else { return XCTFail("could not plant the interrupted order") }

        let c = sys.call("POST", "/orders/\(id)/cancel", token: m.token)
        XCTAssertEqual(c.status, 202, c.text)
        XCTAssertEqual(waitForOrder(id, token: m.token, status: "cancelled")["status"], "cancelled")
        // The recovery pass (every second here) looks at orders idle for 3 s: give it two turns.
        usleep(5_000_000)
        XCTAssertEqual(balance(m.token), 100_000 - charge, "only the first order's charge remains")
        let entries = sys.call("GET", "/wallet/transactions?limit=50", token: m.token).body["items"]?.arrayValue ?? []
        let mine = entries.filter { $0["orderId"]?.stringValue == id }.compactMap { $0["reason"]?.stringValue }
        XCTAssertEqual(mine.sorted(), ["order_charge", "order_refund"], "the cancel finished the charge, then refunded it")
        XCTAssertEqual(try rpc.call("orders.internal.get", ["orderId": .string(id)], ctx: .new(actor: .system))["stage"], "enqueued")
    }

    /// A stored order this binary cannot read is this service's fault, answered 500 with no
    /// details; it used to be reported as an outage (503 "Order store unavailable"), which tells
    /// a client to retry something that will never work.
    func testAnOrderThatCannotBeReadIsAnInternalErrorNotAnOutage() throws {
        let m = sys.merchant("unreadable", balancePaise: 100_000)
        let first = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("U-1"))
        XCTAssertEqual(first.status, 201, first.text)
        let rpc = RPCClient(runDir: sys.procs.runDir, service: "order")
        defer { rpc.closeAll() }
        var doc = try XCTUnwrap(try rpc.call("orders.internal.get", ["orderId": first.body["id"] ?? .null], ctx: .new(actor: .system)).objectValue)
        let id = ID.make("ord")
        for (k, v) in ["_id": JSON.string(id), "id": .string(id), "clientOrderId": "U-2", "status": "no_such_status"] as [String: JSON] {
            doc[k] = v
        }
        let store = try sys.procs.openStore("order")
        defer { store.close() }
        guard case .created = try store.insert("orders", .object(doc)) else { return XCTFail("could not plant the unreadable order") }

        let c = sys.call("POST", "/orders/\(id)/cancel", token: m.token)
        XCTAssertEqual(c.status, 500, c.text)
        XCTAssertEqual(c.body["error"]?["code"], "internal_error", c.text)
        XCTAssertEqual(c.body["error"]?["message"], "Internal error", c.text)
        XCTAssertEqual(try store.get("orders", id: id)?["status"], "no_such_status", "nothing changed")
    }

    func testProviderRejectionFailsTheOrderAndRefunds() {
        let m = sys.merchant("reject", balancePaise: 100_000)
        let create = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("R-1", name: "Bad [sandbox:reject]"))
        XCTAssertEqual(create.status, 201)
        let id = create.body["id"]?.stringValue ?? ""
        let o = waitForOrder(id, token: m.token, status: "failed")
        XCTAssertEqual(o["status"], "failed", o.serialized())
        XCTAssertEqual(o["providerSyncStatus"], "failed")
        XCTAssertTrue(waitUntil(timeoutMs: 5000) { self.balance(m.token) == 100_000 }, "refunded")
    }

    func testFlakyProviderIsRetriedIntoOneShipment() {
        let m = sys.merchant("flaky", balancePaise: 100_000)
        let create = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("F-1", name: "Flaky [sandbox:flaky2]"))
        let id = create.body["id"]?.stringValue ?? ""
        let o = waitForOrder(id, token: m.token, status: "placed", timeoutMs: 30_000)
        XCTAssertEqual(o["status"], "placed", o.serialized())
        XCTAssertEqual(sandboxShipments().filter { $0["client_order_id"]?.stringValue == id }.count, 1)
        let logs = sys.call("GET", "/admin/orders/\(id)/provider-logs", token: sys.adminToken())
        let outcomes = logs.body["entries"]?.arrayValue?.compactMap { $0["response"]?["outcome"]?.stringValue } ?? []
        XCTAssertEqual(outcomes.filter { $0 == "http_error" }.count, 2, "\(outcomes)")
    }

    func testTimeoutDoesNotCreateASecondShipment() {
        let m = sys.merchant("timeout", balancePaise: 100_000)
        let create = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("T-1", name: "Slow [sandbox:timeout]"))
        let id = create.body["id"]?.stringValue ?? ""
        let o = waitForOrder(id, token: m.token, status: "placed", timeoutMs: 30_000)
        XCTAssertEqual(o["status"], "placed", o.serialized())
        XCTAssertEqual(sandboxShipments().filter { $0["client_order_id"]?.stringValue == id }.count, 1)
    }

    func testOrderNeedsApprovedKYCAndMoney() {
        let noKyc = sys.merchant("nokyc", approved: false, balancePaise: 100_000)
        let r = sys.call("POST", "/orders/create", token: noKyc.token, body: OOPSSystem.orderBody("K-1"))
        XCTAssertEqual(r.status, 422, r.text)
        XCTAssertEqual(r.body["error"]?["code"], "kyc_not_approved")

        let poor = sys.merchant("poor", balancePaise: 100)
        let p = sys.call("POST", "/orders/create", token: poor.token, body: OOPSSystem.orderBody("P-1"))
        XCTAssertEqual(p.status, 422, p.text)
        XCTAssertEqual(p.body["error"]?["code"], "insufficient_balance")
        XCTAssertEqual(balance(poor.token), 100)
        XCTAssertEqual(sys.call("GET", "/orders", token: poor.token).body["items"]?.arrayValue?.count, 0, "a refused order does not exist")
    }

    func testMerchantsCannotSeeEachOthersOrders() {
        let a = sys.merchant("a", balancePaise: 100_000)
        let b = sys.merchant("b", balancePaise: 100_000)
        let id = sys.call("POST", "/orders/create", token: a.token, body: OOPSSystem.orderBody("X-1")).body["id"]?.stringValue ?? ""
        XCTAssertEqual(sys.call("GET", "/orders/\(id)", token: b.token).status, 404)
        XCTAssertEqual(sys.call("POST", "/orders/\(id)/cancel", token: b.token).status, 404)
        XCTAssertEqual(sys.call("GET", "/orders/\(id)", token: a.token).status, 200)
        XCTAssertEqual(sys.call("GET", "/orders/\(id)").status, 401)
    }

    func testValidationErrorsHaveFieldPaths() {
        let m = sys.merchant("val", balancePaise: 100_000)
        var body = OOPSSystem.orderBody("V-1")
        body["consignee"]?["mobile"] = "12345"
        body["package"]?["weightGrams"] = 0
        let r = sys.call("POST", "/orders/create", token: m.token, body: body)
        XCTAssertEqual(r.status, 400, r.text)
        let paths = Set(r.body["error"]?["fields"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? [])
        XCTAssertTrue(paths.contains("consignee.mobile"), "\(paths)")
        XCTAssertTrue(paths.contains("package.weightGrams"), "\(paths)")
    }

    func testDuplicatesAtTheSameInstantOnTwoOrderSvcInstances() throws {
        let sys = self.sys
        try sys.procs.start("order", instance: 1)
        defer { sys.procs.child("order-1")?.stop() }
        // /readyz rescans the sockets, so the Gateway's client knows both instances from here on.
        XCTAssertTrue(waitUntil(timeoutMs: 5000) { sys.operatorGet("/readyz").body["services"]?["order"]?["healthy"] == 2 })
        let m = sys.merchant("twin", balancePaise: 1_000_000)
        var changed = OOPSSystem.orderBody("TWIN-1")
        changed["pickupAddressId"] = "WH-9"
        let other = changed
        // 16 threads released together: half send the payload, half a different one under the same id.
        let statuses = Locked<[Int]>([])
        let ids = Locked<Set<String>>([])
        inParallel(16) { i in
            let r = sys.call("POST", "/orders/create", token: m.token, body: i % 2 == 0 ? OOPSSystem.orderBody("TWIN-1") : other)
            statuses.withLock { $0.append(r.status) }
            if let id = r.body["id"]?.stringValue { _ = ids.withLock { $0.insert(id) } }
        }
        let st = statuses.current
        XCTAssertEqual(st.filter { $0 == 201 }.count, 1, "\(st)")
        XCTAssertEqual(st.filter { $0 == 201 || $0 == 200 || $0 == 409 }.count, 16, "\(st)")
        XCTAssertEqual(st.filter { $0 == 409 }.count + st.filter { $0 == 200 }.count, 15)
        XCTAssertEqual(ids.current.count, 1, "one order")
        let order = sys.call("GET", "/orders/\(ids.current.first!)", token: m.token).body
        XCTAssertEqual(balance(m.token), 1_000_000 - (order["chargePaise"]?.intValue ?? 0), "one charge")
        // Both instances answered some of them.
        let metrics = sys.operatorGet("/metrics").text
        for inst in ["0", "1"] {
            XCTAssertTrue(metrics.contains("oops_rpc_calls_total{service=\"order\",instance=\"\(inst)\",method=\"orders.create\""), "order-\(inst) served creates")
        }
    }

    func testConcurrentDuplicatesMakeOneOrderAndOneCharge() {
        let m = sys.merchant("dup", balancePaise: 100_000)
        let statuses = Locked<[Int]>([])
        let ids = Locked<Set<String>>([])
        let sys = self.sys
        DispatchQueue.concurrentPerform(iterations: 20) { _ in
            let r = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("D-1"))
            statuses.withLock { $0.append(r.status) }
            if let id = r.body["id"]?.stringValue { _ = ids.withLock { $0.insert(id) } }
        }
        XCTAssertEqual(statuses.current.filter { $0 == 201 }.count, 1, "\(statuses.current)")
        XCTAssertEqual(statuses.current.filter { $0 == 200 }.count, 19)
        XCTAssertEqual(ids.current.count, 1)
        let charge = sys.call("GET", "/orders/\(ids.current.first!)", token: m.token).body["chargePaise"]?.intValue ?? 0
        XCTAssertEqual(balance(m.token), 100_000 - charge)
    }

    /// ParcelXSvc reports provider outcomes; OrderSvc decides. A report the order has absorbed
    /// already changes nothing: a repeated booking, a late failure after the booking, a cancel
    /// report for an order nobody cancelled. The generic compare-and-set is gone.
    func testProviderReportsAreIdempotentAndCannotMoveAnOrderBackwards() throws {
        let m = sys.merchant("reports", balancePaise: 100_000)
        let create = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("R-1"))
        let id = create.body["id"]?.stringValue ?? ""
        let placed = waitForOrder(id, token: m.token, status: "placed")
        let awb = placed["awbNumber"]?.stringValue ?? ""
        XCTAssertFalse(awb.isEmpty, placed.serialized())
        let charged = balance(m.token)

        let orders = RPCClient(runDir: sys.procs.runDir, service: "order")
        let ctx = RPCContext.new(actor: .system, timeoutMs: 5000, requestId: "req-reports")
        for _ in 0..<2 {
            let again = try orders.call("orders.provider.placed", ["orderId": .string(id), "awbNumber": .string(awb)], ctx: ctx)
            XCTAssertEqual(again["applied"], false, again.serialized())
            XCTAssertEqual(again["status"], "placed")
        }
        let late = try orders.call("orders.provider.failed", ["orderId": .string(id), "outcome": "exhausted", "message": "late", "mayHaveBooked": true], ctx: ctx)
        XCTAssertEqual(late["applied"], false, late.serialized())
        XCTAssertEqual(late["jobs"], [], "no clean-up job for a booked order")
        let stray = try orders.call("orders.provider.cancelled", ["orderId": .string(id), "atProvider": true], ctx: ctx)
        XCTAssertEqual(stray["status"], "placed", "only a cancel request can lead to cancelled")

        let after = sys.call("GET", "/orders/\(id)", token: m.token).body
        XCTAssertEqual(after["status"], "placed")
        XCTAssertEqual(after["awbNumber"]?.stringValue, awb)
        XCTAssertEqual(after["history"]?.arrayValue?.count, placed["history"]?.arrayValue?.count, "no history line was added")
        XCTAssertEqual(balance(m.token), charged, "no refund for a booked order")

        do {
            _ = try orders.call("orders.provider.placed", ["orderId": "ord_missing", "awbNumber": "X1"], ctx: ctx)
            XCTFail("a report for an unknown order succeeded")
        } catch { XCTAssertEqual(error.code, ErrorCode.notFound.rawValue, "\(error)") }
        do {
            _ = try orders.call("orders.internal.transition", ["orderId": .string(id), "from": ["placed"], "to": "cancelled"], ctx: ctx)
            XCTFail("the generic transition still exists")
        } catch { XCTAssertEqual(error.code, ErrorCode.methodNotFound.rawValue, "\(error)") }
        XCTAssertEqual(sys.call("GET", "/orders/\(id)", token: m.token).body["status"], "placed")
    }
}

/// The same tests with every service's data in MongoDB.
final class OrderFlowMongoSystemTests: OrderFlowSystemTests {
    override class var backend: StoreBackend { .mongodb }
    override func testReadyzListsEveryProcessHealthy() { super.testReadyzListsEveryProcessHealthy() }
    override func testOrderIsAcceptedThenPlacedAndChargedOnce() { super.testOrderIsAcceptedThenPlacedAndChargedOnce() }
    override func testCancelRefundsAndCancelsAtTheProvider() { super.testCancelRefundsAndCancelsAtTheProvider() }
    override func testCancellingAnOrderInterruptedBeforeItsChargeLeavesTheWalletWhole() throws { try super.testCancellingAnOrderInterruptedBeforeItsChargeLeavesTheWalletWhole() }
    override func testProviderRejectionFailsTheOrderAndRefunds() { super.testProviderRejectionFailsTheOrderAndRefunds() }
    override func testFlakyProviderIsRetriedIntoOneShipment() { super.testFlakyProviderIsRetriedIntoOneShipment() }
    override func testTimeoutDoesNotCreateASecondShipment() { super.testTimeoutDoesNotCreateASecondShipment() }
    override func testOrderNeedsApprovedKYCAndMoney() { super.testOrderNeedsApprovedKYCAndMoney() }
    override func testMerchantsCannotSeeEachOthersOrders() { super.testMerchantsCannotSeeEachOthersOrders() }
    override func testValidationErrorsHaveFieldPaths() { super.testValidationErrorsHaveFieldPaths() }
    override func testDuplicatesAtTheSameInstantOnTwoOrderSvcInstances() throws { try super.testDuplicatesAtTheSameInstantOnTwoOrderSvcInstances() }
    override func testConcurrentDuplicatesMakeOneOrderAndOneCharge() { super.testConcurrentDuplicatesMakeOneOrderAndOneCharge() }
}
