import Domain
import HTTPClient
import JSON
import OrderCore
import ParcelXAPI
import RPC
import Runtime
import Store
import TestSupport
import XCTest
@testable import ParcelXCore
@testable import Queue

/// The provider: answers each call from a script, and remembers what it was asked.
final class ScriptedProvider: HTTPTransport {
    /// Answers by operation, in order; the last one repeats.
    private let script: Locked<[ParcelXOperation: [HTTPAnswer]]>
    private let seen = Locked<[(op: ParcelXOperation, call: HTTPCall)]>([])

    init(_ script: [ParcelXOperation: [HTTPAnswer]]) { self.script = Locked(script) }

    static func json(_ status: Int, _ body: JSON) -> HTTPAnswer {
        HTTPAnswer(status: status, body: body.serializedBytes(), retryAfter: nil, failure: nil, durationNanos: 1_000_000)
    }
    static let timeout = HTTPAnswer(status: nil, body: [], retryAfter: nil, failure: .timedOut, durationNanos: 30_000_000_000)

    func start(_ call: HTTPCall, completion: @escaping @Sendable (HTTPAnswer) -> Void) {
        let path = String(call.url.dropFirst("http://parcelx.test".count).prefix { $0 != "?" })
        guard let op = ParcelXOperation(method: call.method, path: path) else {
            return completion(Self.json(404, ["status": false, "responsemsg": "no such endpoint"]))
        }
        seen.withLock { $0.append((op, call)) }
        let answer = script.withLock { s -> HTTPAnswer in
            guard var list = s[op], !list.isEmpty else { return Self.json(500, ["status": false, "responsemsg": "not scripted"]) }
            let a = list.count > 1 ? list.removeFirst() : list[0]
            s[op] = list
            return a
        }
        completion(answer)
    }

    var operations: [ParcelXOperation] { seen.current.map(\.op) }
    var calls: [HTTPCall] { seen.current.map(\.call) }
}

/// OrderSvc as the worker sees it: the order to read, and the reports it receives.
final class RecordingOrders: RPCCalling {
    let order: Locked<Order>
    let reports = Locked<[(method: String, params: JSON)]>([])

    init(_ order: Order) { self.order = Locked(order) }

    func call(_ method: String, _ params: JSON, ctx: RPCContext) throws(RPCError) -> JSON {
        if method == "orders.internal.get" { return order.current.json }
        var p = params
        p["ctx"] = nil
        reports.withLock { $0.append((method, p)) }
        return ["applied": true, "status": order.current.status.json, "jobs": []]
    }
}

/// ParcelXSvc's worker in-process: a typed order in, the provider scripted, the audit logs in
/// memory, and the one thing that matters out: what it reported to OrderSvc.
final class ParcelXWorkerTests: XCTestCase {
    /// Tracking polls the worker adds after a booking.
    let trackingQueue = RecordingQueue(name: QueueNames.tracking)
    let logStore = MemoryStore()

    static func order(status: OrderStatus = .pending, awb: String? = nil) throws -> Order {
        var o = Order(id: "ord_1", userId: "usr_1", request: try OOPSSystem.orderBody("SHOP-1").decode(OrderRequest.self), fingerprint: "fp",
                      chargePaise: 4000, requestId: "req_1", nowMs: 1, nowISO: "2026-11-28T10:00:00.000Z")
        o.stage = .enqueued
        o.status = status
        o.awbNumber = awb
        if status == .cancelRequested { o.cancelFrom = awb == nil ? .pending : .placed }
        return o
    }

    /// A job on its `attemptsMade + 1`-th attempt out of `attempts`.
    static func job(_ id: String, attemptsMade: Int = 0, attempts: Int = 3) -> Job {
        Job(id: id, fields: ["name": "create-order", "data": #"{"orderId":"ord_1","requestId":"req_1"}"#,
                             "opts": "{\"attempts\":\(attempts)}", "atm": String(attemptsMade)], context: nil)
    }

    private func worker(_ provider: ScriptedProvider, _ orders: RecordingOrders) throws -> ParcelXOrderService {
        let logs = ProviderLogRepository(store: logStore)
        try logs.prepare()
        return ParcelXOrderService(client: ParcelXClient(baseURL: "http://parcelx.test", accessKey: "ak", secretKey: "secret-key", transport: provider),
                                   logs: logs, orders: orders, log: Logger(service: "ParcelXSvc", instance: 0, level: .error), defaultAttempts: 3,
                                   tracking: TrackingPolls(queue: trackingQueue, schedule: .standard))
    }

    static let created = ScriptedProvider.json(200, ["status": true, "responsemsg": ["Order created"],
                                                     "data": ["awb_number": "AWB100", "courier_name": "Delhivery"]])
    static let notFound = ScriptedProvider.json(200, ["status": false, "responsemsg": "No order found"])

