import OrderCore
import ParcelXAPI

/// The one table from the provider's shipment statuses to OOPS's tracking statuses
/// (docs/orders.md, "Tracking"). A code that is not here maps to nil: the poll keeps the
/// provider's code and title raw on the tracking entry and logs it, and the order's tracking
/// status stays where it was.
enum ParcelXTrackingMap {
    static let table: [Int: TrackingStatus] = [
        ParcelXStatusCode.pending.rawValue: .placed,
        ParcelXStatusCode.booked.rawValue: .placed,
        ParcelXStatusCode.manifested.rawValue: .placed,
        ParcelXStatusCode.pickupPending.rawValue: .placed,
        ParcelXStatusCode.outForPickup.rawValue: .placed,
        ParcelXStatusCode.pickedUp.rawValue: .pickedUp,
        ParcelXStatusCode.inTransit.rawValue: .inTransit,
        ParcelXStatusCode.delivered.rawValue: .delivered,
        ParcelXStatusCode.cancelled.rawValue: .cancelled,
        // 225 "RTO" is the return being started; 235 and 236 are stages of the way back.
        ParcelXStatusCode.returnToOrigin.rawValue: .rtoInTransit,
        ParcelXStatusCode.rtoInTransit.rawValue: .rtoInTransit,
        ParcelXStatusCode.rtoPending.rawValue: .rtoInTransit,
        ParcelXStatusCode.rtoOutForDelivery.rawValue: .rtoInTransit,
        // 224 "RTS" is left out on purpose: it is read both as "ready to ship" and as "return
        // to shipper", and the public record does not say which.
        // The sandbox's own codes for the states the public record names no code for.
        ParcelXStatusCode.sandboxOutForDelivery.rawValue: .outForDelivery,
        ParcelXStatusCode.sandboxUndelivered.rawValue: .deliveryFailed,
        ParcelXStatusCode.sandboxRTODelivered.rawValue: .rtoDelivered,
        ParcelXStatusCode.sandboxLost.rawValue: .lost,
    ]

    static func status(forProviderCode code: Int) -> TrackingStatus? { table[code] }
}
