import XCTest
import JSON
import Queue
@testable import OrderCore

/// OrderLifecycle as a table: every status × every event, then the stage rows of acceptance, then
/// the races the chaos runs found, as sequences of events.
final class OrderLifecycleTests: XCTestCase {
    static let ctx = OrderLifecycle.Context(by: "system", at: "2026-11-28T10:00:00.000Z", requestId: "req_1")
    static let refs = ProviderRefs(requestRefId: "plog_rq", responseRefId: "plog_rs")

    static func order(_ status: OrderStatus, stage: OrderStage = .enqueued, awb: String? = nil, cancelFrom: OrderStatus? = nil,
                      cancelEnqueued: Bool = true) -> Order {
        let request = OrderRequest(
            clientOrderId: "c-1",
            consignee: Consignee(name: "A", mobile: "9876543210", address1: "1 Road", pincode: "560001"),
            pickupAddressId: "wh-1", payment: Payment(mode: "prepaid", codAmountPaise: 0),
            package: Package(weightGrams: 500, lengthCm: 10, widthCm: 10, heightCm: 10),
            items: [OrderItem(sku: "s", name: "n", quantity: 1, pricePaise: 100)], expressType: nil)
        var o = Order(id: "ord_1", userId: "usr_1", request: request, fingerprint: "fp", chargePaise: 4000, requestId: "req_0",
                      nowMs: 1, nowISO: "2026-11-28T09:00:00.000Z")
        o.stage = stage
        o.status = status
        o.awbNumber = awb
        o.cancelEnqueued = cancelEnqueued
        if status == .cancelRequested || status == .cancelled {
            o.cancelFrom = cancelFrom ?? .pending
            o.history.append(OrderHistoryEntry(status: .cancelRequested, at: "t", by: "usr_1", note: "cancel requested"))
        }
        if status == .cancelled { o.history.append(OrderHistoryEntry(status: .cancelled, at: "t", by: "system")) }
        return o
    }

    /// Effects as short words: `charge`, `delete`, `refund`, `create:<job id>`, `cancel:<job id>`.
    static func words(_ effects: [OrderEffect]) -> [String] {
        effects.map {
            switch $0 {
            case .charge: "charge"
            case .deleteUncharged: "delete"
            case .refund: "refund"
            case .enqueueCreate(let j): "create:\(j.id)"
            case .enqueueCancel(let j): "cancel:\(j.id)"
            }
        }
    }

    static let failure = ProviderFailure(message: "refused", refs: refs)
    static let events: [(String, OrderEvent)] = [
        ("accepted", .accepted), ("charged", .charged), ("chargeRefused", .chargeRefused), ("enqueued", .enqueued),
        ("cancelRequested", .cancelRequested), ("cancelEnqueued", .cancelEnqueued),
        ("providerAttempted", .providerAttempted(refs)),
        ("providerPlaced", .providerPlaced(ProviderBooking(awb: "AWB1", courier: "Fast", refs: refs))),
        ("providerRefused", .providerRefused(failure)),
        ("retriesExhausted", .retriesExhausted(ProviderFailure(message: "timeout", refs: refs, mayHaveBooked: true))),
        ("providerCancelled", .providerCancelled(ProviderCancellation(refs: refs, atProvider: true))),
        ("cancelRefused", .cancelRefused(failure)),
        ("tracked", .tracked(TrackingUpdate(status: .inTransit, providerCode: 223, providerTitle: "In Transit"))),
    ]