    // MARK: create

    func testABookedOrderIsReportedPlacedWithItsAWBAndLogs() async throws {
        let provider = ScriptedProvider([.createOrder: [Self.created]])
        let orders = RecordingOrders(try Self.order())
        let out = try await worker(provider, orders).processParcelXOrder(orderId: "ord_1", job: Self.job("create-ord_1"))
        XCTAssertEqual(out["awb"], "AWB100")
        XCTAssertEqual(provider.operations, [.createOrder])
        let sent = try JSONParser.parse(try XCTUnwrap(provider.calls.first?.body))
        XCTAssertEqual(sent["client_order_id"], "ord_1", "the provider's key is the OOPS order id")

        let reports = orders.reports.current
        XCTAssertEqual(reports.map(\.method), ["orders.provider.placed"])
        let p = try XCTUnwrap(reports.first?.params)
        XCTAssertEqual(p["orderId"], "ord_1")
        XCTAssertEqual(p["awbNumber"], "AWB100")
        XCTAssertEqual(p["courierName"], "Delhivery")
        // The references point at the audit logs of this call, which never hold the secret.
        let reqLog = try XCTUnwrap(try logStore.get(ProviderLogRepository.requests, id: try XCTUnwrap(p["parcelxRequestRefId"]?.stringValue)))
        XCTAssertEqual(reqLog["orderId"], "ord_1")
        XCTAssertFalse(reqLog.serialized().contains("secret-key"))
        let resLog = try XCTUnwrap(try logStore.get(ProviderLogRepository.responses, id: try XCTUnwrap(p["parcelxResponseRefId"]?.stringValue)))
        XCTAssertEqual(resLog["outcome"], "success")
    }

    func testARefusalIsReportedRefusedWithTheProvidersMessage() async throws {
        let provider = ScriptedProvider([.createOrder: [ScriptedProvider.json(200, ["status": false, "responsemsg": ["Invalid pincode"]])],
                                         .trackByClientOrderId: [Self.notFound]])
        let orders = RecordingOrders(try Self.order())
        do {
            _ = try await worker(provider, orders).processParcelXOrder(orderId: "ord_1", job: Self.job("create-ord_1"))
            XCTFail("a refused order must fail the job")
        } catch is UnrecoverableError {}
        // It looked before concluding: a refusal may be "already exists".
        XCTAssertEqual(provider.operations, [.createOrder, .trackByClientOrderId])
        XCTAssertEqual(orders.reports.current.map(\.method), ["orders.provider.failed"])
        let p = try XCTUnwrap(orders.reports.current.first?.params)
        XCTAssertEqual(p["outcome"], "refused")
        XCTAssertEqual(p["message"], "Invalid pincode")
        XCTAssertEqual(p["mayHaveBooked"], false)
    }

    func testAnHTTPErrorBeforeTheLastAttemptIsReportedRetrying() async throws {
        let provider = ScriptedProvider([.createOrder: [ScriptedProvider.json(503, ["status": false, "responsemsg": "busy"])]])
        let orders = RecordingOrders(try Self.order())
        do {
            _ = try await worker(provider, orders).processParcelXOrder(orderId: "ord_1", job: Self.job("create-ord_1", attemptsMade: 0))
            XCTFail("the job must be retried")
        } catch let e as HttpError {
            XCTAssertEqual(e.status, 503)
        }
        XCTAssertEqual(orders.reports.current.map(\.method), ["orders.provider.failed"])
        XCTAssertEqual(orders.reports.current.first?.params["outcome"], "retrying")
        XCTAssertEqual(orders.reports.current.first?.params["mayHaveBooked"], false)
    }

    func testARetryFindsTheBookingAnEarlierAttemptMadeAndDoesNotCreateAgain() async throws {
        let provider = ScriptedProvider([.trackByClientOrderId: [ScriptedProvider.json(200, [
            "status": true, "awb_number": "AWB555", "client_order_id": "ord_1", "courier_name": "Bluedart",
            "current_status": ["status_code": 1, "status_title": "Manifested"],
        ])]])
        let orders = RecordingOrders(try Self.order())
        _ = try await worker(provider, orders).processParcelXOrder(orderId: "ord_1", job: Self.job("create-ord_1", attemptsMade: 1))
        XCTAssertEqual(provider.operations, [.trackByClientOrderId], "no second create")
        XCTAssertEqual(orders.reports.current.map(\.method), ["orders.provider.placed"])
        XCTAssertEqual(orders.reports.current.first?.params["awbNumber"], "AWB555")
        XCTAssertEqual(orders.reports.current.first?.params["courierName"], "Bluedart")
    }

