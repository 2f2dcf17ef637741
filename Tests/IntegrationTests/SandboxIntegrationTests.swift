import Foundation
import JSON
import ParcelXAPI
import Runtime
import TestSupport
import XCTest

/// The built ParcelXSandbox binary on a free port, driven over real HTTP the way ParcelXSvc will.
final class SandboxIntegrationTests: XCTestCase {
    private var child: ChildProcess!
    private var port: UInt16 = 0
    private var logDir: TempDir!
    private let token = ParcelXAuth.accessToken(accessKey: "test-access", secretKey: "test-secret")

    override func setUpWithError() throws {
        let exe = productsDirectory() + "/ParcelXSandbox"
        guard FileManager.default.isExecutableFile(atPath: exe) else {
            XCTFail("ParcelXSandbox is not built at \(exe)")
            throw RuntimeError("missing binary")
        }
        port = freePort()
        logDir = TempDir("sandbox")
        child = try ChildProcess(exe, [], env: [
            "OOPS_SANDBOX_ADDR": "127.0.0.1:\(port)",
            "PARCELX_ACCESS_KEY": "test-access",
            "PARCELX_SECRET_KEY": "test-secret",
            "OOPS_SANDBOX_TIMEOUT_MS": "30000",
        ], logFile: logDir.path + "/sandbox.log")
        let p = port
        XCTAssertTrue(waitUntil(timeoutMs: 10_000) { rawRequest(port: p, "GET", "/healthz", timeoutS: 1).status == 200 },
                      "sandbox did not come up")
    }

    override func tearDown() {
        child?.kill9()
        logDir?.remove()
    }

    // MARK: helpers

    private func order(_ id: String, name: String = "Asha Verma", mobile: String = "9876543210", pincode: String = "110001",
                       weight: String = "0.5") -> ParcelXCreateOrderRequest {
        ParcelXCreateOrderRequest(
            clientOrderId: id, invoiceNumber: id, consigneeName: name, consigneeMobile: mobile, consigneeAddress1: "12 MG Road",
            consigneePincode: pincode, pickAddressId: "4257544", expressType: "surface", paymentMode: "Prepaid", orderAmount: "499.00",
            shipmentLength: ["10"], shipmentWidth: ["10"], shipmentHeight: ["5"], shipmentWeight: [weight],
            products: [ParcelXProduct(productSku: "SKU-1", productName: "Kurta", productValue: "499.00", productQuantity: "1")])
    }

    private func call(_ op: ParcelXOperation, _ body: (any Encodable)? = nil, lookup: String? = nil, token: String?? = nil,
                      timeoutMs: Int = 15_000) throws -> RawResponse {
        let ep = op.endpoint
        let path = ep.url(baseURL: "", value: lookup)
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        switch token {
        case .none: headers.append((ParcelXAuth.headerName, self.token))
        case .some(.some(let t)): headers.append((ParcelXAuth.headerName, t))
        case .some(.none): break
        }
        let bytes = try body.map { try JSON(encoding: $0).serializedBytes() } ?? []
        let r = rawRequest(port: port, ep.method, path, body: ep.method == "GET" ? nil : bytes, headers: headers, timeoutS: Double(timeoutMs) / 1000)
        if r.status == 0 { throw RawHTTPError(r.text) }
        return r
    }

