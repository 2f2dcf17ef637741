import Domain
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

    static let merchant = Actor(userId: "usr_m1", role: .merchant)
    /// The charge of `OOPSSystem.orderBody`: 1.2 kg in a 20×15×10 cm box, surface, prepaid.
    static let charge = RateCard.chargePaise(weightGrams: 1200, lengthCm: 20, widthCm: 15, heightCm: 10, express: false, codAmountPaise: nil)

    override func setUpWithError() throws {
        let log = Logger(service: "OrderSvc", instance: 0, level: .error)
        let walletRepo = WalletRepository(store: walletStore, clock: clock)
        try walletRepo.prepare()
        wallet = Dispatcher(service: "WalletSvc", instance: 0,
                            methods: WalletHandlers(service: WalletService(repository: walletRepo, log: log)).methods, log: log)
        let auth = Dispatcher(service: "AuthSvc", instance: 0, methods: [
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
        do {
            let r = try call(method, params, as: actor)
            XCTFail("\(method) succeeded: \(r.serialized())", file: file, line: line)
            return nil
        } catch let e as RPCError {
            return e
        } catch {
            XCTFail("\(method) threw \(error)", file: file, line: line)
            return nil
        }
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
}
