/// Socket names of the services: instance n of service s listens on `<run dir>/<s>-<n>.sock`.
public enum ServiceName {
    public static let auth = "auth"
    public static let wallet = "wallet"
    public static let order = "order"
    public static let parcelx = "parcelx"
    public static let all = [auth, wallet, order, parcelx]
}

/// The provider queues and their job names (BullMQ layout, prefix `bull`).
public enum QueueNames {
    public static let prefix = "bull"
    public static let orders = "parcelx-orders-queue"
    public static let cancellations = "parcelx-order-cancellation-queue"
    public static let createJob = "create-order"
    public static let cancelJob = "cancel-order"
    /// Shipment tracking polls: one chain of delayed jobs per booked order (docs/queues.md).
    public static let tracking = "parcelx-tracking-queue"
    public static let trackJob = "track-shipment"
    public static let all = [orders, cancellations, tracking]
}
