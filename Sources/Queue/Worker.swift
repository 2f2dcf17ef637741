import Foundation
import JSON
import Redis
import Runtime

/// Tuning of a `Worker`; the defaults are BullMQ's.
public struct WorkerOptions: Sendable {
    /// A job's lock lives this long unless renewed; a worker that dies loses its jobs after it.
    public var lockDurationMs = 30_000
    /// Locks are renewed every half of this (default: half the lock duration).
    public var lockRenewTimeMs: Int?
    public var stalledIntervalMs = 30_000
    /// Times a job may stall before the next worker to pick it fails it.
    public var maxStalledCount = 1
    /// Longest block on the marker when no delayed job is known.
    public var drainDelayMs = 5_000
    /// Upper bound of one blocking call, so that `stop` never waits long for idle threads.
    public var maxBlockMs = 1_000
    /// Retention for jobs whose options do not say (BullMQ keeps them forever; this system's
    /// defaults bound it).
    public var removeOnComplete: KeepJobs = QueueDefaults.standard.removeOnComplete
    public var removeOnFail: KeepJobs = QueueDefaults.standard.removeOnFail
    /// Shown as `processedBy` on jobs and in the connection name (`P:<base64(Q)>:w:<name>`).
    public var name: String?
    /// Socket timeout of every Redis call except the blocking one.
    public var redisTimeoutMs = 5_000
    public var logger: Logger?

    public init() {}
}

/// Runs a processor over one queue's jobs on `concurrency` threads, each with its own Redis
/// connection, with lock renewal, stalled-job recovery, retries and graceful shutdown.
public final class Worker: Sendable {
    public let queueName: String
    public let prefix: String
    public let concurrency: Int
    public let options: WorkerOptions
    let base: String
    private let processor: @Sendable (Job) throws -> String
    private let clients: [RedisClient]
    private let maintenanceClient: RedisClient
    private let state = Locked(State())
    private let workerId = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    private let logger: Logger

    private enum Phase { case created, running, stopping, stopped }

    private struct InFlight {
        var token: String
        /// Ownership is gone (lock renewal failed, or the job was released at shutdown): the
        /// outcome of the processor must not be written.
        var lost = false
    }

    private struct State {
        var phase = Phase.created
        /// Set once the grace period of `stop` is over; jobs fetched after it are given back.
        var hardStopped = false
        var localPaused = false
        var renewalSuspended = false
        var inFlight: [String: InFlight] = [:]
        var threadsAlive = 0
        var threadsInProcessor = 0
        var tokenSeq = 0
    }

    private enum Outcome {
        case completed(String)
        case failed(reason: String, unrecoverable: Bool)
    }

    private struct Fetched {
        let id: String
        let fields: [String: String]
        let token: String
    }

    public init(queueName: String, prefix: String = "bull", redisURL: String, concurrency: Int = 1,
                options: WorkerOptions = .init(), processor: @escaping @Sendable (Job) throws -> String) throws {
        self.queueName = queueName
        self.prefix = prefix
        self.concurrency = max(concurrency, 1)
        self.options = options
        self.processor = processor
        base = "\(prefix):\(queueName):"
        clients = try (0..<max(concurrency, 1)).map { _ in try RedisClient(url: redisURL, timeoutMs: options.redisTimeoutMs) }
        let wname = options.name ?? "w"
        maintenanceClient = try RedisClient(url: redisURL, timeoutMs: options.redisTimeoutMs,
                                            clientName: "\(prefix):\(Data(queueName.utf8).base64EncodedString()):w:\(wname)")
        logger = options.logger ?? Logger(service: "queue", instance: 0, level: .warn)
    }

    /// Starts the processing threads and the lock/stall maintenance thread.
    public func start() {
        let go = state.withLock { s -> Bool in
            guard s.phase == .created else { return false }
            s.phase = .running
            s.threadsAlive = concurrency
            return true
        }
        guard go else { return }
        for i in 0..<concurrency {
            let t = Thread { [self] in self.processingLoop(client: clients[i]) }
            t.name = "worker-\(queueName)-\(i)"
            t.start()
        }
        let m = Thread { [self] in self.maintenanceLoop() }
        m.name = "worker-\(queueName)-maintenance"
        m.start()
    }

