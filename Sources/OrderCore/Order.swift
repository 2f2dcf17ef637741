import JSON
import RPC

/// Where an order is in its life, as clients see it (docs/orders.md, "Statuses"). The one place
/// these names are written; schemas, filters and the lifecycle all read them from here.
public enum OrderStatus: String, Sendable, CaseIterable, Codable {
    /// Accepted and charged; the provider has not booked it yet.
    case pending
    /// Booked at the provider: it has an AWB.
    case placed
    /// The provider refused it, or could not be reached for a whole retry window; refunded.
    case failed
    /// A cancel job is queued or running.
    case cancelRequested = "cancel_requested"
    /// Nothing live at the provider; refunded.
    case cancelled

    public static let schema = Schema.string(oneOf: allCases.map(\.rawValue))
    public var json: JSON { .string(rawValue) }
}

/// Whether the provider agrees with the order's status.
public enum ProviderSyncStatus: String, Sendable, CaseIterable, Codable {
    case pending, synced, failed

    public static let schema = Schema.string(oneOf: allCases.map(\.rawValue))
}

/// How far the acceptance of a new order got (internal, never shown to clients): `accepted`
/// (stored, the charge may or may not be taken), `enqueued` (charged, and the create job exists).
/// `charged` was written by releases before 2026-11; such orders are driven on like `accepted`
/// ones, except that the charge is not asked for again.
public enum OrderStage: String, Sendable, CaseIterable, Codable {
    case accepted, charged, enqueued
}

/// The provider's references for the last call about an order (request and response log ids).
public struct ProviderRefs: Sendable, Equatable, Codable {
    public var requestRefId: String?
    public var responseRefId: String?
    public init(requestRefId: String? = nil, responseRefId: String? = nil) {
        self.requestRefId = requestRefId
        self.responseRefId = responseRefId
    }
    public static let none = ProviderRefs()
}

/// One line of an order's status history.
public struct OrderHistoryEntry: Sendable, Equatable, Codable {
    public var status: OrderStatus
    public var at: String
    public var by: String
    public var note: String?
    public var providerMessage: String?

    public init(status: OrderStatus, at: String, by: String, note: String? = nil, providerMessage: String? = nil) {
        self.status = status
        self.at = at
        self.by = by
        self.note = note
        self.providerMessage = providerMessage
    }
}

/// The merchant's part of an order, as `orders.create` validated it (OrderSchemas.create).
public struct Consignee: Sendable, Equatable, Codable {
    public var name: String
    public var mobile: String
    public var phone: String?
    public var email: String?
    public var address1: String
    public var address2: String?
    public var city: String?
    public var state: String?
    public var pincode: String
}

public struct Payment: Sendable, Equatable, Codable {
    /// `prepaid` or `cod`.
    public var mode: String
    public var codAmountPaise: Int64?
    public var isCOD: Bool { mode == "cod" }
}

public struct Package: Sendable, Equatable, Codable {
    public var weightGrams: Int64
    public var lengthCm: Int64
    public var widthCm: Int64
    public var heightCm: Int64
}

public struct OrderItem: Sendable, Equatable, Codable {
    public var sku: String
    public var name: String
    public var quantity: Int64
    public var pricePaise: Int64
    public var hsn: String?
    public var taxPercent: Int64?
    public var category: String?
}

/// What a merchant asks for in `orders.create`, decoded from the validated params.
public struct OrderRequest: Sendable, Equatable, Codable {
    public var clientOrderId: String
    public var consignee: Consignee
    public var pickupAddressId: String
    public var payment: Payment
    public var package: Package
    public var items: [OrderItem]
    public var expressType: String?
}

