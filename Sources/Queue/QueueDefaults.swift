import JSON
import Runtime

/// The queue settings every producer and worker of this system starts from: the one place they live.
public struct QueueDefaults: Sendable, Equatable {
    public var attempts: Int
    public var backoff: Backoff
    public var removeOnComplete: KeepJobs
    public var removeOnFail: KeepJobs

    public init(attempts: Int = 5, backoff: Backoff = .exponential(delayMs: 1000),
                removeOnComplete: KeepJobs = .count(1000), removeOnFail: KeepJobs = .count(5000)) {
        self.attempts = attempts
        self.backoff = backoff
        self.removeOnComplete = removeOnComplete
        self.removeOnFail = removeOnFail
    }

    /// attempts 5, exponential backoff from 1 s, keep the last 1000 completed and 5000 failed jobs.
    public static let standard = QueueDefaults()

    /// The clean-up job of a failed order (docs/queues.md) keeps asking the provider for longer
    /// than a create: 12 attempts, exponential backoff from 5 s (about 2.8 hours in all).
    public static let providerCleanup = QueueDefaults(attempts: 12, backoff: .exponential(delayMs: 5000))

    /// A tracking poll (docs/queues.md): 3 attempts, exponential backoff from 5 s; a poll that
    /// still fails adds the next poll anyway, so one bad hour never ends a shipment's tracking.
    public static let tracking = QueueDefaults(attempts: 3, backoff: .exponential(delayMs: 5000))
}

/// How long to wait before the next attempt of a failed job.
public enum Backoff: Sendable, Equatable {
    case fixed(delayMs: Int)
    /// `delay · 2^(n−1)` before attempt n+1, as BullMQ computes it.
    case exponential(delayMs: Int)

    /// The delay after `attemptsMade` finished attempts (1 after the first failure).
    public func delayMs(afterAttempts attemptsMade: Int) -> Int {
        switch self {
        case .fixed(let d): return max(d, 0)
        case .exponential(let d):
            let n = max(attemptsMade, 1)
            let v = (Double(d) * pow2(n - 1)).rounded()
            return v >= Double(Int32.max) ? Int(Int32.max) : max(Int(v), 0)
        }
    }

    private func pow2(_ e: Int) -> Double { e >= 62 ? Double.greatestFiniteMagnitude : Double(UInt64(1) << UInt64(e)) }

    /// The `opts.backoff` value as BullMQ stores it.
    public var json: JSON {
        switch self {
        case .fixed(let d): return ["type": "fixed", "delay": JSON(d)]
        case .exponential(let d): return ["type": "exponential", "delay": JSON(d)]
        }
    }

    /// Reads `opts.backoff`: an integer means fixed; unknown types give nil (no delay).
    public init?(json: JSON?) {
        guard let json else { return nil }
        if let n = json.intValue { self = .fixed(delayMs: Int(n)); return }
        guard let t = json["type"]?.stringValue else { return nil }
        let d = Int(json["delay"]?.intValue ?? 0)
        switch t {
        case "fixed": self = .fixed(delayMs: d)
        case "exponential": self = .exponential(delayMs: d)
        default: return nil
        }
    }
}

/// Retention of finished jobs (`removeOnComplete` / `removeOnFail`).
public struct KeepJobs: Sendable, Equatable {
    /// Keep at most this many (newest); 0 removes at once, nil or −1 keeps all.
    public var count: Int?
    /// Remove jobs finished more than this many seconds ago.
    public var ageSeconds: Int?
    /// Most jobs removed by age per finish (BullMQ's default is 1000).
    public var limit: Int?

    public init(count: Int? = nil, ageSeconds: Int? = nil, limit: Int? = nil) {
        self.count = count
        self.ageSeconds = ageSeconds
        self.limit = limit
    }

    public static func count(_ n: Int) -> KeepJobs { KeepJobs(count: n) }
    public static func age(seconds: Int, count: Int? = nil) -> KeepJobs { KeepJobs(count: count, ageSeconds: seconds) }
    public static let all = KeepJobs(count: -1)
    public static let removeImmediately = KeepJobs(count: 0)

    /// The option value as BullMQ writes it: `true`, `false`, an integer, or `{age, count, limit}`.
    public var json: JSON {
        if ageSeconds == nil && limit == nil {
            guard let n = count, n >= 0 else { return false }
            return n == 0 ? true : JSON(n)
        }
        var o: [String: JSON] = [:]
        if let a = ageSeconds { o["age"] = JSON(a) }
        if let c = count, c >= 0 { o["count"] = JSON(c) }
        if let l = limit { o["limit"] = JSON(l) }
        return .object(o)
    }

