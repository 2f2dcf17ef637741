import Domain
import HTTPClient
import JSON
import Queue
import RPC
import Runtime
import Store
import TestSupport
import XCTest
@testable import OrderCore
@testable import WalletCore

/// OrderSvc in-process: its handlers behind a Dispatcher, the order store in memory, WalletSvc's
/// real logic behind its own Dispatcher (on its own in-memory store), AuthSvc reduced to the one
/// method OrderSvc asks, queues that record, and a clock the test moves.
final class OrderServiceTests: XCTestCase {
    let clock = ManualClock()
    let orderStore = MemoryStore()
    let walletStore = MemoryStore()
    let createQueue = RecordingQueue(name: QueueNames.orders)
    let cancelQueue = RecordingQueue(name: QueueNames.cancellations)
    var service: OrderService!
    var rpc: Dispatcher!
    var wallet: Dispatcher!
    var auth: Dispatcher!

    static let merchant = Actor(userId: "usr_m1", role: .merchant)
    /// The charge of `OOPSSystem.orderBody`: 1.2 kg in a 20×15×10 cm box, surface, prepaid.
    static let charge = RateCard.chargePaise(weightGrams: 1200, lengthCm: 20, widthCm: 15, heightCm: 10, express: false, codAmountPaise: nil)

    override func setUpWithError() throws {
        let log = Logger(service: "OrderSvc", instance: 0, level: .error)
        let walletRepo = WalletRepository(store: walletStore, clock: clock)
        try walletRepo.prepare()
        wallet = Dispatcher(service: "WalletSvc", instance: 0,
                            methods: WalletHandlers(service: WalletService(repository: walletRepo, log: log)).methods, log: log)
        auth = Dispatcher(service: "AuthSvc", instance: 0, methods: [
            Method("kyc.status", summary: "KYC status", roles: [.system], params: .object([("userId", .id)], required: ["userId"]),
                   result: .anything) { p, _ in
                ["status": p["userId"] == "usr_nokyc" ? "submitted" : "approved"]
            },
        ], log: log)
        let repo = OrderRepository(store: orderStore, clock: clock)
        try repo.prepare()
        service = OrderService(repo: repo, wallet: wallet, auth: auth, createQueue: createQueue, cancelQueue: cancelQueue, log: log)
        rpc = Dispatcher(service: "OrderSvc", instance: 0, methods: OrderHandlers.methods(service), log: log)
        XCTAssertGreaterThan(Self.charge, 0)
    }

    // MARK: helpers

    private func ctx(_ actor: Actor) -> RPCContext { RPCContext.new(actor: actor, timeoutMs: 10_000) }

    private func call(_ method: String, _ params: JSON, as actor: Actor = merchant) throws -> JSON {
        try rpc.call(method, params, ctx: ctx(actor))
    }

    private func refusal(_ method: String, _ params: JSON, as actor: Actor = merchant, file: StaticString = #filePath, line: UInt = #line) -> RPCError? {
        expectRefusal(method, file: file, line: line) { try call(method, params, as: actor) }
    }

    private func topup(_ paise: Int64) throws {
        _ = try wallet.call("wallet.topup", ["amountPaise": .int(paise), "idempotencyKey": .string(ID.make("key"))], ctx: ctx(Self.merchant))
    }

    private func balance() throws -> Int64? { try walletStore.get(WalletRepository.wallets, id: "usr_m1")?["balancePaise"]?.intValue }

    /// Applied ledger entries by reason, e.g. `["topup", "order_charge"]`, oldest first.
    private func ledger(_ orderId: String? = nil) throws -> [String] {
        let f: Filter = orderId.map { .eq("orderId", .string($0)) } ?? .all
        return try walletStore.find(WalletRepository.ledger, where: f, sort: [.asc("createdAtMs")], limit: 0).compactMap { $0["reason"]?.stringValue }
    }

    private func create(_ clientOrderId: String, name: String = "Ravi Kumar") throws -> JSON {
        try call("orders.create", OOPSSystem.orderBody(clientOrderId, name: name))
    }