    /// Expected (status after, effects, outcome) for each status (stage `enqueued`) and event.
    /// `=` is unchanged, `+` applied, `!` rejected.
    static let table: [OrderStatus: [String: (OrderStatus, [String], Character)]] = [
        .pending: [
            "accepted": (.pending, [], "="), "charged": (.pending, [], "="), "chargeRefused": (.pending, [], "="), "enqueued": (.pending, [], "="),
            "cancelRequested": (.cancelRequested, ["cancel:cancel-ord_1-1"], "+"), "cancelEnqueued": (.pending, [], "="),
            "providerAttempted": (.pending, [], "+"), "providerPlaced": (.placed, [], "+"),
            "providerRefused": (.failed, ["refund"], "+"), "retriesExhausted": (.failed, ["refund", "cancel:cancel-ord_1-cleanup"], "+"),
            "providerCancelled": (.pending, [], "="), "cancelRefused": (.pending, [], "="), "tracked": (.pending, [], "="),
        ],
        .placed: [
            "accepted": (.placed, [], "="), "charged": (.placed, [], "="), "chargeRefused": (.placed, [], "="), "enqueued": (.placed, [], "="),
            "cancelRequested": (.cancelRequested, ["cancel:cancel-ord_1-1"], "+"), "cancelEnqueued": (.placed, [], "="),
            "providerAttempted": (.placed, [], "="), "providerPlaced": (.placed, [], "="),
            "providerRefused": (.placed, [], "="), "retriesExhausted": (.placed, [], "="),
            "providerCancelled": (.placed, [], "="), "cancelRefused": (.placed, [], "="), "tracked": (.placed, [], "="),
        ],
        .failed: [
            "accepted": (.failed, [], "="), "charged": (.failed, [], "="), "chargeRefused": (.failed, [], "="), "enqueued": (.failed, [], "="),
            "cancelRequested": (.failed, [], "!"), "cancelEnqueued": (.failed, [], "="),
            "providerAttempted": (.failed, [], "="), "providerPlaced": (.failed, [], "="),
            "providerRefused": (.failed, [], "="), "retriesExhausted": (.failed, [], "="),
            "providerCancelled": (.failed, [], "="), "cancelRefused": (.failed, [], "="), "tracked": (.failed, [], "="),
        ],
        .cancelRequested: [
            "accepted": (.cancelRequested, [], "="), "charged": (.cancelRequested, [], "="), "chargeRefused": (.cancelRequested, [], "="),
            "enqueued": (.cancelRequested, [], "="),
            "cancelRequested": (.cancelRequested, [], "="), "cancelEnqueued": (.cancelRequested, [], "="),
            "providerAttempted": (.cancelRequested, [], "="),
            "providerPlaced": (.cancelRequested, ["cancel:cancel-ord_1-late-AWB1"], "+"),
            "providerRefused": (.cancelRequested, [], "="), "retriesExhausted": (.cancelRequested, [], "="),
            "providerCancelled": (.cancelled, ["refund"], "+"),
            "cancelRefused": (.pending, ["create:create-ord_1-after-cancel-2"], "+"), "tracked": (.cancelRequested, [], "="),
        ],
        .cancelled: [
            "accepted": (.cancelled, [], "="), "charged": (.cancelled, [], "="), "chargeRefused": (.cancelled, [], "="), "enqueued": (.cancelled, [], "="),
            "cancelRequested": (.cancelled, [], "="), "cancelEnqueued": (.cancelled, [], "="),
            "providerAttempted": (.cancelled, [], "="),
            "providerPlaced": (.cancelled, ["cancel:cancel-ord_1-late-AWB1"], "+"),
            "providerRefused": (.cancelled, [], "="), "retriesExhausted": (.cancelled, [], "="),
            "providerCancelled": (.cancelled, ["refund"], "+"), "cancelRefused": (.cancelled, [], "="), "tracked": (.cancelled, [], "="),
        ],
    ]

    func testEveryStatusTimesEveryEvent() {
        XCTAssertEqual(Set(Self.table.keys), Set(OrderStatus.allCases))
        for status in OrderStatus.allCases {
            let row = Self.table[status] ?? [:]
            XCTAssertEqual(Set(row.keys), Set(Self.events.map(\.0)), "row \(status) names every event")
            for (name, event) in Self.events {
                guard let (after, effects, outcome) = row[name] else { continue }
                let t = OrderLifecycle.apply(Self.order(status), event, Self.ctx)
                let at = "\(status.rawValue) × \(name)"
                XCTAssertEqual(t.order.status, after, at)
                XCTAssertEqual(Self.words(t.effects), effects, at)
                switch (t.outcome, outcome) {
                case (.applied, "+"), (.unchanged, "="), (.rejected, "!"): break
                default: XCTFail("\(at): outcome \(t.outcome), expected \(outcome)")
                }
                if t.outcome != .applied { XCTAssertEqual(t.order, Self.order(status), "\(at) leaves the order as it was") }
            }
        }
    }

