/// Something that happened to an order. OrderSvc applies every event (docs/orders.md); the
/// provider events arrive from ParcelXSvc through the `orders.provider.*` methods.
public enum OrderEvent: Sendable, Equatable {
    /// The order is stored (or found part-way): its charge is next.
    case accepted
    /// The wallet took the charge (reference `order:<id>:charge`): the create job is next.
    case charged
    /// The wallet refused the charge: the order is deleted, as if it never existed.
    case chargeRefused
    /// The create job exists: acceptance is complete.
    case enqueued
    /// The owner (or an admin) asks to cancel.
    case cancelRequested
    /// The cancel job of the current cancel request exists.
    case cancelEnqueued
    /// A provider call failed and the job will try again: only its references are recorded.
    case providerAttempted(ProviderRefs)
    /// The provider holds a live shipment for the order.
    case providerPlaced(ProviderBooking)
    /// The provider refused the order.
    case providerRefused(ProviderFailure)
    /// The provider could not be reached, or gave no usable answer, for the whole retry window.
    case retriesExhausted(ProviderFailure)
    /// Nothing live is left at the provider: never booked, cancelled now, or cancelled before.
    case providerCancelled(ProviderCancellation)
    /// The provider would not (or could not, for the whole retry window) cancel.
    case cancelRefused(ProviderFailure)
    /// A tracking poll saw the shipment in this provider status (docs/orders.md, "Tracking").
    case tracked(TrackingUpdate)
}

/// A shipment the provider holds.
public struct ProviderBooking: Sendable, Equatable {
    public var awb: String
    public var courier: String?
    public var refs: ProviderRefs
    public init(awb: String, courier: String? = nil, refs: ProviderRefs) {
        self.awb = awb
        self.courier = courier
        self.refs = refs
    }
}

/// Why a provider workflow ended without doing what it was for.
public struct ProviderFailure: Sendable, Equatable {
    public var message: String
    public var refs: ProviderRefs
    /// A live shipment the worker found while trying (a refused cancel after a lookup).
    public var awb: String?
    /// An earlier call may have reached the provider unseen (a timeout, a second attempt): a
    /// shipment may exist that nobody knows of.
    public var mayHaveBooked: Bool
    public init(message: String, refs: ProviderRefs = .none, awb: String? = nil, mayHaveBooked: Bool = false) {
        self.message = message
        self.refs = refs
        self.awb = awb
        self.mayHaveBooked = mayHaveBooked
    }
}

/// A cancellation the provider confirmed, or found nothing to cancel for.
public struct ProviderCancellation: Sendable, Equatable {
    public var refs: ProviderRefs
    /// The AWB a lookup found (the create reached the provider unseen).
    public var awb: String?
    /// A shipment was cancelled at the provider (rather than none being live).
    public var atProvider: Bool
    public init(refs: ProviderRefs = .none, awb: String? = nil, atProvider: Bool) {
        self.refs = refs
        self.awb = awb
        self.atProvider = atProvider
    }
}

/// What applying an event asks OrderSvc to do. Every effect is idempotent (the charge and the
/// refund by their ledger references, a job by its id), so doing one twice after a crash is safe.
public enum OrderEffect: Sendable, Equatable {
    case charge(paise: Int64)
    /// Delete the order if it is still in stage `accepted` (its charge was refused).
    case deleteUncharged
    case refund
    case enqueueCreate(ProviderJob)
    case enqueueCancel(ProviderJob)

    /// Charge and refund happen before the new state is written, so a crash between the two
    /// leaves the old state and the step is taken again; jobs are added after the write, so a
    /// job never runs against the state before it (a crash between is what `cancelEnqueued`
    /// and the provider's idempotent reports are for).
    public var precedesWrite: Bool {
        switch self {
        case .charge, .deleteUncharged, .refund: true
        case .enqueueCreate, .enqueueCancel: false
        }
    }
}

/// The result of applying one event.
public struct OrderTransition: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable {
        /// The order changed: write it (compare-and-set on its status and stage).
        case applied
        /// Nothing to write; the effects, if any, still run.
        case unchanged
        /// The event is not allowed now; the client sees this error.
        case rejected(reason: String, message: String)
    }

    public var order: Order
    public var effects: [OrderEffect]
    public var outcome: Outcome

    public var effectsBeforeWrite: [OrderEffect] { effects.filter(\.precedesWrite) }
    public var effectsAfterWrite: [OrderEffect] { effects.filter { !$0.precedesWrite } }
}