    private func stored(_ id: String) throws -> JSON? { try orderStore.get(OrderRepository.collection, id: id) }

    private func report(_ method: String, _ params: JSON) throws -> JSON { try call(method, params, as: .system) }

    // MARK: reconciliation with the queues

    /// A create job lost from Redis (a failover that dropped an acknowledged write) is added
    /// again under the same id once the order has waited long enough; a job still queued, or a
    /// young order, is left alone.
    func testReconciliationAddsALostJobAgainUnderTheSameId() throws {
        try topup(100_000)
        let id = try XCTUnwrap(try create("C-lost")["order"]?["id"]?.stringValue)
        XCTAssertEqual(service.reconcileJobsOnce(olderThanMs: 60_000), 0, "the job is still queued")
        createQueue.remove(id: "create-\(id)")
        XCTAssertEqual(service.reconcileJobsOnce(olderThanMs: 60_000), 0, "the order is too young to count as stranded")
        clock.advance(ms: 61_000)
        XCTAssertEqual(service.reconcileJobsOnce(olderThanMs: 60_000), 1)
        XCTAssertEqual(createQueue.ids, ["create-\(id)"])
        XCTAssertEqual(createQueue.all.first?.data["orderId"], .string(id))
        XCTAssertEqual(service.reconcileJobsOnce(olderThanMs: 60_000), 0, "added once")
        XCTAssertEqual(try balance(), 100_000 - Self.charge, "no second charge")
    }

    // MARK: create and replay

    func testCreateChargesOnceAndEnqueuesOneJob() throws {
        try topup(100_000)
        let r = try create("C-1")
        XCTAssertEqual(r["created"], true)
        let id = try XCTUnwrap(r["order"]?["id"]?.stringValue)
        XCTAssertEqual(r["order"]?["status"], "pending")
        XCTAssertEqual(r["order"]?["chargePaise"], .int(Self.charge))
        XCTAssertEqual(try stored(id)?["stage"], "enqueued")
        XCTAssertEqual(try balance(), 100_000 - Self.charge)
        XCTAssertEqual(createQueue.ids, ["create-\(id)"])
        XCTAssertEqual(createQueue.all.first?.name, QueueNames.createJob)
        XCTAssertEqual(createQueue.all.first?.data["orderId"], .string(id))

        // The same request again: the same order, no second charge, no second job.
        let replay = try create("C-1")
        XCTAssertEqual(replay["created"], false)
        XCTAssertEqual(replay["order"]?["id"], .string(id))
        XCTAssertEqual(try balance(), 100_000 - Self.charge)
        XCTAssertEqual(try ledger(id), ["order_charge"])
        XCTAssertEqual(createQueue.ids, ["create-\(id)"])

        // The same clientOrderId with a different payload is a conflict and changes nothing.
        let conflict = refusal("orders.create", OOPSSystem.orderBody("C-1", name: "Someone Else"))
        XCTAssertEqual(conflict?.code, ErrorCode.conflict.rawValue)
        XCTAssertEqual(conflict?.reason, "client_order_id_reused")
        XCTAssertEqual(try orderStore.count(OrderRepository.collection), 1)
        XCTAssertEqual(try balance(), 100_000 - Self.charge)
    }

    func testInsufficientBalanceRefusesTheOrderAndChargesNothing() throws {
        try topup(Self.charge - 1)
        let e = refusal("orders.create", OOPSSystem.orderBody("C-2"))
        XCTAssertEqual(e?.code, ErrorCode.businessRule.rawValue)
        XCTAssertEqual(e?.reason, "insufficient_balance")
        XCTAssertEqual(try orderStore.count(OrderRepository.collection), 0, "the refused order does not exist")
        XCTAssertEqual(try balance(), Self.charge - 1)
        XCTAssertEqual(try ledger(), ["topup"])
        XCTAssertEqual(createQueue.ids, [])

        // With money, the same clientOrderId is a new order.
        try topup(1)
        XCTAssertEqual(try create("C-2")["created"], true)
        XCTAssertEqual(try balance(), 0)
    }