    /// Stops taking jobs, waits up to `graceMs` for jobs in flight, then gives the unfinished ones
    /// back to the queue (their processors' results are then discarded).
    public func stop(graceMs: Int = 10_000) {
        let wasRunning = state.withLock { s -> Bool in
            guard s.phase == .running else { return false }
            s.phase = .stopping
            return true
        }
        guard wasRunning else { return }
        let grace = Deadline.after(ms: graceMs)
        while !grace.hasPassed && !state.withLock({ $0.inFlight.isEmpty }) { usleep(5_000) }
        let leftovers = state.withLock { s -> [(String, String)] in
            s.hardStopped = true
            var out: [(String, String)] = []
            for (id, f) in s.inFlight where !f.lost {
                s.inFlight[id]?.lost = true
                out.append((id, f.token))
            }
            return out
        }
        for (id, token) in leftovers { release(id: id, token: token, client: maintenanceClient) }
        // Idle threads notice the stop within one blocking call; threads stuck in a processor are
        // left to finish on their own (their jobs were released above).
        let idleDeadline = Deadline.after(ms: options.maxBlockMs + options.redisTimeoutMs + 500)
        while !idleDeadline.hasPassed && state.withLock({ $0.threadsAlive > $0.threadsInProcessor }) { usleep(5_000) }
        state.withLock { $0.phase = .stopped }
    }

    /// Stops this worker from taking new jobs (jobs in flight finish); the queue is not paused.
    public func pause() { state.withLock { $0.localPaused = true } }
    public func resume() { state.withLock { $0.localPaused = false } }

    /// Ids of the jobs currently being processed.
    public var activeJobIds: [String] { state.withLock { Array($0.inFlight.keys) } }

    /// Test hook: behave like a worker whose process froze, so its locks expire.
    func suspendLockRenewal() { state.withLock { $0.renewalSuspended = true } }

    // MARK: - processing threads

    private var isStopping: Bool { state.withLock { $0.phase != .running } }

    private func nextToken() -> String {
        let n = state.withLock { s -> Int in s.tokenSeq += 1; return s.tokenSeq }
        return "\(workerId):\(n)"
    }

    private func processingLoop(client: RedisClient) {
        defer { state.withLock { $0.threadsAlive -= 1 } }
        var next: Fetched?
        var errorPauseMs = 0
        while true {
            let (stopping, paused) = state.withLock { ($0.phase != .running, $0.localPaused) }
            if stopping && next == nil { return }
            do {
                guard let job = next else {
                    if paused { usleep(50_000); continue }
                    let token = nextToken()
                    let r = try client.eval(QueueScripts.moveToActive,
                                            args: [base, String(Clock.wallMillis()), token, String(options.lockDurationMs)])
                    let (fetched, nextDue) = parseFetch(r, token: token)
                    if let f = fetched { next = f } else { try waitForWork(client, nextDelayedDue: nextDue) }
                    errorPauseMs = 0
                    continue
                }
                next = nil
                next = handle(job, client: client)
                errorPauseMs = 0
            } catch {
                // Redis is down or restarting: back off and let the client reconnect.
                errorPauseMs = min(max(errorPauseMs * 2, 50), 2_000)
                logger.warn("queue worker redis call failed", ["queue": .string(queueName), "error": .string("\(error)")])
                usleep(UInt32(errorPauseMs) * 1000)
            }
        }
    }

    /// Blocks on the marker until a job may be ready: a "0" member, a delayed due time that has
    /// come, or a timeout. Markers are only hints; the caller always asks moveToActive.
    private func waitForWork(_ client: RedisClient, nextDelayedDue: Int64) throws {
        var until = nextDelayedDue
        while !isStopping {
            let now = Clock.wallMillis()
            var timeout = options.drainDelayMs
            if until > 0 {
                if until <= now { return }
                timeout = min(timeout, Int(until - now))
            }
            timeout = max(min(timeout, options.maxBlockMs), 1)
            let secs = String(format: "%.3f", Double(timeout) / 1000)
            let r = try client.blockingCommand(["BZPOPMIN", base + "marker", secs], timeoutMs: timeout + options.redisTimeoutMs)
            guard let a = r.arrayValue, a.count == 3 else { return }
            let score = Double(a[2].stringValue ?? "0") ?? 0
            if score <= 0 || Int64(score) <= Clock.wallMillis() { return }
            until = until > 0 ? min(until, Int64(score)) : Int64(score)
        }
    }