    /// The store update OrderSvc writes (`Order.changes`) turns the old document into the new one,
    /// for every transition of the table and of acceptance.
    func testChangesAreExactlyTheDocumentDiff() throws {
        var cases: [(Order, OrderEvent)] = []
        for status in OrderStatus.allCases {
            for (_, e) in Self.events { cases.append((Self.order(status), e)) }
            cases.append((Self.order(status, cancelEnqueued: false), .cancelEnqueued))
        }
        for stage in OrderStage.allCases { cases.append((Self.order(.pending, stage: stage), .enqueued)) }
        for status in OrderStatus.allCases {
            // Tracking writes on booked orders: the first entry, a next one, an unknown status.
            let booked = Self.order(status, awb: "AWB1")
            cases.append((booked, Self.tracked(.pickedUp, 230)))
            let once = OrderLifecycle.apply(booked, Self.tracked(.pickedUp, 230), Self.ctx).order
            cases.append((once, Self.tracked(.delivered, 226)))
            cases.append((once, Self.tracked(nil, 299)))
        }
        for (old, event) in cases {
            let new = OrderLifecycle.apply(old, event, Self.ctx).order
            let c = new.changes(from: old)
            var doc = old.json.objectValue ?? [:]
            for (k, v) in c.set { doc[k] = v }
            for k in c.unset { doc[k] = nil }
            if !c.appended.isEmpty {
                doc["history"] = .array((doc["history"]?.arrayValue ?? []) + (try c.appended.map { try JSON(encoding: $0) }))
            }
            XCTAssertEqual(JSON.object(doc), new.json, "\(old.status) × \(event)")
            XCTAssertEqual(new.document(updating: old.json, from: old), new.json, "\(old.status) × \(event)")
        }
    }

    static func tracked(_ s: TrackingStatus?, _ code: Int, title: String? = nil) -> OrderEvent {
        .tracked(TrackingUpdate(status: s, providerCode: code, providerTitle: title ?? "code \(code)", eventAt: "2026-11-28 10:00:00",
                                location: "Hub", remark: "r"))
    }

    /// Tracking, status × tracking update, on orders that have an AWB: only a placed order (or
    /// one whose cancel is in flight) records it; a repeat of the last provider status changes
    /// nothing; a status the map does not know is kept raw and moves nothing; a final state is
    /// never left, and ends tracking.
    func testTrackingTable() {
        let c = Self.ctx
        let rows: [(OrderStatus, Character)] = [(.pending, "="), (.placed, "+"), (.failed, "="), (.cancelRequested, "+"), (.cancelled, "=")]
        for (status, expected) in rows {
            let o = Self.order(status, awb: "AWB1", cancelFrom: .placed)
            let t = OrderLifecycle.apply(o, Self.tracked(.inTransit, 223), c)
            XCTAssertEqual(t.outcome == .applied ? "+" : "=", expected, "\(status)")
            XCTAssertEqual(t.effects, [], "tracking runs no effect")
            XCTAssertEqual(t.order.status, status, "tracking never moves the order's status")
            XCTAssertEqual(OrderLifecycle.tracksShipment(o), expected == "+", "\(status)")
            if expected == "+" {
                XCTAssertEqual(t.order.trackingStatus, .inTransit)
                XCTAssertEqual(t.order.tracking, [TrackingEntry(status: .inTransit, providerCode: 223, providerTitle: "code 223", at: c.at,
                                                                eventAt: "2026-11-28 10:00:00", location: "Hub", remark: "r")])
            }
        }
        XCTAssertFalse(OrderLifecycle.tracksShipment(Self.order(.placed)), "no AWB, nothing to track")

        var o = Self.order(.placed, awb: "AWB1")
        o = OrderLifecycle.apply(o, Self.tracked(.pickedUp, 230), c).order
        XCTAssertEqual(OrderLifecycle.apply(o, Self.tracked(.pickedUp, 230), c).outcome, .unchanged, "the same provider status again")
        let unknown = OrderLifecycle.apply(o, Self.tracked(nil, 299, title: "Misrouted"), c)
        XCTAssertEqual(unknown.outcome, .applied)
        XCTAssertEqual(unknown.order.trackingStatus, .pickedUp, "an unknown provider status is not guessed")
        XCTAssertEqual(unknown.order.tracking.last?.providerCode, 299)
        XCTAssertEqual(unknown.order.tracking.last?.providerTitle, "Misrouted")
        XCTAssertNil(unknown.order.tracking.last?.status)
        XCTAssertTrue(OrderLifecycle.tracksShipment(unknown.order))
        for final in TrackingStatus.allCases where final.isFinal {
            let done = OrderLifecycle.apply(unknown.order, Self.tracked(final, 900), c).order
            XCTAssertEqual(done.trackingStatus, final)
            XCTAssertFalse(OrderLifecycle.tracksShipment(done), "\(final) ends tracking")
            XCTAssertEqual(OrderLifecycle.apply(done, Self.tracked(.inTransit, 223), c).outcome, .unchanged, "\(final) is never left")
        }
        XCTAssertEqual(Set(TrackingStatus.allCases.filter(\.isFinal)), [.delivered, .rtoDelivered, .lost, .cancelled])

        // The entries are bounded; past the bound only the status moves on.
        var long = Self.order(.placed, awb: "AWB1")
        for i in 0..<(OrderLifecycle.trackingMax + 5) {
            long = OrderLifecycle.apply(long, Self.tracked(i % 2 == 0 ? .deliveryFailed : .outForDelivery, 901 + i % 2, title: "t\(i)"), c).order
        }
        XCTAssertEqual(long.tracking.count, OrderLifecycle.trackingMax)
        XCTAssertEqual(OrderLifecycle.apply(long, Self.tracked(.delivered, 226), c).order.trackingStatus, .delivered)

        // The stored form: absent until the first poll, then a round trip.
        XCTAssertNil(Self.order(.placed).json["trackingStatus"])
        XCTAssertNil(Self.order(.placed).json["tracking"])
        XCTAssertEqual(try? Order(json: unknown.order.json), unknown.order)
        XCTAssertEqual(unknown.order.publicJSON["trackingStatus"], "picked_up")
    }