    func testAMerchantWithoutApprovedKYCCannotOrder() throws {
        let e = refusal("orders.create", OOPSSystem.orderBody("C-3"), as: Actor(userId: "usr_nokyc", role: .merchant))
        XCTAssertEqual(e?.reason, "kyc_not_approved")
        XCTAssertEqual(try orderStore.count(OrderRepository.collection), 0)
    }

    // MARK: cancel

    func testCancelRefundsExactlyOnce() throws {
        try topup(100_000)
        let id = try XCTUnwrap(try create("C-4")["order"]?["id"]?.stringValue)
        let c = try call("orders.cancel", ["orderId": .string(id)])
        XCTAssertEqual(c["order"]?["status"], "cancel_requested")
        XCTAssertEqual(cancelQueue.ids, ["cancel-\(id)-1"])
        XCTAssertEqual(try stored(id)?["cancelEnqueued"], true)
        // Repeating the cancel is harmless: same job, no refund yet (the provider has not answered).
        XCTAssertEqual(try call("orders.cancel", ["orderId": .string(id)])["order"]?["status"], "cancel_requested")
        XCTAssertEqual(cancelQueue.ids, ["cancel-\(id)-1"])
        XCTAssertEqual(try ledger(id), ["order_charge"])

        let first = try report("orders.provider.cancelled", ["orderId": .string(id), "atProvider": false])
        XCTAssertEqual(first["applied"], true)
        XCTAssertEqual(first["status"], "cancelled")
        XCTAssertEqual(try balance(), 100_000)
        // The worker reports again (it was retried after a crash): nothing more moves.
        let again = try report("orders.provider.cancelled", ["orderId": .string(id), "atProvider": false])
        XCTAssertEqual(again["status"], "cancelled")
        XCTAssertEqual(try ledger(id), ["order_charge", "order_refund"])
        XCTAssertEqual(try balance(), 100_000)
        XCTAssertEqual(try wallet.call("wallet.reconcile", [:], ctx: ctx(.system))["ok"], true)
    }

    func testSomeoneElsesOrderCannotBeCancelled() throws {
        try topup(100_000)
        let id = try XCTUnwrap(try create("C-5")["order"]?["id"]?.stringValue)
        let e = refusal("orders.cancel", ["orderId": .string(id)], as: Actor(userId: "usr_other", role: .merchant))
        XCTAssertEqual(e?.code, ErrorCode.notFound.rawValue)
        XCTAssertEqual(try stored(id)?["status"], "pending")
        XCTAssertEqual(cancelQueue.ids, [])
    }

    // MARK: provider reports

    func testPlacedIsAppliedOnce() throws {
        try topup(100_000)
        let id = try XCTUnwrap(try create("P-1")["order"]?["id"]?.stringValue)
        let p: JSON = ["orderId": .string(id), "awbNumber": "AWB123", "courierName": "Delhivery",
                       "parcelxRequestRefId": "plog_1", "parcelxResponseRefId": "plog_2"]
        let first = try report("orders.provider.placed", p)
        XCTAssertEqual(first, ["applied": true, "status": "placed", "jobs": [], "trackingStatus": nil, "tracks": true])
        let o = try XCTUnwrap(try stored(id))
        XCTAssertEqual(o["awbNumber"], "AWB123")
        XCTAssertEqual(o["courierName"], "Delhivery")
        XCTAssertEqual(o["providerSyncStatus"], "synced")
        XCTAssertEqual(o["parcelxResponseRefId"], "plog_2")
        XCTAssertEqual(try report("orders.provider.placed", p), ["applied": false, "status": "placed", "jobs": [], "trackingStatus": nil, "tracks": true])
        XCTAssertEqual(try stored(id)?["history"]?.arrayValue?.count, 2, "accepted, placed")
    }