/// An order as it is stored (collection `orders`). Its JSON form is the stored document: `_id`
/// and `id` carry the same id, and the provider fields are written as `null` until known.
public struct Order: Sendable, Equatable, Codable {
    public var id: String
    public var userId: String
    public var clientOrderId: String
    /// SHA-256 of the create params: a replay with other params is a 409.
    public var fingerprint: String
    public var stage: OrderStage
    public var status: OrderStatus
    public var providerSyncStatus: ProviderSyncStatus
    public var parcelxRequestRefId: String?
    public var parcelxResponseRefId: String?
    public var awbNumber: String?
    public var courierName: String?
    /// The provider's last refusal, when the order failed or a cancel was refused.
    public var providerMessage: String?
    public var chargePaise: Int64
    public var consignee: Consignee
    public var pickupAddressId: String
    public var payment: Payment
    public var package: Package
    public var items: [OrderItem]
    public var expressType: String
    public var history: [OrderHistoryEntry]
    /// The request that created the order (its jobs and logs carry it on).
    public var requestId: String
    public var createdAt: String
    public var updatedAt: String
    public var createdAtMs: Int64
    public var updatedAtMs: Int64
    /// The cancel job of the current cancel request exists.
    public var cancelEnqueued: Bool
    /// The status the current cancel request came from; a refused cancel goes back to it.
    public var cancelFrom: OrderStatus?
    /// Where the shipment is, from the latest tracking poll whose provider status is mapped
    /// (absent until the first one).
    public var trackingStatus: TrackingStatus?
    /// Every tracking change seen, oldest first (at most `OrderLifecycle.trackingMax`).
    public var tracking: [TrackingEntry] = []
    /// Webhook events owed to the merchant, oldest first (docs/webhooks.md): each is written by
    /// the update that makes its change, and taken off once stored as an event. Stored only while
    /// non-empty, with `webhookDue: true` (what the recovery pass looks for) and `webhookSeq`, the
    /// last one's seq (taking them off is conditional on it, so a newer one stays).
    public var webhookOutbox: [OwedWebhook] = []

    /// A new order in stage `accepted`, status `pending`.
    public init(id: String, userId: String, request r: OrderRequest, fingerprint: String, chargePaise: Int64,
                requestId: String, nowMs: Int64, nowISO: String) {
        self.id = id
        self.userId = userId
        self.clientOrderId = r.clientOrderId
        self.fingerprint = fingerprint
        self.stage = .accepted
        self.status = .pending
        self.providerSyncStatus = .pending
        self.chargePaise = chargePaise
        self.consignee = r.consignee
        self.pickupAddressId = r.pickupAddressId
        self.payment = Payment(mode: r.payment.mode, codAmountPaise: r.payment.isCOD ? r.payment.codAmountPaise ?? 0 : 0)
        self.package = r.package
        self.items = r.items
        self.expressType = r.expressType ?? "surface"
        self.history = [OrderHistoryEntry(status: .pending, at: nowISO, by: userId, note: "order accepted")]
        self.requestId = requestId
        self.createdAt = nowISO
        self.updatedAt = nowISO
        self.createdAtMs = nowMs
        self.updatedAtMs = nowMs
        self.cancelEnqueued = false
    }