/// The order's life in one pure function: (order, event) → (order, effects). Nothing here reads a
/// clock, a store or a queue; OrderSvc runs the effects and writes the order. The table of every
/// status × every event is OrderLifecycleTests.
///
///     pending ──placed──▶ placed ──cancel──▶ cancel_requested ──cancelled──▶ cancelled
///        │ └────────────cancel──────────────────▲      │ cancel refused: back to where it came
///        └──refused / retries exhausted──▶ failed      │ from (a pending one with a found AWB: placed)
public enum OrderLifecycle {
    /// Who and when, for the history line, and the request the jobs carry on.
    public struct Context: Sendable, Equatable {
        public var by: String
        public var at: String
        public var requestId: String
        public init(by: String, at: String, requestId: String) {
            self.by = by
            self.at = at
            self.requestId = requestId
        }
    }

    /// Provider messages are kept to this many characters.
    public static let providerMessageMax = 500
    /// Tracking entries kept per order; past it only the status moves on.
    public static let trackingMax = 100

    public static func apply(_ order: Order, _ event: OrderEvent, _ ctx: Context) -> OrderTransition {
        var o = order
        func unchanged(_ effects: [OrderEffect] = []) -> OrderTransition { OrderTransition(order: order, effects: effects, outcome: .unchanged) }
        func applied(_ effects: [OrderEffect] = []) -> OrderTransition {
            OrderTransition(order: o, effects: effects, outcome: o == order ? .unchanged : .applied)
        }
        func move(to status: OrderStatus, note: String, message: String? = nil) {
            o.status = status
            o.history.append(OrderHistoryEntry(status: status, at: ctx.at, by: ctx.by, note: note, providerMessage: message))
        }
        func record(_ refs: ProviderRefs) {
            if let r = refs.requestRefId { o.parcelxRequestRefId = r }
            if let r = refs.responseRefId { o.parcelxResponseRefId = r }
        }
        /// The cancel job of the current request, when it is not known to exist.
        func pendingCancelJob(_ x: Order) -> [OrderEffect] {
            guard x.status == .cancelRequested && !x.cancelEnqueued else { return [] }
            let n = max(1, x.history.filter { $0.status == .cancelRequested }.count)
            return [.enqueueCancel(.cancel(orderId: x.id, requestId: ctx.requestId, request: n))]
        }

        switch event {
        // Acceptance: the charge, then the create job, then stage `enqueued`.
        case .accepted:
            return unchanged(order.stage == .accepted ? [.charge(paise: order.chargePaise)] : [])
        case .charged:
            return unchanged(order.stage == .enqueued ? [] : [.enqueueCreate(.create(orderId: order.id, requestId: ctx.requestId))])
        case .chargeRefused:
            return unchanged(order.stage == .accepted ? [.deleteUncharged] : [])
        case .enqueued:
            o.stage = .enqueued
            // A cancel request whose job was not added (a crash, Redis away) gets it now.
            return applied(pendingCancelJob(o))

        case .cancelRequested:
            switch order.status {
            case .pending, .placed:
                o.cancelFrom = order.status
                o.cancelEnqueued = false
                move(to: .cancelRequested, note: "cancel requested")
                return applied(pendingCancelJob(o))
            case .cancelRequested:
                // Repeating a cancel is harmless; make sure the job exists.
                return unchanged(pendingCancelJob(order))
            case .cancelled:
                return unchanged()
            case .failed:
                return OrderTransition(order: order, effects: [], outcome: .rejected(reason: "not_cancellable", message: "A failed order cannot be cancelled"))
            }
        case .cancelEnqueued:
            guard order.status == .cancelRequested else { return unchanged() }
            o.cancelEnqueued = true
            return applied()

        case .providerAttempted(let refs):
            guard order.status == .pending else { return unchanged() }
            record(refs)
            return applied()

        case .providerPlaced(let b):
            switch order.status {
            case .pending:
                o.awbNumber = b.awb
                if let c = b.courier { o.courierName = c }
                o.providerSyncStatus = .synced
                record(b.refs)
                move(to: .placed, note: "shipment booked")
                return applied()
            case .cancelRequested, .cancelled:
                // Booked while the order was being cancelled: keep the AWB and cancel the shipment.
                o.awbNumber = b.awb
                if let c = b.courier { o.courierName = c }
                record(b.refs)
                return applied([.enqueueCancel(.lateCancel(orderId: order.id, requestId: ctx.requestId, awb: b.awb))])
            case .placed, .failed:
                // A repeated report, or a booking the failed order's clean-up job will cancel.
                return unchanged()
            }

        case .providerRefused(let f), .retriesExhausted(let f):
            guard order.status == .pending else { return unchanged() }
            o.providerSyncStatus = .failed
            record(f.refs)
            let message = String(f.message.prefix(providerMessageMax))
            o.providerMessage = message
            move(to: .failed, note: "provider refused or gave up", message: message)
            var effects: [OrderEffect] = [.refund]
            if f.mayHaveBooked { effects.append(.enqueueCancel(.cleanup(orderId: order.id, requestId: ctx.requestId))) }
            return applied(effects)

        case .providerCancelled(let c):
            guard order.status == .cancelRequested || order.status == .cancelled else { return unchanged() }
            if let awb = c.awb { o.awbNumber = awb }
            record(c.refs)
            o.providerSyncStatus = .synced
            if order.status == .cancelRequested {
                move(to: .cancelled, note: c.atProvider ? "cancelled at the provider" : "cancelled before booking")
            }
            // Refunded on every report: the refund happens at most once, by its ledger reference.
            return applied([.refund])

        case .cancelRefused(let f):
            guard order.status == .cancelRequested else { return unchanged() }
            if let awb = f.awb { o.awbNumber = awb }
            record(f.refs)
            o.providerSyncStatus = .failed
            let message = String(f.message.prefix(providerMessageMax))
            o.providerMessage = message
            var back = order.cancelFrom ?? .placed
            if back == .pending && o.awbNumber != nil { back = .placed }
            move(to: back, note: "provider refused the cancellation", message: message)
            // A never-booked order is booked after all: its first create job ended when it saw the cancel.
            return applied(back == .pending ? [.enqueueCreate(.createAfterCancel(orderId: order.id, requestId: ctx.requestId, historyCount: order.history.count))] : [])

        case .tracked(let u):
            // Only a booked shipment is tracked, and a final tracking state is never left.
            guard tracksShipment(order) else { return unchanged() }
            if let last = order.tracking.last, last.providerCode == u.providerCode && last.providerTitle == u.providerTitle { return unchanged() }
            if order.tracking.count < trackingMax {
                o.tracking.append(TrackingEntry(status: u.status, providerCode: u.providerCode, providerTitle: u.providerTitle, at: ctx.at,
                                                eventAt: u.eventAt, location: u.location, remark: u.remark.map { String($0.prefix(providerMessageMax)) }))
            }
            // A provider status the map does not know is kept raw on the entry; the status stays.
            if let s = u.status { o.trackingStatus = s }
            return applied()
        }
    }

    /// Whether the shipment should be polled: booked, not cancelled or failed, not in a final
    /// tracking state. A cancel request in flight keeps it tracked (the provider may refuse).
    public static func tracksShipment(_ order: Order) -> Bool {
        (order.status == .placed || order.status == .cancelRequested) && order.awbNumber != nil && !(order.trackingStatus?.isFinal ?? false)
    }

    /// Whether a create job should call the provider: only for an order still waiting to be booked.
    public static func awaitsBooking(_ order: Order) -> Bool { order.status == .pending }

    /// What a cancel job should do for the order in its current status.
    public enum CancelWork: Sendable, Equatable {
        /// Cancel the shipment at the provider (or find there is none) and report.
        case cancel
        /// The order failed with uncertain provider calls: cancel any shipment found; the order stays failed.
        case cleanUp
        /// Nothing to do (the cancel was refused meanwhile, or the order was never cancelled).
        case none
    }

    public static func cancelWork(_ order: Order) -> CancelWork {
        switch order.status {
        case .failed: .cleanUp
        case .cancelRequested, .cancelled: .cancel
        case .pending, .placed: .none
        }
    }
}