    func testStatusChangesWriteTheirHistoryLine() {
        let placed = OrderLifecycle.apply(Self.order(.pending), .providerPlaced(ProviderBooking(awb: "AWB1", courier: "Fast", refs: Self.refs)), Self.ctx).order
        XCTAssertEqual(placed.history.last, OrderHistoryEntry(status: .placed, at: Self.ctx.at, by: "system", note: "shipment booked"))
        XCTAssertEqual(placed.providerSyncStatus, .synced)
        XCTAssertEqual(placed.awbNumber, "AWB1")
        XCTAssertEqual(placed.courierName, "Fast")
        XCTAssertEqual(placed.parcelxRequestRefId, "plog_rq")

        let failed = OrderLifecycle.apply(Self.order(.pending), .providerRefused(ProviderFailure(message: String(repeating: "x", count: 900))), Self.ctx).order
        XCTAssertEqual(failed.providerSyncStatus, .failed)
        XCTAssertEqual(failed.providerMessage?.count, 500, "provider messages are kept to 500 characters")
        XCTAssertEqual(failed.history.last?.providerMessage?.count, 500)
        XCTAssertEqual(failed.history.last?.note, "provider refused or gave up")

        let asked = OrderLifecycle.apply(Self.order(.placed), .cancelRequested, Self.ctx).order
        XCTAssertEqual(asked.cancelFrom, .placed)
        XCTAssertFalse(asked.cancelEnqueued)
        XCTAssertEqual(asked.history.last?.note, "cancel requested")

        let refused = OrderLifecycle.apply(Self.order(.cancelRequested, awb: "AWB1", cancelFrom: .placed), .cancelRefused(Self.failure), Self.ctx)
        XCTAssertEqual(refused.order.status, .placed, "a refused cancel goes back to where it came from")
        XCTAssertEqual(refused.order.providerSyncStatus, .failed)
        XCTAssertEqual(Self.words(refused.effects), [], "a booked order needs no new create job")
    }

    /// The rows of acceptance: an order still in stage `accepted` (or `charged`, from older releases).
    func testAcceptanceStages() {
        func run(_ stage: OrderStage, _ e: OrderEvent) -> OrderTransition { OrderLifecycle.apply(Self.order(.pending, stage: stage), e, Self.ctx) }
        XCTAssertEqual(Self.words(run(.accepted, .accepted).effects), ["charge"])
        XCTAssertEqual(run(.accepted, .accepted).effects, [.charge(paise: 4000)])
        XCTAssertEqual(Self.words(run(.charged, .accepted).effects), [], "an old `charged` order is not charged again")
        XCTAssertEqual(Self.words(run(.accepted, .charged).effects), ["create:create-ord_1"])
        XCTAssertEqual(Self.words(run(.charged, .charged).effects), ["create:create-ord_1"])
        XCTAssertEqual(Self.words(run(.accepted, .chargeRefused).effects), ["delete"])
        XCTAssertEqual(Self.words(run(.charged, .chargeRefused).effects), [], "a charged order is never deleted")
        for stage in [OrderStage.accepted, .charged] {
            let t = run(stage, .enqueued)
            XCTAssertEqual(t.order.stage, .enqueued)
            XCTAssertEqual(t.outcome, .applied)
            XCTAssertEqual(t.effects, [])
        }
        // Effects that must hold before the write, and those that need the write first.
        XCTAssertTrue(OrderEffect.charge(paise: 1).precedesWrite && OrderEffect.refund.precedesWrite && OrderEffect.deleteUncharged.precedesWrite)
        XCTAssertFalse(OrderEffect.enqueueCreate(.create(orderId: "o", requestId: "r")).precedesWrite)
    }