    public init?(json: JSON?) {
        guard let json, !json.isNull else { return nil }
        if let b = json.boolValue { self = b ? .removeImmediately : .all; return }
        if let n = json.intValue { self = .count(Int(n)); return }
        guard case .object(let o) = json else { return nil }
        self.init(count: o["count"]?.intValue.map { Int($0) }, ageSeconds: o["age"]?.intValue.map { Int($0) },
                  limit: o["limit"]?.intValue.map { Int($0) })
    }

    /// The count passed to the finish script: −1 keeps everything.
    var scriptCount: Int { count ?? -1 }
}

/// Per-job options; anything left nil takes the queue's `QueueDefaults`.
public struct JobOptions: Sendable, Equatable {
    /// A custom id: adding a job whose id exists already is a no-op that returns that id.
    public var jobId: String?
    public var attempts: Int?
    public var backoff: Backoff?
    public var delayMs: Int?
    /// 1 (highest) … 2 097 152; nil or 0 means not prioritized.
    public var priority: Int?
    /// Run next instead of after the jobs already waiting.
    public var lifo: Bool
    public var removeOnComplete: KeepJobs?
    public var removeOnFail: KeepJobs?
    /// Cap on stored stack traces (one per failed attempt).
    public var stackTraceLimit: Int?
    /// Cap on the job's log lines.
    public var keepLogs: Int?
    /// Creation time in ms; defaults to now.
    public var timestamp: Int64?

    public init(jobId: String? = nil, attempts: Int? = nil, backoff: Backoff? = nil, delayMs: Int? = nil, priority: Int? = nil,
                lifo: Bool = false, removeOnComplete: KeepJobs? = nil, removeOnFail: KeepJobs? = nil,
                stackTraceLimit: Int? = nil, keepLogs: Int? = nil, timestamp: Int64? = nil) {
        self.jobId = jobId
        self.attempts = attempts
        self.backoff = backoff
        self.delayMs = delayMs
        self.priority = priority
        self.lifo = lifo
        self.removeOnComplete = removeOnComplete
        self.removeOnFail = removeOnFail
        self.stackTraceLimit = stackTraceLimit
        self.keepLogs = keepLogs
        self.timestamp = timestamp
    }

    /// The `opts` object stored in the job hash, with defaults filled in, in BullMQ's key names.
    public func json(defaults: QueueDefaults) -> JSON {
        var o: [String: JSON] = [
            "attempts": JSON(attempts ?? defaults.attempts),
            "delay": JSON(max(delayMs ?? 0, 0)),
            "backoff": (backoff ?? defaults.backoff).json,
            "removeOnComplete": (removeOnComplete ?? defaults.removeOnComplete).json,
            "removeOnFail": (removeOnFail ?? defaults.removeOnFail).json,
        ]
        if let p = priority, p > 0 { o["priority"] = JSON(p) }
        if lifo { o["lifo"] = true }
        if let id = jobId { o["jobId"] = .string(id) }
        if let s = stackTraceLimit { o["stackTraceLimit"] = JSON(s) }
        if let k = keepLogs { o["kl"] = JSON(k) }
        if let t = timestamp { o["timestamp"] = .int(t) }
        return .object(o)
    }
}

/// Thrown by a processor to fail the job at once, skipping any attempts left.
public struct UnrecoverableError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A misuse of the queue API (bad job id, bad priority) or an unexpected script answer.
public struct QueueError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, so that callers can answer with the right status.
    public enum Kind: Sendable, Equatable {
        /// The request itself is wrong (an id, an option, the job's state for this action).
        case invalid
        /// A worker holds the job (its lock exists), so it cannot be removed now.
        case jobActive
        /// The job is the pending run of a job scheduler.
        case schedulerJob
        case notFound
        /// Redis answered something no script here returns.
        case unexpected
    }

    public let kind: Kind
    /// The script's return code, when there was one.
    public let code: Int
    public let message: String
    public init(_ message: String, kind: Kind = .invalid, code: Int = 0) {
        self.message = message
        self.kind = kind
        self.code = code
    }
    public var description: String { message }
}

/// What a caller sees of a queue's refusal: a job a worker holds or a scheduler's pending run is
/// a conflict, an unknown job is not found, a wrong request is invalid params, and a reply no
/// script gives is a fault (500).
extension QueueError: RPCErrorConvertible {
    public var errorCode: ErrorCode {
        switch kind {
        case .jobActive, .schedulerJob: return .conflict
        case .notFound: return .notFound
        case .invalid: return .invalidParams
        case .unexpected: return .internalError
        }
    }
    public var publicMessage: String { kind == .unexpected ? ErrorCode.internalError.title : message }
    public var publicReason: String? {
        switch kind {
        case .jobActive: return "job_active"
        case .schedulerJob: return "scheduler_job"
        default: return nil
        }
    }
}