    func testRefusedFailsTheOrderAndRefundsOnce() throws {
        try topup(100_000)
        let id = try XCTUnwrap(try create("P-2")["order"]?["id"]?.stringValue)
        // A retry on the way records only the references.
        let retrying = try report("orders.provider.failed", ["orderId": .string(id), "outcome": "retrying", "message": "HTTP 503",
                                                             "parcelxRequestRefId": "plog_r1"])
        XCTAssertEqual(retrying["status"], "pending")
        XCTAssertEqual(try stored(id)?["parcelxRequestRefId"], "plog_r1")
        XCTAssertEqual(try ledger(id), ["order_charge"])

        let refused: JSON = ["orderId": .string(id), "outcome": "refused", "message": "Invalid pincode"]
        let first = try report("orders.provider.failed", refused)
        XCTAssertEqual(first["applied"], true)
        XCTAssertEqual(first["status"], "failed")
        XCTAssertEqual(try stored(id)?["providerMessage"], "Invalid pincode")
        XCTAssertEqual(try report("orders.provider.failed", refused)["applied"], false)
        XCTAssertEqual(try ledger(id), ["order_charge", "order_refund"])
        XCTAssertEqual(try balance(), 100_000)
        XCTAssertEqual(cancelQueue.ids, [], "a plain refusal booked nothing")
        // A failed order cannot be cancelled.
        XCTAssertEqual(refusal("orders.cancel", ["orderId": .string(id)])?.reason, "not_cancellable")
    }

    func testExhaustedAfterUncertainCallsAddsACleanUpJob() throws {
        try topup(100_000)
        let id = try XCTUnwrap(try create("P-3")["order"]?["id"]?.stringValue)
        let r = try report("orders.provider.failed", ["orderId": .string(id), "outcome": "exhausted", "message": "timeout", "mayHaveBooked": true])
        XCTAssertEqual(r["status"], "failed")
        XCTAssertEqual(r["jobs"], [.string("cancel-\(id)-cleanup")])
        XCTAssertEqual(cancelQueue.ids, ["cancel-\(id)-cleanup"])
        XCTAssertEqual(cancelQueue.all.first?.data["cleanup"], true)
        XCTAssertEqual(try balance(), 100_000)
    }

    func testCancelRefusedReturnsToPlacedWithoutRefund() throws {
        try topup(100_000)
        let id = try XCTUnwrap(try create("P-4")["order"]?["id"]?.stringValue)
        _ = try report("orders.provider.placed", ["orderId": .string(id), "awbNumber": "AWB9"])
        XCTAssertEqual(try call("orders.cancel", ["orderId": .string(id)])["order"]?["status"], "cancel_requested")
        let p: JSON = ["orderId": .string(id), "message": "Shipment already picked up"]
        let first = try report("orders.provider.cancelRefused", p)
        XCTAssertEqual(first["applied"], true)
        XCTAssertEqual(first["status"], "placed")
        XCTAssertEqual(try report("orders.provider.cancelRefused", p)["applied"], false)
        XCTAssertEqual(try stored(id)?["status"], "placed")
        XCTAssertEqual(try ledger(id), ["order_charge"])
        // A second cancel request is a new job.
        _ = try call("orders.cancel", ["orderId": .string(id)])
        XCTAssertEqual(cancelQueue.ids, ["cancel-\(id)-1", "cancel-\(id)-2"])
    }

    func testABookingReportedAfterTheCancelQueuesALateCancel() throws {
        try topup(100_000)
        let id = try XCTUnwrap(try create("P-5")["order"]?["id"]?.stringValue)
        _ = try call("orders.cancel", ["orderId": .string(id)])
        let r = try report("orders.provider.placed", ["orderId": .string(id), "awbNumber": "AWB77"])
        XCTAssertEqual(r["status"], "cancel_requested")
        XCTAssertEqual(r["jobs"], [.string("cancel-\(id)-late-AWB77")])
        XCTAssertEqual(try stored(id)?["awbNumber"], "AWB77")
    }

    func testAReportForAnUnknownOrderIsNotFound() {
        XCTAssertEqual(refusal("orders.provider.placed", ["orderId": "ord_missing", "awbNumber": "A"], as: .system)?.code, ErrorCode.notFound.rawValue)
    }