    /// A cancel request whose job was never added (a crash, Redis away): finishing the order adds it.
    func testDrivingAnOrderAddsAMissingCancelJob() {
        let o = Self.order(.cancelRequested, cancelEnqueued: false)
        XCTAssertEqual(Self.words(OrderLifecycle.apply(o, .enqueued, Self.ctx).effects), ["cancel:cancel-ord_1-1"])
        XCTAssertEqual(Self.words(OrderLifecycle.apply(o, .cancelRequested, Self.ctx).effects), ["cancel:cancel-ord_1-1"])
        let marked = OrderLifecycle.apply(o, .cancelEnqueued, Self.ctx)
        XCTAssertTrue(marked.order.cancelEnqueued)
        XCTAssertEqual(Self.words(OrderLifecycle.apply(marked.order, .enqueued, Self.ctx).effects), [])
    }

    /// Chaos: the create succeeded at the provider after the order was cancelled. The AWB is kept,
    /// the shipment is cancelled by its own job, and the order ends cancelled and refunded.
    func testCreateSucceedingAfterACancel() {
        let c = Self.ctx
        var o = Self.order(.pending, cancelEnqueued: false)
        o = OrderLifecycle.apply(o, .cancelRequested, c).order
        // The cancel job found nothing at the provider yet: cancelled, refunded.
        let early = OrderLifecycle.apply(o, .providerCancelled(ProviderCancellation(atProvider: false)), c)
        XCTAssertEqual(early.order.status, .cancelled)
        XCTAssertEqual(Self.words(early.effects), ["refund"])
        // Then the create's answer arrives.
        let late = OrderLifecycle.apply(early.order, .providerPlaced(ProviderBooking(awb: "AWB9", refs: Self.refs)), c)
        XCTAssertEqual(late.order.status, .cancelled, "a booking never brings a cancelled order back")
        XCTAssertEqual(late.order.awbNumber, "AWB9")
        XCTAssertEqual(Self.words(late.effects), ["cancel:cancel-ord_1-late-AWB9"])
        // The late cancel job cancels it at the provider: still cancelled, the refund asked again (at most once by reference).
        let done = OrderLifecycle.apply(late.order, .providerCancelled(ProviderCancellation(refs: Self.refs, atProvider: true)), c)
        XCTAssertEqual(done.order.status, .cancelled)
        XCTAssertEqual(done.order.providerSyncStatus, .synced)
        XCTAssertEqual(Self.words(done.effects), ["refund"])
        XCTAssertEqual(done.order.history.filter { $0.status == .cancelled }.count, 1, "one cancelled line")

        // The same race while the cancel job is still running: the AWB is recorded for it.
        let racing = OrderLifecycle.apply(o, .providerPlaced(ProviderBooking(awb: "AWB9", refs: Self.refs)), c)
        XCTAssertEqual(racing.order.status, .cancelRequested)
        XCTAssertEqual(racing.order.awbNumber, "AWB9")
        XCTAssertNotEqual(racing.order.providerSyncStatus, .synced)
    }