    enum CodingKeys: String, CodingKey {
        case _id, id, userId, clientOrderId, fingerprint, stage, status, providerSyncStatus
        case parcelxRequestRefId, parcelxResponseRefId, awbNumber, courierName, providerMessage
        case chargePaise, consignee, pickupAddressId, payment, package, items, expressType, history
        case requestId, createdAt, updatedAt, createdAtMs, updatedAtMs, cancelEnqueued, cancelFrom
        case trackingStatus, tracking
        case webhookOutbox, webhookDue, webhookSeq
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: ._id) ?? c.decode(String.self, forKey: .id)
        userId = try c.decode(String.self, forKey: .userId)
        clientOrderId = try c.decode(String.self, forKey: .clientOrderId)
        fingerprint = try c.decodeIfPresent(String.self, forKey: .fingerprint) ?? ""
        stage = try c.decodeIfPresent(OrderStage.self, forKey: .stage) ?? .enqueued
        status = try c.decode(OrderStatus.self, forKey: .status)
        providerSyncStatus = try c.decodeIfPresent(ProviderSyncStatus.self, forKey: .providerSyncStatus) ?? .pending
        parcelxRequestRefId = try c.decodeIfPresent(String.self, forKey: .parcelxRequestRefId)
        parcelxResponseRefId = try c.decodeIfPresent(String.self, forKey: .parcelxResponseRefId)
        awbNumber = try c.decodeIfPresent(String.self, forKey: .awbNumber)
        courierName = try c.decodeIfPresent(String.self, forKey: .courierName)
        providerMessage = try c.decodeIfPresent(String.self, forKey: .providerMessage)
        chargePaise = try c.decode(Int64.self, forKey: .chargePaise)
        consignee = try c.decode(Consignee.self, forKey: .consignee)
        pickupAddressId = try c.decode(String.self, forKey: .pickupAddressId)
        payment = try c.decode(Payment.self, forKey: .payment)
        package = try c.decode(Package.self, forKey: .package)
        items = try c.decode([OrderItem].self, forKey: .items)
        expressType = try c.decodeIfPresent(String.self, forKey: .expressType) ?? "surface"
        history = try c.decodeIfPresent([OrderHistoryEntry].self, forKey: .history) ?? []
        requestId = try c.decodeIfPresent(String.self, forKey: .requestId) ?? ""
        createdAt = try c.decode(String.self, forKey: .createdAt)
        updatedAt = try c.decode(String.self, forKey: .updatedAt)
        createdAtMs = try c.decodeIfPresent(Int64.self, forKey: .createdAtMs) ?? 0
        updatedAtMs = try c.decodeIfPresent(Int64.self, forKey: .updatedAtMs) ?? 0
        cancelEnqueued = try c.decodeIfPresent(Bool.self, forKey: .cancelEnqueued) ?? false
        cancelFrom = try c.decodeIfPresent(OrderStatus.self, forKey: .cancelFrom)
        trackingStatus = try c.decodeIfPresent(TrackingStatus.self, forKey: .trackingStatus)
        tracking = try c.decodeIfPresent([TrackingEntry].self, forKey: .tracking) ?? []
        webhookOutbox = try c.decodeIfPresent([OwedWebhook].self, forKey: .webhookOutbox) ?? []
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: ._id)
        try c.encode(id, forKey: .id)
        try c.encode(userId, forKey: .userId)
        try c.encode(clientOrderId, forKey: .clientOrderId)
        try c.encode(fingerprint, forKey: .fingerprint)
        try c.encode(stage, forKey: .stage)
        try c.encode(status, forKey: .status)
        try c.encode(providerSyncStatus, forKey: .providerSyncStatus)
        // Written as null until known: clients see the keys from the start.
        try c.encode(parcelxRequestRefId, forKey: .parcelxRequestRefId)
        try c.encode(parcelxResponseRefId, forKey: .parcelxResponseRefId)
        try c.encode(awbNumber, forKey: .awbNumber)
        try c.encode(courierName, forKey: .courierName)
        try c.encodeIfPresent(providerMessage, forKey: .providerMessage)
        try c.encode(chargePaise, forKey: .chargePaise)
        try c.encode(consignee, forKey: .consignee)
        try c.encode(pickupAddressId, forKey: .pickupAddressId)
        try c.encode(payment, forKey: .payment)
        try c.encode(package, forKey: .package)
        try c.encode(items, forKey: .items)
        try c.encode(expressType, forKey: .expressType)
        try c.encode(history, forKey: .history)
        try c.encode(requestId, forKey: .requestId)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encode(createdAtMs, forKey: .createdAtMs)
        try c.encode(updatedAtMs, forKey: .updatedAtMs)
        try c.encode(cancelEnqueued, forKey: .cancelEnqueued)
        try c.encodeIfPresent(cancelFrom, forKey: .cancelFrom)
        // Absent until the first tracking poll: orders before it read as they always did.
        try c.encodeIfPresent(trackingStatus, forKey: .trackingStatus)
        if !tracking.isEmpty { try c.encode(tracking, forKey: .tracking) }
        if let last = webhookOutbox.last {
            try c.encode(webhookOutbox, forKey: .webhookOutbox)
            try c.encode(true, forKey: .webhookDue)
            try c.encode(last.seq, forKey: .webhookSeq)
        }
    }

    /// Field names of the owed webhook events (OrderService writes and clears them).
    static let webhookOutboxField = CodingKeys.webhookOutbox.rawValue
    static let webhookDueField = CodingKeys.webhookDue.rawValue
    static let webhookSeqField = CodingKeys.webhookSeq.rawValue

    /// The stored document.
    public var json: JSON {
        // Every field is a string, an integer, a Bool or an array/object of those: encoding cannot fail.
        (try? JSON(encoding: self)) ?? .null
    }

    /// Reads a stored document.
    public init(json: JSON) throws { self = try JSONValueDecoder.decode(Order.self, from: json) }

    /// What changed from `old`, as a store update: `set` for the fields that differ, `unset` for
    /// the optional ones that went away, and the history lines added. Only the fields
    /// OrderLifecycle moves are compared (the merchant's part and the creation facts never change
    /// after the insert; the owed webhook events are OrderService's); OrderLifecycleTests checks
    /// that this is the same as a diff of the two stored documents for every transition of the table.
    public func changes(from old: Order) -> (set: [String: JSON], unset: [String], appended: [OrderHistoryEntry]) {
        var set: [String: JSON] = [:]
        var unset: [String] = []
        func text(_ key: CodingKeys, _ a: String?, _ b: String?, nullable: Bool) {
            guard a != b else { return }
            if let b { set[key.rawValue] = .string(b) } else if nullable { set[key.rawValue] = .null } else { unset.append(key.rawValue) }
        }
        text(.stage, old.stage.rawValue, stage.rawValue, nullable: false)
        text(.status, old.status.rawValue, status.rawValue, nullable: false)
        text(.providerSyncStatus, old.providerSyncStatus.rawValue, providerSyncStatus.rawValue, nullable: false)
        text(.parcelxRequestRefId, old.parcelxRequestRefId, parcelxRequestRefId, nullable: true)
        text(.parcelxResponseRefId, old.parcelxResponseRefId, parcelxResponseRefId, nullable: true)
        text(.awbNumber, old.awbNumber, awbNumber, nullable: true)
        text(.courierName, old.courierName, courierName, nullable: true)
        text(.providerMessage, old.providerMessage, providerMessage, nullable: false)
        text(.cancelFrom, old.cancelFrom?.rawValue, cancelFrom?.rawValue, nullable: false)
        if old.cancelEnqueued != cancelEnqueued { set[CodingKeys.cancelEnqueued.rawValue] = .bool(cancelEnqueued) }
        text(.trackingStatus, old.trackingStatus?.rawValue, trackingStatus?.rawValue, nullable: false)
        if old.tracking != tracking {
            // Written whole: one tracking poll chain per order writes it, one change at a time.
            if tracking.isEmpty { unset.append(CodingKeys.tracking.rawValue) } else { set[CodingKeys.tracking.rawValue] = (try? JSON(encoding: tracking)) ?? .array([]) }
        }
        var appended: [OrderHistoryEntry] = []
        if history.count >= old.history.count && Array(history.prefix(old.history.count)) == old.history {
            appended = Array(history.dropFirst(old.history.count))
        } else {
            set[CodingKeys.history.rawValue] = (try? JSON(encoding: history)) ?? .array([])
        }
        return (set, unset, appended)
    }

    /// `doc`, the stored form of `old`, brought to this order by applying `changes(from: old)` and
    /// the update time: the same as `json`, without encoding the whole order again.
    public func document(updating doc: JSON, from old: Order) -> JSON {
        guard var o = doc.objectValue else { return json }
        let c = changes(from: old)
        for (k, v) in c.set { o[k] = v }
        for k in c.unset { o[k] = nil }
        if !c.appended.isEmpty {
            o[CodingKeys.history.rawValue] = .array((o[CodingKeys.history.rawValue]?.arrayValue ?? []) + c.appended.compactMap { try? JSON(encoding: $0) })
        }
        o[CodingKeys.updatedAt.rawValue] = .string(updatedAt)
        o[CodingKeys.updatedAtMs.rawValue] = .int(updatedAtMs)
        return .object(o)
    }

    /// The fields clients never see: internal bookkeeping.
    public static let internalFields: Set<String> = ["_id", "fingerprint", "stage", "cancelEnqueued", "cancelFrom", "createdAtMs", "updatedAtMs", "requestId",
                                                     webhookOutboxField, webhookDueField, webhookSeqField]

    /// What clients see of an order.
    public var publicJSON: JSON { Order.publicView(json) }

    /// A stored document without the internal fields.
    public static func publicView(_ doc: JSON) -> JSON {
        guard var x = doc.objectValue else { return doc }
        for k in internalFields { x[k] = nil }
        return .object(x)
    }
}
