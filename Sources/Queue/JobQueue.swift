import Foundation
import JSON
import Redis
import Runtime

/// A job to add in bulk.
public struct NewJob: Sendable {
    public var name: String
    public var dataJSON: String
    public var options: JobOptions
    public init(name: String, dataJSON: String, options: JobOptions = .init()) {
        self.name = name
        self.dataJSON = dataJSON
        self.options = options
    }
}

/// Producer and administration side of one BullMQ-compatible queue (`prefix:name:*` in Redis).
public final class JobQueue: Sendable {
    public let name: String
    public let prefix: String
    public let defaults: QueueDefaults
    /// `prefix:name:`, the start of every key of this queue.
    public let base: String
    let client: RedisClient
    /// How long an add keeps retrying while Redis is unreachable before it reports failure.
    let reconnectWindowMs: Int

    public init(name: String, prefix: String = "bull", redisURL: String, defaults: QueueDefaults = .standard,
                timeoutMs: Int = 5000, reconnectWindowMs: Int = 10_000) throws {
        guard !name.isEmpty, !name.contains(":") else { throw QueueError("queue name must be non-empty and without ':'") }
        self.name = name
        self.prefix = prefix
        self.defaults = defaults
        base = "\(prefix):\(name):"
        client = try RedisClient(url: redisURL, timeoutMs: timeoutMs, clientName: "\(prefix):\(Data(name.utf8).base64EncodedString())")
        self.reconnectWindowMs = reconnectWindowMs
    }

    // MARK: - producer

    /// Adds a job and returns its id. With a custom `jobId` that exists already nothing changes and
    /// the existing id is returned, which makes retried requests safe.
    @discardableResult
    public func add(name: String, dataJSON: String, options: JobOptions = .init()) throws -> String {
        let args = try addArgs(name: name, dataJSON: dataJSON, options: options)
        let r = try withReconnect(idempotent: options.jobId != nil) { try client.eval(QueueScripts.addJob, args: args) }
        client.waitForReplicas()
        return try Self.addedId(r)
    }

    /// Adds several jobs in one round trip; each add is atomic on its own. Returns ids in order.
    @discardableResult
    public func addBulk(_ jobs: [NewJob]) throws -> [String] {
        let argLists = try jobs.map { try addArgs(name: $0.name, dataJSON: $0.dataJSON, options: $0.options) }
        let idempotent = jobs.allSatisfy { $0.options.jobId != nil }
        let replies = try withReconnect(idempotent: idempotent) { try client.evalMany(QueueScripts.addJob, argLists: argLists) }
        client.waitForReplicas()
        return try replies.map { r in
            if case .error(let e) = r { throw RedisError.reply(e) }
            return try Self.addedId(r)
        }
    }

    private static func addedId(_ r: RedisReply) throws -> String {
        guard let a = r.arrayValue, let id = a.first?.stringValue else { throw QueueError("addJob: unexpected reply \(r)", kind: .unexpected) }
        return id
    }

    func addArgs(name: String, dataJSON: String, options o: JobOptions) throws -> [String] {
        if let id = o.jobId {
            // BullMQ's rules: an integer id could collide with auto ids; ':' would break key parsing.
            guard !id.isEmpty, Int64(id) == nil, !id.contains(":") else {
                throw QueueError("custom job id must be non-empty, not an integer and without ':'")
            }
        }
        if let p = o.priority, p < 0 || p > 2_097_152 { throw QueueError("priority must be between 0 and 2097152") }
        if let a = o.attempts, a < 0 { throw QueueError("attempts must not be negative") }
        guard (try? JSONParser.parse(dataJSON)) != nil else { throw QueueError("job data must be JSON text") }
        let ts = o.timestamp ?? Clock.wallMillis()
        return [base, o.jobId ?? "", name, String(ts), dataJSON, o.json(defaults: defaults).serialized(),
                String(max(o.delayMs ?? 0, 0)), String(max(o.priority ?? 0, 0)), o.lifo ? "1" : "0"]
    }

    /// Retries connection failures for up to `reconnectWindowMs`. A failure after the command may
    /// have run is retried only when running it twice is harmless.
    func withReconnect<R>(idempotent: Bool, _ body: () throws -> R) throws -> R {
        let deadline = Deadline.after(ms: reconnectWindowMs)
        var pauseMs = 50
        while true {
            do { return try body() } catch let e as RedisError where e.isConnectionError {
                guard e.notExecuted || idempotent, !deadline.hasPassed else { throw e }
                usleep(UInt32(min(pauseMs, max(deadline.remainingMs, 1))) * 1000)
                pauseMs = min(pauseMs * 2, 1000)
            }
        }
    }

    // MARK: - administration