    /// Chaos: the provider is down for a whole retry window, for a create and for a cancel.
    func testProviderDownForAWholeRetryWindow() {
        let c = Self.ctx
        var o = Self.order(.pending)
        for _ in 0..<4 { o = OrderLifecycle.apply(o, .providerAttempted(Self.refs), c).order }
        XCTAssertEqual(o.status, .pending)
        XCTAssertEqual(o.parcelxRequestRefId, "plog_rq")
        let failed = OrderLifecycle.apply(o, .retriesExhausted(ProviderFailure(message: "no answer", mayHaveBooked: true)), c)
        XCTAssertEqual(failed.order.status, .failed)
        XCTAssertEqual(Self.words(failed.effects), ["refund", "cancel:cancel-ord_1-cleanup"])
        if case .enqueueCancel(let job)? = failed.effects.last {
            XCTAssertEqual(job.options.attempts, QueueDefaults.providerCleanup.attempts)
            XCTAssertEqual(job.options.backoff, QueueDefaults.providerCleanup.backoff)
            XCTAssertEqual(job.data["cleanup"], true)
        }
        let sure = OrderLifecycle.apply(o, .providerRefused(ProviderFailure(message: "bad pincode")), c)
        XCTAssertEqual(Self.words(sure.effects), ["refund"], "a clear refusal on the first attempt needs no clean-up")

        // A cancel that could not reach the provider: a never-booked order goes back to pending
        // and gets a new create job; one with a known AWB goes back to placed.
        let asked = OrderLifecycle.apply(Self.order(.pending, cancelEnqueued: false), .cancelRequested, c).order
        let back = OrderLifecycle.apply(asked, .cancelRefused(ProviderFailure(message: "no answer")), c)
        XCTAssertEqual(back.order.status, .pending)
        XCTAssertEqual(Self.words(back.effects), ["create:create-ord_1-after-cancel-2"])
        let found = OrderLifecycle.apply(asked, .cancelRefused(ProviderFailure(message: "no answer", awb: "AWB3")), c)
        XCTAssertEqual(found.order.status, .placed)
        XCTAssertEqual(found.order.awbNumber, "AWB3")
        XCTAssertEqual(found.effects, [])
        // A second cancel request after the refused one is a new job.
        let again = OrderLifecycle.apply(found.order, .cancelRequested, c)
        XCTAssertEqual(Self.words(again.effects), ["cancel:cancel-ord_1-2"])
    }

    /// Chaos: a job caught in two worker crashes runs three times and reports each time. Every
    /// report after the first changes nothing and adds nothing.
    func testAJobCaughtInTwoWorkerCrashesReportsIdempotently() {
        let c = Self.ctx
        let booking = OrderEvent.providerPlaced(ProviderBooking(awb: "AWB1", courier: "Fast", refs: Self.refs))
        let first = OrderLifecycle.apply(Self.order(.pending), booking, c)
        XCTAssertEqual(first.outcome, .applied)
        for _ in 0..<2 {
            let again = OrderLifecycle.apply(first.order, booking, c)
            XCTAssertEqual(again.outcome, .unchanged)
            XCTAssertEqual(again.effects, [])
        }
        // A late failure report from the crashed run cannot undo the booking.
        XCTAssertEqual(OrderLifecycle.apply(first.order, .retriesExhausted(Self.failure), c).outcome, .unchanged)
        // The same for the cancel side: a repeated cancelled report keeps one history line.
        let cancelled = OrderLifecycle.apply(Self.order(.cancelRequested), .providerCancelled(ProviderCancellation(refs: Self.refs, atProvider: true)), c).order
        let repeated = OrderLifecycle.apply(cancelled, .providerCancelled(ProviderCancellation(refs: Self.refs, atProvider: true)), c)
        XCTAssertEqual(repeated.outcome, .unchanged)
        XCTAssertEqual(repeated.order.history.count, cancelled.history.count)
    }

    func testWorkersAskTheLifecycleWhatAJobShouldDo() {
        XCTAssertEqual(OrderStatus.allCases.filter { OrderLifecycle.awaitsBooking(Self.order($0)) }, [.pending])
        XCTAssertEqual(OrderLifecycle.cancelWork(Self.order(.failed)), .cleanUp)
        XCTAssertEqual(OrderLifecycle.cancelWork(Self.order(.cancelRequested)), .cancel)
        XCTAssertEqual(OrderLifecycle.cancelWork(Self.order(.cancelled)), .cancel)
        XCTAssertEqual(OrderLifecycle.cancelWork(Self.order(.placed)), .none)
    }

    /// The stored form: `_id` and `id`, provider fields null until known, and a round trip.
    func testOrderDocumentRoundTrips() throws {
        let o = Self.order(.pending)
        let doc = o.json
        XCTAssertEqual(doc["_id"], "ord_1")
        XCTAssertEqual(doc["id"], "ord_1")
        XCTAssertEqual(doc["awbNumber"], .null)
        XCTAssertEqual(doc["parcelxRequestRefId"], .null)
        XCTAssertNil(doc["providerMessage"])
        XCTAssertEqual(doc["status"], "pending")
        XCTAssertEqual(doc["payment"]?["codAmountPaise"], 0)
        XCTAssertEqual(try Order(json: doc), o)
        let pub = o.publicJSON
        for k in Order.internalFields { XCTAssertNil(pub[k], k) }
        XCTAssertEqual(pub["history"]?.arrayValue?.first?["note"], "order accepted")
    }
}
