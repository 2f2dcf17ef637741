import JSON
import Queue
import Domain

/// A job for the provider workers (docs/queues.md): which queue, its name, its id, its data and
/// its options. The one place job ids and payloads are made; the id is what makes adding a job
/// idempotent (adding an id that exists is a no-op), so each kind of job has its own id rule.
public struct ProviderJob: Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The order's first create job.
        case create
        /// A create job after a refused cancel sent a never-booked order back to `pending`.
        case createAfterCancel
        /// The cancel job of a cancel request.
        case cancel
        /// A shipment booked after its order was cancelled: cancel it at the provider.
        case lateCancel
        /// A failed order whose provider calls were uncertain: cancel any shipment found.
        case cleanup
        /// One tracking poll of a booked shipment; each poll adds the next, delayed.
        case track
    }

    public let kind: Kind
    public let queue: String
    public let name: String
    public let id: String
    public let orderId: String
    public let requestId: String
    public let options: JobOptions

    /// The tracking poll's number (1 for the first), for a track job.
    public let poll: Int?

    /// The job data: `{orderId, requestId}`, `cleanup: true` for a clean-up job, `poll` for a track job.
    public var data: JSON {
        var d: [String: JSON] = ["orderId": .string(orderId), "requestId": .string(requestId)]
        if kind == .cleanup { d["cleanup"] = true }
        if let poll { d["poll"] = .int(Int64(poll)) }
        return .object(d)
    }
    public var dataJSON: String { data.serialized() }

    init(_ kind: Kind, orderId: String, requestId: String, id: String, settings: QueueDefaults? = nil, poll: Int? = nil, delayMs: Int? = nil) {
        self.kind = kind
        self.orderId = orderId
        self.requestId = requestId
        self.id = id
        self.poll = poll
        switch kind {
        case .create, .createAfterCancel:
            queue = QueueNames.orders
            name = QueueNames.createJob
        case .cancel, .lateCancel, .cleanup:
            queue = QueueNames.cancellations
            name = QueueNames.cancelJob
        case .track:
            queue = QueueNames.tracking
            name = QueueNames.trackJob
        }
        // Anything left nil takes the queue's defaults (QueueDefaults.standard).
        options = JobOptions(jobId: id, attempts: settings?.attempts, backoff: settings?.backoff, delayMs: delayMs)
    }

    /// The job an order waits on, with the id it was added under: the create job of a pending
    /// order (the one after the last refused cancel, if any), the cancel job of the current cancel
    /// request; nil for an order that waits on no job.
    public static func awaited(by o: Order, requestId: String) -> ProviderJob? {
        switch o.status {
        case .pending:
            // A refused cancel that sent the order back to pending appended that history line at
            // index n, the history length `createAfterCancel` was given.
            if let n = o.history.lastIndex(where: { $0.status == .pending }), n > 0 {
                return .createAfterCancel(orderId: o.id, requestId: requestId, historyCount: n)
            }
            return .create(orderId: o.id, requestId: requestId)
        case .cancelRequested:
            guard o.cancelEnqueued else { return nil }
            return .cancel(orderId: o.id, requestId: requestId, request: max(1, o.history.filter { $0.status == .cancelRequested }.count))
        case .placed, .failed, .cancelled:
            return nil
        }
    }

    /// `create-<orderId>`.
    public static func create(orderId: String, requestId: String) -> ProviderJob {
        ProviderJob(.create, orderId: orderId, requestId: requestId, id: "create-\(orderId)")
    }

    /// `create-<orderId>-after-cancel-<n>`, n the length of the history before the refusal.
    public static func createAfterCancel(orderId: String, requestId: String, historyCount: Int) -> ProviderJob {
        ProviderJob(.createAfterCancel, orderId: orderId, requestId: requestId, id: "create-\(orderId)-after-cancel-\(historyCount)")
    }

    /// `cancel-<orderId>-<n>` for the n-th cancel request: a cancel after a refused one is a new job.
    public static func cancel(orderId: String, requestId: String, request n: Int) -> ProviderJob {
        ProviderJob(.cancel, orderId: orderId, requestId: requestId, id: "cancel-\(orderId)-\(n)")
    }

    /// `cancel-<orderId>-late-<awb>`.
    public static func lateCancel(orderId: String, requestId: String, awb: String) -> ProviderJob {
        ProviderJob(.lateCancel, orderId: orderId, requestId: requestId, id: "cancel-\(orderId)-late-\(awb)")
    }

    /// `track-<orderId>-<n>`, the n-th tracking poll, due after `delayMs` (QueueDefaults.tracking).
    public static func track(orderId: String, requestId: String, poll n: Int, delayMs: Int) -> ProviderJob {
        ProviderJob(.track, orderId: orderId, requestId: requestId, id: "track-\(orderId)-\(n)", settings: .tracking, poll: n, delayMs: delayMs)
    }

    /// `cancel-<orderId>-cleanup`, with the longer retry window of `QueueDefaults.providerCleanup`.
    public static func cleanup(orderId: String, requestId: String) -> ProviderJob {
        ProviderJob(.cleanup, orderId: orderId, requestId: requestId, id: "cancel-\(orderId)-cleanup", settings: .providerCleanup)
    }
}
