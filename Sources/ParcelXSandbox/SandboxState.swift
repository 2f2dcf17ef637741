import ParcelXAPI
import Runtime

/// A shipment the sandbox holds, as the provider would.
struct SandboxShipment: Sendable {
    var request: ParcelXCreateOrderRequest
    var awb: String
    var orderNumber: String
    var pickupId: String
    var courierCode: String
    var courierName: String
    /// The current status: a code of the path, or any code set through `/__sandbox/advance`.
    var status: ParcelXTrackStatus
    var createdAtMs: Int64
    var cancelledAtMs: Int64?
    var events: [ParcelXTrackEvent]
    /// The tracking path the shipment walks, and how far along it is.
    var path: SandboxPath = .delivered
    var step = 0
    /// When it last moved (the clock moves it one step every `trackStepMs` after this).
    var movedAtMs: Int64 = 0

    /// Moves one step along its path, if it can (not cancelled, not at the end, not set off its path).
    mutating func advance(nowMs: Int64, eventDate: String) -> Bool {
        let codes = path.codes
        guard status.code != .cancelled, step + 1 < codes.count, status.statusCode == codes[step].rawValue else { return false }
        step += 1
        set(ParcelXTrackStatus(codes[step]), nowMs: nowMs, eventDate: eventDate, remark: "sandbox: \(path.rawValue) path")
        return true
    }

    mutating func set(_ s: ParcelXTrackStatus, nowMs: Int64, eventDate: String, remark: String) {
        status = s
        movedAtMs = nowMs
        events.append(ParcelXTrackEvent(statusTitle: s.statusTitle, eventDate: eventDate, statusLocation: "Sandbox Hub", remark: remark))
    }
}

/// The tracking paths a sandbox shipment can walk, chosen by a marker in the consignee's name
/// (`[sandbox:ndr]`, `[sandbox:rto]`, `[sandbox:lost]`; delivered otherwise) or by `/__sandbox/advance`.
enum SandboxPath: String, Sendable, CaseIterable {
    case delivered, ndr, rto, lost

    var codes: [ParcelXStatusCode] {
        switch self {
        case .delivered: [.booked, .pickedUp, .inTransit, .sandboxOutForDelivery, .delivered]
        case .ndr: [.booked, .pickedUp, .inTransit, .sandboxOutForDelivery, .sandboxUndelivered, .sandboxOutForDelivery, .delivered]
        case .rto: [.booked, .pickedUp, .inTransit, .sandboxOutForDelivery, .sandboxUndelivered, .returnToOrigin, .rtoInTransit, .sandboxRTODelivered]
        case .lost: [.booked, .pickedUp, .inTransit, .sandboxLost]
        }
    }

    static func marked(in name: String) -> SandboxPath {
        allCases.first { $0 != .delivered && name.contains("[sandbox:\($0.rawValue)]") } ?? .delivered
    }
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
    /// Every this many ms each shipment moves one step along its tracking path; 0: only on demand.
    var trackStepMs = 0
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

    /// Moves shipment `i` as far as the clock says it has gone since it last moved (done when
    /// it is read, so an idle sandbox does no work).
    mutating func catchUp(_ i: Int, nowMs: Int64, eventDate: (Int64) -> String) {
        let stepMs = Int64(config.trackStepMs)
        guard stepMs > 0 else { return }
        while shipments[i].movedAtMs + stepMs <= nowMs {
            let at = shipments[i].movedAtMs + stepMs
            guard shipments[i].advance(nowMs: at, eventDate: eventDate(at)) else { break }
        }
    }

    /// Shipment `i` brought up to the clock.
    mutating func current(_ i: Int) -> SandboxShipment {
        catchUp(i, nowMs: Clock.wallMillis(), eventDate: Sandbox.eventDate)
        return shipments[i]
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
