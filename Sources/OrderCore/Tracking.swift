import RPC

/// Where a booked shipment is, in OOPS's own words (docs/orders.md, "Tracking"). The provider's
/// statuses are mapped onto these by one table in ParcelXCore (`ParcelXTrackingMap`); a provider
/// status that table does not know is kept raw on the tracking entry and never guessed.
public enum TrackingStatus: String, Sendable, CaseIterable, Codable {
    /// Booked, not yet collected (the provider's pending, booked, manifested, pickup stages).
    case placed
    case pickedUp = "picked_up"
    case inTransit = "in_transit"
    case outForDelivery = "out_for_delivery"
    case delivered
    /// A delivery attempt failed (NDR: non-delivery report); another attempt or a return follows.
    case deliveryFailed = "delivery_failed"
    /// Going back to the pickup address (RTO: return to origin).
    case rtoInTransit = "rto_in_transit"
    case rtoDelivered = "rto_delivered"
    case lost
    /// The provider reports the shipment cancelled.
    case cancelled

    /// Nothing more will happen to the shipment: polling stops.
    public var isFinal: Bool {
        switch self {
        case .delivered, .rtoDelivered, .lost, .cancelled: true
        default: false
        }
    }

    public static let schema = Schema.string(oneOf: allCases.map(\.rawValue))
}

/// One tracking change of an order, as OrderSvc recorded it: the mapped status (nil when the
/// provider's status is not in the table), the provider's own code and title, and when.
public struct TrackingEntry: Sendable, Equatable, Codable {
    public var status: TrackingStatus?
    public var providerCode: Int
    public var providerTitle: String
    /// When OrderSvc recorded it.
    public var at: String
    /// The provider's event time, location and remark, as the provider wrote them.
    public var eventAt: String?
    public var location: String?
    public var remark: String?

    public init(status: TrackingStatus?, providerCode: Int, providerTitle: String, at: String, eventAt: String? = nil,
                location: String? = nil, remark: String? = nil) {
        self.status = status
        self.providerCode = providerCode
        self.providerTitle = providerTitle
        self.at = at
        self.eventAt = eventAt
        self.location = location
        self.remark = remark
    }
}

/// What a tracking poll saw at the provider (`orders.provider.tracked`).
public struct TrackingUpdate: Sendable, Equatable {
    public var status: TrackingStatus?
    public var providerCode: Int
    public var providerTitle: String
    public var eventAt: String?
    public var location: String?
    public var remark: String?

    public init(status: TrackingStatus?, providerCode: Int, providerTitle: String, eventAt: String? = nil, location: String? = nil,
                remark: String? = nil) {
        self.status = status
        self.providerCode = providerCode
        self.providerTitle = providerTitle
        self.eventAt = eventAt
        self.location = location
        self.remark = remark
    }
}