    // MARK: recovery

    /// A process died after storing an order and charging it, before adding its job: the recovery
    /// pass leaves a young order to its own request, then finishes it without charging again.
    func testRecoveryFinishesAnInterruptedOrder() throws {
        try topup(100_000)
        let request = try JSONValueDecoder.decode(OrderRequest.self, from: OOPSSystem.orderBody("R-1"))
        let order = Order(id: "ord_crashed", userId: "usr_m1", request: request, fingerprint: "fp", chargePaise: Self.charge,
                          requestId: "req_1", nowMs: clock.nowMillis(), nowISO: clock.nowISO())
        guard case .created = try orderStore.insert(OrderRepository.collection, order.json) else { return XCTFail("not stored") }
        _ = try wallet.call("wallet.charge", ["userId": "usr_m1", "orderId": "ord_crashed", "amountPaise": .int(Self.charge)], ctx: ctx(.system))

        XCTAssertEqual(service.recoverOnce(), 0, "a young order belongs to its own request")
        XCTAssertEqual(try stored("ord_crashed")?["stage"], "accepted")

        clock.advance(ms: 3_001)
        XCTAssertEqual(service.recoverOnce(), 1)
        XCTAssertEqual(try stored("ord_crashed")?["stage"], "enqueued")
        XCTAssertEqual(try stored("ord_crashed")?["status"], "pending")
        XCTAssertEqual(createQueue.ids, ["create-ord_crashed"])
        XCTAssertEqual(try ledger("ord_crashed"), ["order_charge"])
        XCTAssertEqual(try balance(), 100_000 - Self.charge)

        clock.advance(ms: 10_000)
        XCTAssertEqual(service.recoverOnce(), 0, "nothing is left to finish")
    }

    /// An order stored but never charged, with a balance that cannot cover it any more: recovery
    /// deletes it, as the request would have.
    func testRecoveryDeletesAnInterruptedOrderTheWalletCannotPayFor() throws {
        let request = try JSONValueDecoder.decode(OrderRequest.self, from: OOPSSystem.orderBody("R-2"))
        let order = Order(id: "ord_unpaid", userId: "usr_m1", request: request, fingerprint: "fp", chargePaise: Self.charge,
                          requestId: "req_2", nowMs: clock.nowMillis(), nowISO: clock.nowISO())
        _ = try orderStore.insert(OrderRepository.collection, order.json)
        clock.advance(ms: 3_001)
        XCTAssertEqual(service.recoverOnce(), 0)
        XCTAssertNil(try stored("ord_unpaid"))
        XCTAssertEqual(try ledger(), [])
        XCTAssertEqual(createQueue.ids, [])
    }

    // MARK: webhooks

    /// OrderSvc with signed webhooks on the same stores: its webhook events go through `events`
    /// (which can refuse them) and their jobs to `queue` (which can be down).
    private func webhookService(events: RefusingStore, queue: OutageQueue) throws -> (OrderService, WebhookService, Dispatcher, CurlHTTPClient) {
        let log = Logger(service: "OrderSvc", instance: 0, level: .error)
        let http = try CurlHTTPClient(options: CurlClientOptions(), name: "webhook-test-http")
        let hooks = WebhookService(store: events, queue: queue, http: http,
                                   settings: WebhookSettings(Config.fromEnvironment(["OOPS_WEBHOOK_ALLOW_HOSTS": "127.0.0.1:9"])), log: log)
        try hooks.prepare()
        let svc = OrderService(repo: service.repo, wallet: wallet, auth: auth, createQueue: createQueue, cancelQueue: cancelQueue, log: log, webhooks: hooks)
        return (svc, hooks, Dispatcher(service: "OrderSvc", instance: 0, methods: OrderHandlers.methods(svc), log: log), http)
    }

    private func webhookEvents(_ orderId: String) throws -> [JSON] {
        try orderStore.find(WebhookService.events, where: .eq("orderId", .string(orderId)), sort: [.asc("seq")], limit: 0)
    }