    private func decode<T: Decodable>(_ type: T.Type, _ r: RawResponse) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(r.body))
    }

    private func admin(_ method: String, _ path: String, _ body: JSON? = nil) throws -> (Int, JSON) {
        let r = rawRequest(port: port, method, path, body: body?.serializedBytes() ?? (method == "POST" ? [] : nil))
        return (r.status, try JSONParser.parse(r.body))
    }

    private func shipments() throws -> [JSON] {
        try admin("GET", "/__sandbox/shipments").1["shipments"]?.arrayValue ?? []
    }

    // MARK: orders

    func testCreateBooksShipmentWithFourteenDigitAWB() throws {
        let r = try call(.createOrder, order("ORD-1"))
        XCTAssertEqual(r.status, 200)
        let answer = try decode(ParcelXCreateOrderResponse.self, r)
        XCTAssertTrue(answer.status)
        XCTAssertEqual(answer.message, "Order Placed Successfully.")
        let awb = try XCTUnwrap(answer.data?.awbNumber)
        XCTAssertEqual(awb.count, 14)
        XCTAssertTrue(awb.allSatisfy(\.isNumber))
        XCTAssertEqual(answer.data?.clientOrderId, "ORD-1")
        XCTAssertEqual(answer.data?.courierName, "Delhivery")
        // The raw body keeps the provider's quirks: nulls written out, `lable_data` spelling.
        let raw = try JSONParser.parse(r.body)
        XCTAssertEqual(raw["data"]?["job_id"], .null)
        XCTAssertNotNil(raw["data"]?["lable_data"])

        let t = try decode(ParcelXTrackResponse.self, try call(.trackOrder, lookup: awb))
        XCTAssertTrue(t.status)
        XCTAssertEqual(t.currentStatus, ParcelXTrackStatus(statusCode: 221, statusTitle: "Booked"))
        XCTAssertEqual(t.currentStatus?.code, .booked)
        XCTAssertEqual(t.clientOrderId, "ORD-1")
    }

    func testSecondCreateWithSameClientOrderIdIsRefusedAndBooksNothing() throws {
        let first = try decode(ParcelXCreateOrderResponse.self, try call(.createOrder, order("ORD-DUP")))
        XCTAssertTrue(first.status)
        let second = try call(.createOrder, order("ORD-DUP"))
        XCTAssertEqual(second.status, 200)
        let refused = try decode(ParcelXCreateOrderResponse.self, second)
        XCTAssertFalse(refused.status)
        XCTAssertTrue(refused.message?.contains("already exists") ?? false, refused.message ?? "")
        XCTAssertTrue(try JSONParser.parse(second.body)["responsemsg"]?.arrayValue != nil, "failure message should be an array")
        XCTAssertEqual(try shipments().count, 1)
    }

    func testConcurrentDuplicateCreatesBookExactlyOneShipment() throws {
        let oks = Locked(0)
        let group = DispatchGroup()
        let (p, headers) = (port, [(ParcelXAuth.headerName, token)])
        let body = try JSON(encoding: order("ORD-RACE")).serializedBytes()
        for _ in 0..<10 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                let r = rawRequest(port: p, "POST", ParcelXOperation.createOrder.endpoint.path, body: body, headers: headers)
                if r.status == 200,
                   let a = try? JSONDecoder().decode(ParcelXCreateOrderResponse.self, from: Data(r.body)), a.status {
                    oks.withLock { $0 += 1 }
                }
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(oks.current, 1)
        XCTAssertEqual(try shipments().count, 1)
    }

    func testLookupByClientOrderIdFindsTheShipment() throws {
        let created = try decode(ParcelXCreateOrderResponse.self, try call(.createOrder, order("ORD-LOOK 1/x")))
        let found = try decode(ParcelXTrackResponse.self, try call(.trackByClientOrderId, lookup: "ORD-LOOK 1/x"))
        XCTAssertTrue(found.status)
        XCTAssertEqual(found.awbNumber, created.data?.awbNumber)
        XCTAssertEqual(found.currentStatus?.statusCode, 221)
        XCTAssertFalse(found.data?.isEmpty ?? true)

        let missing = try call(.trackByClientOrderId, lookup: "ORD-NEVER")
        XCTAssertEqual(missing.status, 200)
        let m = try decode(ParcelXTrackResponse.self, missing)
        XCTAssertFalse(m.status)
        XCTAssertNil(m.currentStatus)
    }

    func testCancelMarksShipmentCancelledOnceAndUnknownAWBIsRefused() throws {
        let awb = try XCTUnwrap(try decode(ParcelXCreateOrderResponse.self, try call(.createOrder, order("ORD-C"))).data?.awbNumber)
        let ok = try decode(ParcelXCancelOrderResponse.self, try call(.cancelOrder, ParcelXCancelOrderRequest(awb: awb)))
        XCTAssertTrue(ok.status, ok.message ?? "")
        let t = try decode(ParcelXTrackResponse.self, try call(.trackByClientOrderId, lookup: "ORD-C"))
        XCTAssertEqual(t.currentStatus?.statusCode, 227)
        XCTAssertEqual(t.currentStatus?.statusTitle, "Cancelled")

        let again = try decode(ParcelXCancelOrderResponse.self, try call(.cancelOrder, ParcelXCancelOrderRequest(awb: awb)))
        XCTAssertFalse(again.status)
        XCTAssertTrue(again.message?.contains("already cancelled") ?? false)
        let unknown = try decode(ParcelXCancelOrderResponse.self, try call(.cancelOrder, ParcelXCancelOrderRequest(awb: "99999999999999")))
        XCTAssertFalse(unknown.status)

        let listed = try shipments()
        XCTAssertEqual(listed.first?["status_code"], .int(227))
        XCTAssertNotEqual(listed.first?["cancelled_at"], .null)
        // A cancelled order number still cannot be booked again.
        XCTAssertFalse(try decode(ParcelXCreateOrderResponse.self, try call(.createOrder, order("ORD-C"))).status)
    }

    func testMissingOrWrongAccessTokenGets401() throws {
        let wrong = try call(.createOrder, order("ORD-AUTH"), token: .some(ParcelXAuth.accessToken(accessKey: "test-access", secretKey: "nope")))
        XCTAssertEqual(wrong.status, 401)
        XCTAssertFalse(try decode(ParcelXStatusResponse.self, wrong).status)
        let missing = try call(.trackOrder, lookup: "1", token: .some(nil))
        XCTAssertEqual(missing.status, 401)
        XCTAssertEqual(try shipments().count, 0)
        let log = (try? String(contentsOfFile: logDir.path + "/sandbox.log", encoding: .utf8)) ?? ""
        XCTAssertFalse(log.contains(token), "the access token must never be logged")
    }

    func testInvalidPayloadIsRefusedWithOneMessagePerProblem() throws {
        let r = try call(.createOrder, order("ORD-BAD", mobile: "98765", pincode: "1100", weight: "0"))
        XCTAssertEqual(r.status, 200)
        let a = try decode(ParcelXCreateOrderResponse.self, r)
        XCTAssertFalse(a.status)
        let messages = a.responsemsg?.all ?? []
        XCTAssertTrue(messages.contains { $0.contains("consignee_mobile") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("consignee_pincode") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("shipment_weight") }, "\(messages)")
        XCTAssertEqual(a.message, messages.first)
        let notJSON = rawRequest(port: port, "POST", ParcelXOperation.createOrder.endpoint.path,
                                 body: Array("{oops".utf8), headers: [(ParcelXAuth.headerName, token)])
        XCTAssertFalse(try decode(ParcelXStatusResponse.self, notJSON).status)
        XCTAssertEqual(try shipments().count, 0)
    }

    // MARK: faults

    func testHttp500FaultFailsEveryTimeAndBooksNothing() throws {
        for _ in 0..<3 {
            XCTAssertEqual(try call(.createOrder, order("ORD-500", name: "Ravi [sandbox:http500]")).status, 500)
        }
        XCTAssertEqual(try shipments().count, 0)
    }

    func testHttp401FaultAnswers401() throws {
        XCTAssertEqual(try call(.createOrder, order("ORD-401", name: "Ravi [sandbox:http401]")).status, 401)
        XCTAssertEqual(try shipments().count, 0)
    }

    func testRejectFaultIsABusinessRefusal() throws {
        let r = try call(.createOrder, order("ORD-REJ", name: "Ravi [sandbox:reject]"))
        XCTAssertEqual(r.status, 200)
        let a = try decode(ParcelXCreateOrderResponse.self, r)
        XCTAssertFalse(a.status)
        XCTAssertNotNil(a.message)
        XCTAssertEqual(try shipments().count, 0)
    }

    func testFlaky2FaultFailsTwiceThenBooks() throws {
        let o = order("ORD-FLAKY", name: "Ravi [sandbox:flaky2]")
        XCTAssertEqual(try call(.createOrder, o).status, 500)
        XCTAssertEqual(try call(.createOrder, o).status, 500)
        let third = try call(.createOrder, o)
        XCTAssertEqual(third.status, 200)
        XCTAssertEqual(try decode(ParcelXCreateOrderResponse.self, third).data?.awbNumber?.count, 14)
        XCTAssertEqual(try shipments().count, 1)
    }

    func testTimeoutFaultBooksTheShipmentButAnswersAfterTheClientGaveUp() throws {
        // The client waits 1 s; the sandbox (OOPS_SANDBOX_TIMEOUT_MS=30000) answers far later.
        let began = Date()
        XCTAssertThrowsError(try call(.createOrder, order("ORD-SLOW", name: "Ravi [sandbox:timeout]"), timeoutMs: 1000))
        XCTAssertLessThan(Date().timeIntervalSince(began), 5)
        // The provider did book it: the lookup by order number is how a client finds out.
        let found = try decode(ParcelXTrackResponse.self, try call(.trackByClientOrderId, lookup: "ORD-SLOW"))
        XCTAssertTrue(found.status)
        XCTAssertEqual(found.currentStatus?.code, .booked)
        // A retry is refused at once as a duplicate rather than hanging again.
        let retry = try decode(ParcelXCreateOrderResponse.self, try call(.createOrder, order("ORD-SLOW", name: "Ravi [sandbox:timeout]"), timeoutMs: 3000))
        XCTAssertFalse(retry.status)
    }

    func testTimeoutFaultDelayIsConfigurable() throws {
        let (status, cfg) = try admin("POST", "/__sandbox/config", ["timeoutMs": 700])
        XCTAssertEqual(status, 200)
        XCTAssertEqual(cfg["timeoutMs"], .int(700))
        let began = Date()
        let r = try call(.createOrder, order("ORD-LATE", name: "Ravi [sandbox:timeout]"), timeoutMs: 10_000)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(began), 0.7)
        XCTAssertTrue(try decode(ParcelXCreateOrderResponse.self, r).status)
    }

    // MARK: load-run knobs and inspection

    func testConfigLatencyDelaysEveryProviderCall() throws {
        let (status, cfg) = try admin("POST", "/__sandbox/config", ["latencyMs": 400])
        XCTAssertEqual(status, 200)
        XCTAssertEqual(cfg["latencyMs"], .int(400))
        XCTAssertEqual(try admin("GET", "/__sandbox/config").1["latencyMs"], .int(400))
        var began = Date()
        _ = try call(.trackByClientOrderId, lookup: "X")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(began), 0.4)
        _ = try admin("POST", "/__sandbox/config", ["latencyMs": 0])
        began = Date()
        _ = try call(.trackByClientOrderId, lookup: "X")
        XCTAssertLessThan(Date().timeIntervalSince(began), 0.3)
    }

    func testConfigFailureRateAndItsValidation() throws {
        XCTAssertEqual(try admin("POST", "/__sandbox/config", ["failureRate": 1.0]).0, 200)
        for i in 0..<5 { XCTAssertEqual(try call(.createOrder, order("ORD-FR-\(i)")).status, 500) }
        XCTAssertEqual(try admin("POST", "/__sandbox/config", ["failureRate": 0]).0, 200)
        XCTAssertEqual(try call(.createOrder, order("ORD-FR-OK")).status, 200)
        XCTAssertEqual(try admin("POST", "/__sandbox/config", ["failureRate": 2]).0, 400)
        XCTAssertEqual(try admin("POST", "/__sandbox/config", ["latencyMs": -1]).0, 400)
        XCTAssertEqual(try admin("POST", "/__sandbox/config", ["bogus": 1]).0, 400)
        XCTAssertEqual(try admin("GET", "/__sandbox/config").1["failureRate"]?.doubleValue, 0)
    }

    func testStatsCountCallsPerEndpointAndOutcome() throws {
        _ = try call(.createOrder, order("ORD-S1"))
        _ = try call(.createOrder, order("ORD-S1"))
        _ = try call(.createOrder, order("ORD-S2", name: "x [sandbox:http500]"))
        _ = try call(.createOrder, order("ORD-S3"), token: .some("bad"))
        _ = try call(.trackByClientOrderId, lookup: "ORD-S1")
        let stats = try admin("GET", "/__sandbox/stats").1
        XCTAssertEqual(stats["totalCalls"], .int(5))
        let create = try XCTUnwrap(stats["endpoints"]?["create_order"])
        XCTAssertEqual(create["calls"], .int(4))
        XCTAssertEqual(create["outcomes"]?["ok"], .int(1))
        XCTAssertEqual(create["outcomes"]?["duplicate"], .int(1))
        XCTAssertEqual(create["outcomes"]?["fault_http500"], .int(1))
        XCTAssertEqual(create["outcomes"]?["unauthorized"], .int(1))
        XCTAssertEqual(stats["endpoints"]?["track_order_by_client_order_id"]?["calls"], .int(1))

        XCTAssertEqual(try admin("POST", "/__sandbox/reset").0, 200)
        XCTAssertEqual(try admin("GET", "/__sandbox/stats").1["totalCalls"], .int(0))
        XCTAssertEqual(try shipments().count, 0)
    }

    func testWarehousesCreateListRemoveWithUniqueTitles() throws {
        let w = ParcelXCreateWarehouseRequest(addressTitle: "Main DC", senderName: "Acme", fullAddress: "Plot 4, Okhla", phone: "9876543210",
                                              pincode: "110020")
        let created = try decode(ParcelXCreateWarehouseResponse.self, try call(.createWarehouse, w))
        XCTAssertTrue(created.status)
        let id = try XCTUnwrap(created.data?.pickAddressId)
        XCTAssertFalse(try decode(ParcelXCreateWarehouseResponse.self, try call(.createWarehouse, w)).status, "duplicate title accepted")

        let list = try decode(ParcelXWarehouseListResponse.self, try call(.warehouseList))
        XCTAssertEqual(list.data?.map(\.warehouseId), [id])
        XCTAssertEqual(list.data?.first?.title, "Main DC")
        XCTAssertEqual(list.data?.first?.city, "New Delhi")

        XCTAssertTrue(try decode(ParcelXRemoveWarehouseResponse.self, try call(.removeWarehouse, ParcelXRemoveWarehouseRequest(warehouseId: id))).status)
        XCTAssertFalse(try decode(ParcelXRemoveWarehouseResponse.self, try call(.removeWarehouse, ParcelXRemoveWarehouseRequest(warehouseId: id))).status)
        XCTAssertEqual(try decode(ParcelXWarehouseListResponse.self, try call(.warehouseList)).data?.count, 0)
    }

    func testSIGTERMExitsCleanlyEvenWithARequestAsleep() throws {
        let (p, headers) = (port, [(ParcelXAuth.headerName, token)])
        let body = try JSON(encoding: order("ORD-TERM", name: "x [sandbox:timeout]")).serializedBytes()
        Thread.detachNewThread {
            _ = rawRequest(port: p, "POST", ParcelXOperation.createOrder.endpoint.path, body: body, headers: headers)
        }
        XCTAssertTrue(waitUntil(timeoutMs: 5000) { ((try? self.shipments()) ?? []).count == 1 })
        let began = Date()
        XCTAssertEqual(child.stop(graceMs: 10_000), 0)
        XCTAssertLessThan(Date().timeIntervalSince(began), 8)
    }
}