    /// Reads moveToActive's answer `{fields, id, rateLimitTtl, nextDelayedDue}`.
    private func parseFetch(_ r: RedisReply, token: String) -> (Fetched?, Int64) {
        guard let a = r.arrayValue, a.count >= 4 else { return (nil, 0) }
        if case .array = a[0], let id = a[1].stringValue {
            return (Fetched(id: id, fields: a[0].hash, token: token), 0)
        }
        return (nil, a[3].intValue ?? 0)
    }

    /// Runs one job to its end and returns the next job if the finish script handed one out.
    private func handle(_ f: Fetched, client: RedisClient) -> Fetched? {
        let accepted = state.withLock { s -> Bool in
            if s.hardStopped { return false }
            s.inFlight[f.id] = InFlight(token: f.token)
            s.threadsInProcessor += 1
            return true
        }
        guard accepted else {
            release(id: f.id, token: f.token, client: client)
            return nil
        }
        let job = Job(id: f.id, fields: f.fields, context: JobContext(client: client, base: base))
        let outcome: Outcome
        if let defa = job.deferredFailure {
            outcome = .failed(reason: defa, unrecoverable: true)
        } else {
            do {
                outcome = .completed(Self.normalizedJSON(try processor(job)))
            } catch let e as UnrecoverableError {
                outcome = .failed(reason: e.message, unrecoverable: true)
            } catch {
                outcome = .failed(reason: "\(error)", unrecoverable: false)
            }
        }
        state.withLock { $0.threadsInProcessor -= 1 }
        defer { state.withLock { _ = $0.inFlight.removeValue(forKey: f.id) } }
        let fetchNext = state.withLock { $0.phase == .running && !$0.localPaused }
        let nextToken = fetchNext ? self.nextToken() : ""
        let (script, args) = finishCall(job, token: f.token, outcome: outcome, fetchNext: fetchNext, nextToken: nextToken)
        guard let r = runOwned(jobId: f.id, client: client, { try client.eval(script, args: args) }) else { return nil }
        if case .int(let code) = r, code < 0 {
            logger.warn("queue job finished without owning it", ["queue": .string(queueName), "jobId": .string(f.id), "code": .int(code)])
            return nil
        }
        return parseFetch(r, token: nextToken).0
    }

    /// Chooses the transition: complete, retry after a backoff, retry now, or fail for good.
    private func finishCall(_ job: Job, token: String, outcome: Outcome, fetchNext: Bool, nextToken: String) -> (RedisScript, [String]) {
        let now = String(Clock.wallMillis())
        switch outcome {
        case .completed(let rv):
            let keep = KeepJobs(json: job.opts["removeOnComplete"]) ?? options.removeOnComplete
            return (QueueScripts.moveToFinished,
                    [base, job.id, token, now, "completed", "returnvalue", rv] + keepArgs(keep)
                        + [String(job.maxAttempts), fetchNext ? "1" : "0", nextToken, String(options.lockDurationMs)])
        case .failed(let reason, let unrecoverable):
            var traces = job.stacktrace + [reason]
            if let limit = job.opts["stackTraceLimit"]?.intValue { traces = Array(traces.suffix(Int(max(limit, 0)))) }
            let fields = ["failedReason", reason, "stacktrace", JSON.array(traces.map { .string($0) }).serialized()]
            if !unrecoverable && job.attemptsMade + 1 < job.maxAttempts {
                let delay = job.backoff?.delayMs(afterAttempts: job.attemptsMade + 1) ?? 0
                if delay > 0 {
                    return (QueueScripts.moveToDelayed, [base, job.id, token, now, String(delay)] + fields)
                }
                return (QueueScripts.retryJob, [base, job.id, token, now, job.opts["lifo"]?.boolValue == true ? "1" : "0"] + fields)
            }
            let keep = KeepJobs(json: job.opts["removeOnFail"]) ?? options.removeOnFail
            return (QueueScripts.moveToFinished,
                    [base, job.id, token, now, "failed", "failedReason", reason] + keepArgs(keep)
                        + [String(job.maxAttempts), fetchNext ? "1" : "0", nextToken, String(options.lockDurationMs)] + fields)
        }
    }

