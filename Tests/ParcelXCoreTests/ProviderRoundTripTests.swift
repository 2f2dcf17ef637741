import Domain
import JSON
import RPC
import Runtime
import Store
import TestSupport
import XCTest
@testable import OrderCore
@testable import ParcelXCore
@testable import Queue
@testable import WalletCore

/// The whole order path in one process: OrderSvc (with WalletSvc's real handlers) accepts and
/// cancels, the jobs it adds are run by ParcelXSvc's worker against a scripted provider, and the
/// worker's reports reach OrderSvc through its Dispatcher, so every report is checked against
/// OrderSvc's own schemas and roles. What is asserted is the stored order and the ledger.
final class ProviderRoundTripTests: XCTestCase {
    /// Tracking polls the worker adds after a booking.
    let trackingQueue = RecordingQueue(name: QueueNames.tracking)
    let clock = ManualClock()
    let orderStore = MemoryStore()
    let walletStore = MemoryStore()
    let createQueue = RecordingQueue(name: QueueNames.orders)
    let cancelQueue = RecordingQueue(name: QueueNames.cancellations)
    var orders: Dispatcher!
    var wallet: Dispatcher!

    static let merchant = Actor(userId: "usr_m1", role: .merchant)

    override func setUpWithError() throws {
        let log = Logger(service: "test", instance: 0, level: .error)
        let walletRepo = WalletRepository(store: walletStore, clock: clock)
        try walletRepo.prepare()
        wallet = Dispatcher(service: "WalletSvc", instance: 0,
                            methods: WalletHandlers(service: WalletService(repository: walletRepo, log: log)).methods, log: log)
        let auth = Dispatcher(service: "AuthSvc", instance: 0, methods: [
            Method("kyc.status", summary: "KYC status", roles: [.system], params: .anything, result: .anything) { _, _ in ["status": "approved"] },
        ], log: log)
        let repo = OrderRepository(store: orderStore, clock: clock)
        try repo.prepare()
        let service = OrderService(repo: repo, wallet: wallet, auth: auth, createQueue: createQueue, cancelQueue: cancelQueue, log: log)
        orders = Dispatcher(service: "OrderSvc", instance: 0, methods: OrderHandlers.methods(service), log: log)
    }

    private func worker(_ provider: ScriptedProvider) throws -> ParcelXOrderService {
        let logs = ProviderLogRepository(store: MemoryStore(), clock: clock)
        try logs.prepare()
        return ParcelXOrderService(client: ParcelXClient(baseURL: "http://parcelx.test", accessKey: "ak", secretKey: "sk", transport: provider),
                                   logs: logs, orders: orders, log: Logger(service: "ParcelXSvc", instance: 0, level: .error), defaultAttempts: 3,
                                   tracking: TrackingPolls(queue: trackingQueue, schedule: .standard))
    }

    /// The job as the worker would fetch it: the recorded id, name and data, on its first attempt.
    private func job(_ recorded: (id: String, name: String, data: JSON)) -> Job {
        Job(id: recorded.id, fields: ["name": recorded.name, "data": recorded.data.serialized(), "opts": #"{"attempts":3}"#], context: nil)
    }

    private func ctx(_ a: Actor) -> RPCContext { RPCContext.new(actor: a, timeoutMs: 10_000) }

    private func createOrder(topup: Int64) throws -> String {
        _ = try wallet.call("wallet.topup", ["amountPaise": .int(topup), "idempotencyKey": "k1"], ctx: ctx(Self.merchant))
        let r = try orders.call("orders.create", OOPSSystem.orderBody("SHOP-1"), ctx: ctx(Self.merchant))
        return try XCTUnwrap(r["order"]?["id"]?.stringValue)
    }

    private func order(_ id: String) throws -> JSON { try XCTUnwrap(try orderStore.get(OrderRepository.collection, id: id)) }
    private func balance() throws -> JSON? { try walletStore.get(WalletRepository.wallets, id: "usr_m1")?["balancePaise"] }
    private func ledger(_ orderId: String) throws -> [String] {
        try walletStore.find(WalletRepository.ledger, where: .eq("orderId", .string(orderId)), sort: [.asc("createdAtMs")], limit: 0)
            .compactMap { $0["reason"]?.stringValue }
    }

    func testBookedThenCancelledAtTheProviderAndRefundedOnce() async throws {
        let id = try createOrder(topup: 100_000)
        let provider = ScriptedProvider([.createOrder: [ProviderRoundTripTests.created],
                                         .cancelOrder: [ScriptedProvider.json(200, ["status": true, "responsemsg": "Order cancelled"])]])
        let w = try worker(provider)
        let createJob = try XCTUnwrap(createQueue.all.first)
        XCTAssertEqual(createJob.id, "create-\(id)")

        _ = try await w.processParcelXOrder(orderId: id, job: job(createJob))
        XCTAssertEqual(try order(id)["status"], "placed")
        XCTAssertEqual(try order(id)["awbNumber"], "AWB100")
        XCTAssertNotNil(try order(id)["parcelxResponseRefId"]?.stringValue)
        XCTAssertEqual(trackingQueue.ids, ["track-\(id)-1"], "a booked shipment gets its first tracking poll")

        _ = try orders.call("orders.cancel", ["orderId": .string(id)], ctx: ctx(Self.merchant))
        let cancelJob = try XCTUnwrap(cancelQueue.all.first)
        XCTAssertEqual(cancelJob.id, "cancel-\(id)-1")
        _ = try await w.processParcelXOrderCancellation(orderId: id, job: job(cancelJob))
        XCTAssertEqual(try order(id)["status"], "cancelled")
        XCTAssertEqual(try balance(), 100_000)

        // The cancel job runs again (a worker died before acknowledging it): nothing more moves.
        _ = try await w.processParcelXOrderCancellation(orderId: id, job: job(cancelJob))
        XCTAssertEqual(try order(id)["status"], "cancelled")
        XCTAssertEqual(try ledger(id), ["order_charge", "order_refund"])
        XCTAssertEqual(try balance(), 100_000)
        XCTAssertEqual(provider.operations, [.createOrder, .cancelOrder, .cancelOrder])
    }

    func testRefusedByTheProviderFailsTheOrderAndRefundsIt() async throws {
        let id = try createOrder(topup: 100_000)
        let provider = ScriptedProvider([.createOrder: [ScriptedProvider.json(200, ["status": false, "responsemsg": ["Pincode not serviceable"]])],
                                         .trackByClientOrderId: [ScriptedProvider.json(200, ["status": false, "responsemsg": "No order found"])]])
        do {
            _ = try await worker(provider).processParcelXOrder(orderId: id, job: job(try XCTUnwrap(createQueue.all.first)))
            XCTFail("a refused order fails its job")
        } catch is UnrecoverableError {}
        XCTAssertEqual(try order(id)["status"], "failed")
        XCTAssertEqual(try order(id)["providerMessage"], "Pincode not serviceable")
        XCTAssertEqual(try ledger(id), ["order_charge", "order_refund"])
        XCTAssertEqual(try balance(), 100_000)
        XCTAssertEqual(cancelQueue.ids, [], "nothing can have been booked")
        XCTAssertEqual(trackingQueue.ids, [], "nothing to track")
    }

    static let created = ScriptedProvider.json(200, ["status": true, "responsemsg": ["Order created"],
                                                     "data": ["awb_number": "AWB100", "courier_name": "Delhivery"]])
}
