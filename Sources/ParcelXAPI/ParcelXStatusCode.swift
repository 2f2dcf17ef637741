/// The provider's shipment status codes, as seen in tracking answers.
public enum ParcelXStatusCode: Int, Codable, Sendable, CaseIterable {
    case pending = 220
    case booked = 221
    case manifested = 222
    case inTransit = 223
    case readyToShip = 224
    case returnToOrigin = 225
    case delivered = 226
    case cancelled = 227
    case pickedUp = 230
    case pickupPending = 232
    case rtoInTransit = 234
    case rtoPending = 235
    case rtoOutForDelivery = 236
    case outForPickup = 238

    // The public record names no code for these states. These are the sandbox's own, far from
    // the provider's 2xx range, so the sandbox can walk every tracking path; a real answer with
    // an unlisted code is kept raw and logged by the tracking poll, never guessed.
    case sandboxOutForDelivery = 901
    case sandboxUndelivered = 902
    case sandboxRTODelivered = 903
    case sandboxLost = 904

    /// The provider's title for the code.
    public var title: String {
        switch self {
        case .pending: "Pending"
        case .booked: "Booked"
        case .manifested: "Manifested"
        case .inTransit: "In Transit"
        case .readyToShip: "RTS"
        case .returnToOrigin: "RTO"
        case .delivered: "Delivered To Consignee"
        case .cancelled: "Cancelled"
        case .pickedUp: "Picked Up"
        case .pickupPending: "Pickup Pending"
        case .rtoInTransit: "RTO In Transit"
        case .rtoPending: "RTO Pending"
        case .rtoOutForDelivery: "RTO - OFD"
        case .outForPickup: "Out For Pickup"
        case .sandboxOutForDelivery: "Out For Delivery"
        case .sandboxUndelivered: "Undelivered"
        case .sandboxRTODelivered: "RTO Delivered"
        case .sandboxLost: "Lost"
        }
    }

    /// A shipment the provider still holds live: booked and not cancelled.
    public var isLive: Bool { self != .cancelled }

    /// Cancellation is only possible before the courier has the parcel.
    public var isCancellable: Bool {
        switch self {
        case .pending, .booked, .manifested, .pickupPending, .outForPickup: true
        default: false
        }
    }
}