    func testATimeoutOnTheLastAttemptIsReportedExhaustedAndMaybeBooked() async throws {
        let provider = ScriptedProvider([.createOrder: [ScriptedProvider.timeout], .trackByClientOrderId: [Self.notFound]])
        let orders = RecordingOrders(try Self.order())
        do {
            _ = try await worker(provider, orders).processParcelXOrder(orderId: "ord_1", job: Self.job("create-ord_1", attemptsMade: 2, attempts: 3))
            XCTFail("the job must fail")
        } catch is UncertainOutcome {}
        XCTAssertEqual(provider.operations, [.trackByClientOrderId, .createOrder])
        XCTAssertEqual(orders.reports.current.map(\.method), ["orders.provider.failed"])
        XCTAssertEqual(orders.reports.current.first?.params["outcome"], "exhausted")
        XCTAssertEqual(orders.reports.current.first?.params["mayHaveBooked"], true)
    }

    func testAnOrderNoLongerPendingIsNotSentToTheProvider() async throws {
        let provider = ScriptedProvider([.createOrder: [Self.created]])
        let orders = RecordingOrders(try Self.order(status: .cancelled))
        let out = try await worker(provider, orders).processParcelXOrder(orderId: "ord_1", job: Self.job("create-ord_1"))
        XCTAssertEqual(out["skipped"], true)
        XCTAssertEqual(provider.operations, [])
        XCTAssertEqual(orders.reports.current.count, 0)
    }

    /// A create job that runs again after its order was booked (OrderSvc stored "placed", the
    /// worker died before finishing the job) sends nothing, and starts the shipment's tracking,
    /// which the interrupted run never did.
    func testACreateJobRunAgainAfterTheBookingStartsTrackingOnly() async throws {
        let provider = ScriptedProvider([.createOrder: [Self.created]])
        let orders = RecordingOrders(try Self.order(status: .placed, awb: "AWB100"))
        let out = try await worker(provider, orders).processParcelXOrder(orderId: "ord_1", job: Self.job("create-ord_1", attemptsMade: 1))
        XCTAssertEqual(out["skipped"], true)
        XCTAssertEqual(provider.operations, [])
        XCTAssertEqual(orders.reports.current.count, 0)
        XCTAssertEqual(trackingQueue.ids, ["track-ord_1-1"])
    }

    // MARK: cancel

    func testACancelledShipmentIsReportedCancelledAtTheProvider() async throws {
        let provider = ScriptedProvider([.cancelOrder: [ScriptedProvider.json(200, ["status": true, "responsemsg": "Order cancelled"])]])
        let orders = RecordingOrders(try Self.order(status: .cancelRequested, awb: "AWB100"))
        _ = try await worker(provider, orders).processParcelXOrderCancellation(orderId: "ord_1", job: Self.job("cancel-ord_1-1"))
        XCTAssertEqual(provider.operations, [.cancelOrder])
        XCTAssertEqual(try JSONParser.parse(try XCTUnwrap(provider.calls.first?.body))["awb"], "AWB100")
        XCTAssertEqual(orders.reports.current.map(\.method), ["orders.provider.cancelled"])
        XCTAssertEqual(orders.reports.current.first?.params["atProvider"], true)
    }

    func testACancelTheProviderRefusesIsReportedCancelRefused() async throws {
        let provider = ScriptedProvider([.cancelOrder: [ScriptedProvider.json(200, ["status": false, "responsemsg": "Shipment already picked up"])]])
        let orders = RecordingOrders(try Self.order(status: .cancelRequested, awb: "AWB100"))
        do {
            _ = try await worker(provider, orders).processParcelXOrderCancellation(orderId: "ord_1", job: Self.job("cancel-ord_1-1"))
            XCTFail("a refused cancel must fail the job")
        } catch is UnrecoverableError {}
        XCTAssertEqual(orders.reports.current.map(\.method), ["orders.provider.cancelRefused"])
        XCTAssertEqual(orders.reports.current.first?.params["message"], "Shipment already picked up")
    }

    func testACancelOfANeverBookedOrderIsReportedCancelledBeforeBooking() async throws {
        let provider = ScriptedProvider([.trackByClientOrderId: [Self.notFound]])
        let orders = RecordingOrders(try Self.order(status: .cancelRequested))
        _ = try await worker(provider, orders).processParcelXOrderCancellation(orderId: "ord_1", job: Self.job("cancel-ord_1-1"))
        XCTAssertEqual(provider.operations, [.trackByClientOrderId], "nothing to cancel at the provider")
        XCTAssertEqual(orders.reports.current.map(\.method), ["orders.provider.cancelled"])
        XCTAssertEqual(orders.reports.current.first?.params["atProvider"], false)
    }
}