    /// An order's changes are stored while their webhook events cannot be: the events store
    /// refuses (as when OrderSvc dies between the order's write and the event's), then Redis is
    /// down. The change stands, the order keeps owing the events, and once both are back the
    /// recovery pass records every missing event with its id and statuses and queues them in order.
    func testWebhookEventsOwedByAnOrderChangeAreRecordedByTheRecoveryPass() throws {
        let events = RefusingStore(orderStore)
        let whQueue = OutageQueue(name: WebhookService.queueName)
        let (svc, hooks, orders, http) = try webhookService(events: events, queue: whQueue)
        defer { http.close() }
        _ = try hooks.register(url: "http://127.0.0.1:9/hooks", ctx: ctx(Self.merchant))
        try topup(100_000)

        events.refusing = [WebhookService.events]
        let created = try orders.call("orders.create", OOPSSystem.orderBody("W-1"), ctx: ctx(Self.merchant))
        let id = try XCTUnwrap(created["order"]?["id"]?.stringValue)
        XCTAssertEqual(created["created"], true, "the order stands")
        XCTAssertNil(created["order"]?["webhookOutbox"], "clients never see the owed events")
        XCTAssertEqual(try webhookEvents(id), [])
        XCTAssertEqual(try stored(id)?["webhookDue"], true)
        clock.advance(ms: 3_001)
        XCTAssertEqual(svc.recoverWebhooksOnce(), 0, "the store still refuses")

        // The next change records the earlier event with its own; Redis is down, so neither is queued.
        events.refusing = []
        whQueue.down = true
        _ = try orders.call("orders.provider.placed", ["orderId": .string(id), "awbNumber": "AWB55"], ctx: ctx(.system))
        XCTAssertEqual(try webhookEvents(id).map { $0["_id"] }, [.string("evt_\(id)_1"), .string("evt_\(id)_2")])
        XCTAssertEqual(whQueue.ids, [])
        XCTAssertEqual(try stored(id)?["webhookDue"], true)

        whQueue.down = false
        XCTAssertEqual(svc.recoverWebhooksOnce(), 0, "a young change is left to its own request")
        clock.advance(ms: 3_001)
        XCTAssertEqual(svc.recoverWebhooksOnce(), 1)
        XCTAssertEqual(whQueue.ids, ["wh-evt_\(id)_1", "wh-evt_\(id)_2"])
        XCTAssertEqual(whQueue.all.map { $0.data["eventId"] }, [.string("evt_\(id)_1"), .string("evt_\(id)_2")])
        let bodies = try webhookEvents(id).map { try JSONParser.parse($0["body"]?.stringValue ?? "") }
        XCTAssertEqual(bodies.map { $0["type"] }, ["order.created", "order.status_changed"])
        XCTAssertEqual(bodies.map { $0["data"]?["previousStatus"] }, [.null, "pending"])
        XCTAssertEqual(bodies.map { $0["data"]?["status"] }, ["pending", "placed"])
        XCTAssertEqual(bodies.map { $0["data"]?["awbNumber"] }, [.null, "AWB55"])
        XCTAssertEqual(try webhookEvents(id).map { $0["state"] }, ["pending", "pending"])
        XCTAssertNil(try stored(id)?["webhookDue"], "the order owes nothing more")
        XCTAssertEqual(svc.recoverWebhooksOnce(), 0)

        // With everything up, a change records and queues its own event.
        _ = try orders.call("orders.provider.tracked", ["orderId": .string(id), "trackingStatus": "picked_up", "providerStatusCode": 2,
                                                                "providerStatusTitle": "Picked Up"],
                            ctx: ctx(.system))
        let third = try XCTUnwrap(try webhookEvents(id).last)
        XCTAssertEqual(third["_id"], .string("evt_\(id)_3"))
        XCTAssertEqual(try JSONParser.parse(third["body"]?.stringValue ?? "")["data"]?["trackingStatus"], "picked_up")
        XCTAssertEqual(whQueue.ids, ["wh-evt_\(id)_1", "wh-evt_\(id)_2", "wh-evt_\(id)_3"])
        XCTAssertNil(try stored(id)?["webhookDue"])
    }