    private func keepArgs(_ k: KeepJobs) -> [String] {
        [String(k.scriptCount), k.ageSeconds.map(String.init) ?? "", String(k.limit ?? 1000)]
    }

    /// Processor results are stored as JSON; text that is not JSON is stored as a JSON string.
    static func normalizedJSON(_ s: String) -> String {
        if s.isEmpty { return "null" }
        if (try? JSONParser.parse(s)) != nil { return s }
        return JSON.string(s).serialized()
    }

    /// Runs a transition of an owned job, retrying while Redis is unreachable, until it succeeds
    /// or the job stops being ours. Nil when it was given up.
    private func runOwned(jobId: String, client: RedisClient, _ body: () throws -> RedisReply) -> RedisReply? {
        var pauseMs = 50
        while true {
            if state.withLock({ $0.inFlight[jobId]?.lost ?? true }) { return nil }
            do { return try body() } catch let e as RedisError where e.isConnectionError {
                logger.warn("queue worker cannot reach redis; retrying", ["queue": .string(queueName), "jobId": .string(jobId)])
                usleep(UInt32(pauseMs) * 1000)
                pauseMs = min(pauseMs * 2, 2_000)
            } catch {
                logger.error("queue job transition failed", ["queue": .string(queueName), "jobId": .string(jobId), "error": .string("\(error)")])
                return nil
            }
        }
    }

    private func release(id: String, token: String, client: RedisClient) {
        do {
            _ = try client.eval(QueueScripts.releaseJob, args: [base, id, token])
        } catch {
            // The lock will expire and the stalled checker will requeue the job.
            logger.warn("queue could not release job", ["queue": .string(queueName), "jobId": .string(id), "error": .string("\(error)")])
        }
    }

    // MARK: - maintenance thread

    private func maintenanceLoop() {
        let renewEvery = UInt64(max((options.lockRenewTimeMs ?? options.lockDurationMs / 2) / 2, 10)) * 1_000_000
        let stalledEvery = UInt64(max(options.stalledIntervalMs, 10)) * 1_000_000
        var nextRenew = Clock.monotonicNanos() + renewEvery
        var nextStalled = Clock.monotonicNanos()
        while state.withLock({ $0.phase == .running || $0.phase == .stopping }) {
            let now = Clock.monotonicNanos()
            if now >= nextRenew {
                renewLocks()
                nextRenew = Clock.monotonicNanos() + renewEvery
            }
            if now >= nextStalled, !isStopping {
                checkStalled()
                nextStalled = Clock.monotonicNanos() + stalledEvery
            }
            let wake = min(nextRenew, nextStalled)
            let nowAfter = Clock.monotonicNanos()
            if wake > nowAfter { usleep(UInt32(min((wake - nowAfter) / 1000, 50_000))) }
        }
    }

    private func renewLocks() {
        let owned = state.withLock { s -> [(String, String)] in
            if s.renewalSuspended { return [] }
            return s.inFlight.filter { !$0.value.lost }.map { ($0.key, $0.value.token) }
        }
        if owned.isEmpty { return }
        var args = [base, String(options.lockDurationMs)]
        for (id, token) in owned { args.append(id); args.append(token) }
        do {
            let failed = try maintenanceClient.eval(QueueScripts.extendLocks, args: args).strings
            if failed.isEmpty { return }
            state.withLock { s in for id in failed where s.inFlight[id]?.token == owned.first(where: { $0.0 == id })?.1 { s.inFlight[id]?.lost = true } }
            logger.warn("queue lost job locks", ["queue": .string(queueName), "jobIds": .array(failed.map { .string($0) })])
        } catch {
            logger.warn("queue lock renewal failed", ["queue": .string(queueName), "error": .string("\(error)")])
        }
    }

    private func checkStalled() {
        do {
            let ids = try maintenanceClient.eval(QueueScripts.moveStalledJobsToWait,
                                                 args: [base, String(Clock.wallMillis()), String(options.maxStalledCount),
                                                        String(options.stalledIntervalMs)]).strings
            if !ids.isEmpty {
                logger.warn("queue recovered stalled jobs", ["queue": .string(queueName), "jobIds": .array(ids.map { .string($0) })])
            }
        } catch {
            logger.warn("queue stalled check failed", ["queue": .string(queueName), "error": .string("\(error)")])
        }
    }
}
