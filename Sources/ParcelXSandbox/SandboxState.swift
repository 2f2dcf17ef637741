import ParcelXAPI

/// A shipment the sandbox holds, as the provider would.
struct SandboxShipment: Sendable {
    var request: ParcelXCreateOrderRequest
    var awb: String
    var orderNumber: String
    var pickupId: String
    var courierCode: String
    var courierName: String
    var status: ParcelXStatusCode
    var createdAtMs: Int64
    var cancelledAtMs: Int64?
    var events: [ParcelXTrackEvent]
}

/// Knobs for load runs, set over `POST /__sandbox/config`.
struct SandboxConfig: Sendable, Equatable {
    /// Added to every provider call before it is served.
    var latencyMs: Int
    /// Probability (0...1) that a provider call answers HTTP 500 instead.
    var failureRate: Double
    /// How long a `[sandbox:timeout]` create waits before answering.
    var timeoutMs: Int
    /// The next this many provider calls answer 429 with `Retry-After: retryAfterS` (counts down).
    var throttleCalls = 0
    var retryAfterS = 1
}

/// Call counts for one endpoint.
struct EndpointStats: Sendable {
    var calls = 0
    var outcomes: [String: Int] = [:]
}

/// Everything the sandbox remembers; guarded by one lock.
struct SandboxState: Sendable {
    var config: SandboxConfig
    var shipments: [SandboxShipment] = []
    var byClientOrderId: [String: Int] = [:]
    var byAWB: [String: Int] = [:]
    var warehouses: [ParcelXWarehouse] = []
    var nextWarehouseId = 4_257_544
    var nextOrderNumber = 12_513_560
    /// Create attempts per client_order_id, for `[sandbox:flaky2]`.
    var flakyAttempts: [String: Int] = [:]
    var stats: [String: EndpointStats] = [:]

    init(config: SandboxConfig) { self.config = config }

    mutating func record(_ endpoint: String, _ outcome: String) {
        stats[endpoint, default: EndpointStats()].calls += 1
        stats[endpoint, default: EndpointStats()].outcomes[outcome, default: 0] += 1
    }

    /// A fresh 14-digit numeric AWB, unique in this sandbox.
    mutating func newAWB() -> String {
        while true {
            var s = String(Int.random(in: 1...9))
            for _ in 0..<13 { s += String(Int.random(in: 0...9)) }
            if byAWB[s] == nil { return s }
        }
    }
}