    public func counts() throws -> JobCounts {
        let r = try withReconnect(idempotent: true) {
            try client.pipeline([["LLEN", base + "wait"], ["LLEN", base + "active"], ["ZCARD", base + "delayed"],
                                 ["ZCARD", base + "prioritized"], ["ZCARD", base + "completed"], ["ZCARD", base + "failed"],
                                 ["ZCARD", base + "waiting-children"], ["LLEN", base + "paused"]])
        }
        let n = try r.map { reply -> Int in
            if case .error(let e) = reply { throw RedisError.reply(e) }
            return Int(reply.intValue ?? 0)
        }
        var c = JobCounts()
        (c.waiting, c.active, c.delayed, c.prioritized, c.completed, c.failed, c.waitingChildren, c.paused) =
            (n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7])
        return c
    }

    /// Jobs in one state, newest first (for lists: the most recently queued or started first).
    public func jobs(state: JobState, offset: Int = 0, limit: Int = 20) throws -> [Job] {
        guard limit > 0 else { return [] }
        let start = String(max(offset, 0)), stop = String(max(offset, 0) + limit - 1)
        let cmd: [String]
        switch state {
        case .waiting: cmd = ["LRANGE", base + "wait", start, stop]
        case .active: cmd = ["LRANGE", base + "active", start, stop]
        case .paused: cmd = ["LRANGE", base + "paused", start, stop]
        // Prioritized jobs are listed in run order: their score is a priority, not a time.
        case .prioritized: cmd = ["ZRANGE", base + "prioritized", start, stop]
        case .delayed, .completed, .failed: cmd = ["ZREVRANGE", base + state.rawValue, start, stop]
        case .waitingChildren: cmd = ["ZREVRANGE", base + "waiting-children", start, stop]
        case .unknown: return []
        }
        let ids = try withReconnect(idempotent: true) { try client.run(cmd).strings }
        return try loadJobs(ids, state: state)
    }

    private func loadJobs(_ ids: [String], state: JobState?) throws -> [Job] {
        if ids.isEmpty { return [] }
        var cmds: [[String]] = []
        for id in ids { cmds.append(["HGETALL", base + id]); cmds.append(["LRANGE", base + id + ":logs", "0", "-1"]) }
        let r = try withReconnect(idempotent: true) { () throws -> [RedisReply] in
            let r = try client.pipeline(cmds)
            if let bad = r.first(where: { if case .error = $0 { return true } else { return false } }), case .error(let e) = bad {
                throw RedisError.reply(e)
            }
            return r
        }
        var out: [Job] = []
        for (i, id) in ids.enumerated() {
            let f = r[2 * i].hash
            if f.isEmpty { continue }
            out.append(Job(id: id, fields: f, context: JobContext(client: client, base: base), logs: r[2 * i + 1].strings, state: state))
        }
        return out
    }

    /// One job with its state and logs, or nil when it does not exist.
    public func job(id: String) throws -> Job? {
        let st = try state(id: id)
        guard var j = try loadJobs([id], state: st).first else { return nil }
        j.state = st
        return j
    }

    public func state(id: String) throws -> JobState {
        let r = try withReconnect(idempotent: true) { try client.eval(QueueScripts.getState, args: [base, id]) }
        return JobState(rawValue: r.stringValue ?? "") ?? .unknown
    }

    /// Moves a failed (or completed) job back to waiting. False when it is not in that state.
    @discardableResult
    public func retry(id: String, from state: JobState = .failed, resetAttempts: Bool = false) throws -> Bool {
        guard state == .failed || state == .completed else { throw QueueError("only failed or completed jobs can be retried") }
        let r = try withReconnect(idempotent: true) {
            try client.eval(QueueScripts.reprocess, args: [base, state.rawValue, "1", id, resetAttempts ? "1" : "0"])
        }
        return r.intValue == 0
    }

    /// Moves every failed job back to waiting; returns how many were moved.
    @discardableResult
    public func retryAllFailed(resetAttempts: Bool = false) throws -> Int {
        var moved = 0
        while true {
            let before = try counts().failed
            if before == 0 { return moved }
            let left = try withReconnect(idempotent: true) {
                try client.eval(QueueScripts.reprocess, args: [base, "failed", "1000", "", resetAttempts ? "1" : "0"])
            }
            let remaining = Int(left.intValue ?? 0)
            moved += max(before - remaining, 0)
            if remaining == 0 || remaining >= before { return moved }
        }
    }

    /// Runs a delayed job now. False when the job is not delayed.
    @discardableResult
    public func promote(id: String) throws -> Bool {
        let r = try withReconnect(idempotent: true) { try client.eval(QueueScripts.promote, args: [base, id]) }
        return r.intValue == 0
    }

    /// Removes a job in any state with its logs. False when it does not exist; throws
    /// `QueueError` `.jobActive` when a worker holds it and `.schedulerJob` for the pending run of
    /// a job scheduler.
    @discardableResult
    public func remove(id: String) throws -> Bool {
        let r = try withReconnect(idempotent: true) { try client.eval(QueueScripts.remove, args: [base, id]) }
        switch r.intValue ?? -1 {
        case 1: return true
        case 0: throw QueueError("Job \(id) is being processed by a worker; it can be removed once it has finished", kind: .jobActive, code: 0)
        case -8: throw QueueError("Job \(id) is the next run of a job scheduler; remove the scheduler instead", kind: .schedulerJob, code: -8)
        default: return false
        }
    }

    /// Removes up to `limit` (0 = all) jobs of a state older than `olderThanMs`; returns their ids.
    @discardableResult
    public func clean(state: JobState, olderThanMs: Int, limit: Int = 0) throws -> [String] {
        let cutoff = Clock.wallMillis() - Int64(max(olderThanMs, 0))
        let r = try withReconnect(idempotent: true) {
            try client.eval(QueueScripts.clean, args: [base, state.rawValue, String(cutoff), String(limit)])
        }
        return r.strings
    }

    /// Stops every worker of the queue from taking new jobs; adds still queue up.
    public func pause() throws {
        _ = try withReconnect(idempotent: true) { try client.eval(QueueScripts.pause, args: [base, "1"]) }
    }

    public func resume() throws {
        _ = try withReconnect(idempotent: true) { try client.eval(QueueScripts.pause, args: [base, "0"]) }
    }

    public func isPaused() throws -> Bool {
        try withReconnect(idempotent: true) { try client.run(["HEXISTS", base + "meta", "paused"]).intValue == 1 }
    }

    /// The newest `count` entries of the events stream, newest first.
    public func events(count: Int = 100) throws -> [QueueEvent] {
        let r = try withReconnect(idempotent: true) { try client.run(["XREVRANGE", base + "events", "+", "-", "COUNT", String(max(count, 1))]) }
        return (r.arrayValue ?? []).compactMap { e in
            guard let parts = e.arrayValue, parts.count == 2, let id = parts[0].stringValue else { return nil }
            let f = parts[1].hash
            return QueueEvent(id: id, event: f["event"] ?? "", fields: f)
        }
    }

    /// Closes the connection (it reopens on the next call).
    /// BullMQ's per-minute metrics of finished jobs (`getMetrics`): `count` finishes counted so
    /// far, the newest `limit` data points (per minute, newest first), how many points are kept,
    /// and `prevTS`/`prevCount` (the last point's time and count; `count - prevCount` finished in
    /// the minute not yet pushed). Empty when no worker keeps metrics.
    public func metrics(_ target: JobState, limit: Int) throws -> QueueMetrics {
        guard target == .completed || target == .failed else { throw QueueError("metrics are kept for completed and failed jobs only") }
        let mk = base + "metrics:" + target.rawValue
        let r = try withReconnect(idempotent: true) {
            try client.pipeline([["HMGET", mk, "count", "prevTS", "prevCount"], ["LRANGE", mk + ":data", "0", String(max(limit, 1) - 1)],
                                 ["LLEN", mk + ":data"]])
        }
        for reply in r { if case .error(let e) = reply { throw RedisError.reply(e) } }
        let meta = r[0].arrayValue ?? []
        func int(_ i: Int) -> Int64 { i < meta.count ? meta[i].stringValue.flatMap { Int64($0) } ?? 0 : 0 }
        return QueueMetrics(count: int(0), prevTS: int(1), prevCount: int(2),
                            data: (r[1].arrayValue ?? []).map { $0.stringValue.flatMap { Int64($0) } ?? 0 }, kept: Int(r[2].intValue ?? 0))
    }

    public func close() { client.disconnect() }
}

extension JobQueue {
    /// The `redis` entry of a service's `rpc.health` checks.
    public var healthCheck: JSON {
        do {
            _ = try isPaused()
            return ["ok": true]
        } catch {
            return ["ok": false, "error": .string(String(describing: error))]
        }
    }
}

/// One queue's per-minute metrics as BullMQ keeps them (see `JobQueue.metrics`).
public struct QueueMetrics: Sendable, Equatable {
    public var count: Int64
    public var prevTS: Int64
    public var prevCount: Int64
    /// Finishes per minute, newest first.
    public var data: [Int64]
    public var kept: Int

    public var json: JSON {
        ["count": .int(count), "prevTS": .int(prevTS), "prevCount": .int(prevCount), "data": .array(data.map { .int($0) }), "kept": .int(Int64(kept))]
    }
}