    /// A merchant without an endpoint gets no events and no jobs, and its orders owe nothing.
    func testAMerchantWithoutAWebhookEndpointOwesNoEvents() throws {
        let whQueue = OutageQueue(name: WebhookService.queueName)
        let (svc, _, orders, http) = try webhookService(events: RefusingStore(orderStore), queue: whQueue)
        defer { http.close() }
        try topup(100_000)
        let id = try XCTUnwrap(try orders.call("orders.create", OOPSSystem.orderBody("W-2"), ctx: ctx(Self.merchant))["order"]?["id"]?.stringValue)
        _ = try orders.call("orders.provider.placed", ["orderId": .string(id), "awbNumber": "AWB56"], ctx: ctx(.system))
        XCTAssertEqual(try webhookEvents(id), [])
        XCTAssertEqual(whQueue.ids, [])
        XCTAssertNil(try stored(id)?["webhookDue"])
        clock.advance(ms: 3_001)
        XCTAssertEqual(svc.recoverWebhooksOnce(), 0)
    }
}

/// A store that refuses inserts and updates into the named collections, as an unreachable one would.
private final class RefusingStore: DocumentStore {
    let inner: any DocumentStore
    private let refused = Locked<Set<String>>([])
    init(_ inner: any DocumentStore) { self.inner = inner }

    var refusing: Set<String> {
        get { refused.current }
        set { refused.withLock { $0 = newValue } }
    }

    private func check(_ collection: String) throws {
        if refused.current.contains(collection) { throw StoreError(.unavailable, "refused by the test") }
    }

    var backend: String { inner.backend }
    func prepare(_ collections: [CollectionSpec], schemaVersion: Int) throws { try inner.prepare(collections, schemaVersion: schemaVersion) }
    func insert(_ collection: String, _ doc: JSON) throws -> InsertResult {
        try check(collection)
        return try inner.insert(collection, doc)
    }
    func get(_ collection: String, id: String) throws -> JSON? { try inner.get(collection, id: id) }
    func findOne(_ collection: String, where filter: Filter) throws -> JSON? { try inner.findOne(collection, where: filter) }
    func find(_ collection: String, where filter: Filter, sort: [SortKey], limit: Int) throws -> [JSON] {
        try inner.find(collection, where: filter, sort: sort, limit: limit)
    }
    func count(_ collection: String, where filter: Filter) throws -> Int { try inner.count(collection, where: filter) }
    func update(_ collection: String, where filter: Filter, _ update: Update) throws -> JSON? {
        try check(collection)
        return try inner.update(collection, where: filter, update)
    }
    func updateMany(_ collection: String, where filter: Filter, _ update: Update) throws -> Int {
        try check(collection)
        return try inner.updateMany(collection, where: filter, update)
    }
    func delete(_ collection: String, where filter: Filter) throws -> Int { try inner.delete(collection, where: filter) }
    func ping() throws { try inner.ping() }
    func close() { inner.close() }
}

/// A producer's queue whose Redis can be down: adds fail while it is.
private final class OutageQueue: JobAdding {
    let recorded: RecordingQueue
    private let isDown = Locked(false)
    init(name: String) { recorded = RecordingQueue(name: name) }

    var down: Bool {
        get { isDown.current }
        set { isDown.withLock { $0 = newValue } }
    }

    var name: String { recorded.name }
    func add(name: String, dataJSON: String, options: JobOptions) throws -> String {
        if down { throw StoreError(.unavailable, "Redis is down (test)") }
        return try recorded.add(name: name, dataJSON: dataJSON, options: options)
    }
    func state(id: String) throws -> JobState { try recorded.state(id: id) }
    var ids: [String] { recorded.ids }
    var all: [(id: String, name: String, data: JSON)] { recorded.all }
}
