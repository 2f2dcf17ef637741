import JSON
import Redis

/// The Redis connection and key base a job was read through, so a processor can log and report
/// progress on it.
final class JobContext: Sendable {
    let client: RedisClient
    let base: String
    init(client: RedisClient, base: String) { self.client = client; self.base = base }
}

/// The states a job can be in, named as BullMQ and Bull Board name them.
public enum JobState: String, Sendable, CaseIterable {
    case waiting, active, delayed, prioritized, completed, failed
    case waitingChildren = "waiting-children"
    case paused
    case unknown

    /// Every state a job can be listed in (all but `unknown`).
    public static let listable: [JobState] = allCases.filter { $0 != .unknown }
    /// The states the dashboard shows, in its order.
    public static let shown: [JobState] = [.waiting, .active, .delayed, .prioritized, .completed, .failed, .paused]
    /// The states `clean` may empty: not `active` (a worker holds those jobs).
    public static let cleanable: [JobState] = [.completed, .failed, .delayed, .waiting, .prioritized, .paused]
}

/// One job as stored in its Redis hash: what a processor receives and what the dashboard shows.
public struct Job: Sendable {
    public let id: String
    public let name: String
    /// The payload as JSON text, exactly as the producer wrote it.
    public let dataJSON: String
    public let opts: JSON
    public let attemptsMade: Int
    public let attemptsStarted: Int
    public let stalledCounter: Int
    public let timestamp: Int64
    public let delay: Int64
    public let priority: Int
    public let processedOn: Int64?
    public let finishedOn: Int64?
    public let returnValueJSON: String?
    public let failedReason: String?
    public let stacktrace: [String]
    public let progressJSON: String
    public let processedBy: String?
    /// A failure decided while the job was not running (stalled too often): the worker fails it.
    public let deferredFailure: String?
    public var logs: [String]
    /// Filled by the administration getters; nil for jobs handed to a processor.
    public var state: JobState?
    /// Every hash field as stored.
    public let fields: [String: String]
    let context: JobContext?

    init(id: String, fields f: [String: String], context: JobContext?, logs: [String] = [], state: JobState? = nil) {
        self.id = id
        fields = f
        self.context = context
        self.logs = logs
        self.state = state
        name = f["name"] ?? ""
        dataJSON = f["data"] ?? "{}"
        opts = (try? JSONParser.parse(f["opts"] ?? "{}")) ?? .object([:])
        // A legacy `attemptsMade` field wins over `atm`, as both BullMQ readers do.
        attemptsMade = Int(f["attemptsMade"] ?? f["atm"] ?? "0") ?? 0
        attemptsStarted = Int(f["ats"] ?? "0") ?? 0
        stalledCounter = Int(f["stc"] ?? "0") ?? 0
        timestamp = Int64(f["timestamp"] ?? "0") ?? 0
        delay = Int64(f["delay"] ?? "0") ?? 0
        priority = Int(f["priority"] ?? "0") ?? 0
        processedOn = f["processedOn"].flatMap { Int64($0) }
        finishedOn = f["finishedOn"].flatMap { Int64($0) }
        returnValueJSON = f["returnvalue"]
        failedReason = f["failedReason"]
        let st = (try? JSONParser.parse(f["stacktrace"] ?? "[]"))?.arrayValue ?? []
        stacktrace = st.compactMap { $0.stringValue }
        progressJSON = f["progress"] ?? "0"
        processedBy = f["pb"]
        deferredFailure = f["defa"]
    }

    /// The payload parsed (`null` when it is not valid JSON).
    public var data: JSON { (try? JSONParser.parse(dataJSON)) ?? .null }
    public var progress: JSON { (try? JSONParser.parse(progressJSON)) ?? .null }
    public var returnValue: JSON? { returnValueJSON.map { (try? JSONParser.parse($0)) ?? .string($0) } }

    /// Total tries allowed; BullMQ treats 0 or a missing value as one try.
    public var maxAttempts: Int { max(Int(opts["attempts"]?.intValue ?? 0), 1) }
    public var backoff: Backoff? { Backoff(json: opts["backoff"]) }

    /// Appends a line to the job's log (`<job>:logs`), honouring `opts.keepLogs`.
    @discardableResult
    public func log(_ line: String) throws -> Int {
        guard let ctx = context else { throw QueueError("job \(id) is detached from its queue") }
        let keep = opts["kl"]?.intValue ?? opts["keepLogs"]?.intValue ?? 0
        let r = try ctx.client.eval(QueueScripts.addLog, args: [ctx.base, id, line, String(keep)])
        let n = Int(r.intValue ?? -1)
        if n < 0 { throw QueueError("job \(id) does not exist", kind: .notFound, code: n) }
        return n
    }

    /// Stores progress (a JSON number or object) and emits a `progress` event.
    public func updateProgress(_ json: String) throws {
        guard let ctx = context else { throw QueueError("job \(id) is detached from its queue") }
        let r = try ctx.client.eval(QueueScripts.updateProgress, args: [ctx.base, id, json])
        if let c = r.intValue, c < 0 { throw QueueError("job \(id) does not exist", kind: .notFound, code: Int(c)) }
    }

    /// Everything Bull Board shows for a job, as one JSON object.
    public var json: JSON {
        var o: [String: JSON] = [
            "id": .string(id), "name": .string(name), "data": data, "opts": opts,
            "attemptsMade": JSON(attemptsMade), "attemptsStarted": JSON(attemptsStarted),
            "stalledCounter": JSON(stalledCounter),
            "timestamp": .int(timestamp), "delay": .int(delay), "priority": JSON(priority),
            "processedOn": JSON(processedOn), "finishedOn": JSON(finishedOn),
            "returnvalue": returnValue ?? .null, "failedReason": JSON(failedReason),
            "stacktrace": .array(stacktrace.map { .string($0) }), "progress": progress,
            "logs": .array(logs.map { .string($0) }),
        ]
        if let s = state { o["state"] = .string(s.rawValue) }
        if let p = processedBy { o["processedBy"] = .string(p) }
        return .object(o)
    }
}

/// Number of jobs in each state.
public struct JobCounts: Sendable, Equatable {
    public var waiting = 0, active = 0, delayed = 0, prioritized = 0, completed = 0, failed = 0
    public var waitingChildren = 0, paused = 0
    public init() {}

    public var json: JSON {
        ["waiting": JSON(waiting), "active": JSON(active), "delayed": JSON(delayed), "prioritized": JSON(prioritized),
         "completed": JSON(completed), "failed": JSON(failed), "waiting-children": JSON(waitingChildren), "paused": JSON(paused)]
    }
}

/// One entry of the queue's events stream.
public struct QueueEvent: Sendable, Equatable {
    /// The stream id (`<ms>-<seq>`).
    public let id: String
    public let event: String
    public let fields: [String: String]

    public var json: JSON {
        var o: [String: JSON] = ["id": .string(id), "event": .string(event)]
        for (k, v) in fields where k != "event" { o[k] = .string(v) }
        return .object(o)
    }
}
