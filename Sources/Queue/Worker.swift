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
    /// Called (besides the warning logged and the count in `Worker.counters`) whenever the
    /// outcome of a run is not written because the run no longer owns its job.
    /// Per-minute completed and failed counts in BullMQ's metrics layout (`metrics:completed`,
    /// `metrics:failed` and their `:data` lists), keeping this many minutes; nil keeps none.
    /// Like BullMQ, every worker of a queue should use the same value.
    public var metricsMaxDataPoints: Int?
    public var onFinishGivenUp: (@Sendable (_ queue: String, _ jobId: String, _ reason: WorkerCounters.GivenUp) -> Void)?
    /// Test seam: runs on a processing thread right after a job's finish script has answered,
    /// before the thread's clean-up, to stand for a thread that loses its core at that moment.
    var afterFinishScript: (@Sendable (_ jobId: String) -> Void)?

    public init() {}
}

/// What a worker counted since it started.
public struct WorkerCounters: Sendable, Equatable {
    /// Why the outcome of a run was not written.
    public enum GivenUp: String, Sendable, CaseIterable {
        /// Lock renewal found the lock gone or held by another token (the job stalled meanwhile).
        case lockLost = "lock_lost"
        /// `stop` gave the job back to the queue before its processor returned.
        case released
        /// The finish script refused: the job, its lock or its place in `active` was not ours.
        case notOwned = "not_owned"
        /// The finish script failed for another reason than an unreachable Redis.
        case error
    }

    /// Runs whose outcome was not written, by reason.
    public var finishesGivenUp: [GivenUp: Int] = [:]
    public var finishesGivenUpTotal: Int { finishesGivenUp.values.reduce(0, +) }

    public init() {}
}

/// Runs a processor over one queue's jobs, with lock renewal (all of a worker's locks in one
/// script call), stalled-job recovery, retries and graceful shutdown. Two ways to run:
/// - a synchronous processor on `concurrency` threads, each with its own Redis connection;
/// - an async processor (`init(..., fetchers:maxInFlight:executor:...)`): `fetchers` threads and
///   connections take jobs while fewer than `maxInFlight` are running, each job runs as a task
///   on `executor`, and `fetchers` more connections write the outcomes. A job waiting on I/O holds
///   no thread and no connection, so in-flight jobs are not bounded by either.
public final class Worker: Sendable {
    public let queueName: String
    public let prefix: String
    public let concurrency: Int
    public let options: WorkerOptions
    let base: String
    private let processor: Processor
    private let clients: [RedisClient]
    /// Async mode: the connections outcomes are written on (never blocked on the marker).
    private let finishClients: [RedisClient]
    /// Async mode: free places for jobs in flight.
    private let slots: DispatchSemaphore
    private let maintenanceClient: RedisClient
    private let state = Locked(State())
    private let workerId = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    private let logger: Logger

    private enum Phase { case created, running, stopping, stopped }

    private enum Processor {
        case sync(@Sendable (Job) throws -> String)
        case async(@Sendable (Job) async throws -> String, executor: ThreadPoolExecutor, maxInFlight: Int)
    }

    /// One run of a job. A job id alone does not name a run: a job retried at once can be taken
    /// by another thread while the thread of its previous run is still cleaning up.
    private struct Run: Hashable {
        let id: String
        let token: String
    }

    private struct InFlight {
        /// Set when ownership is gone (lock renewal failed, or the job was released at
        /// shutdown): the outcome of the processor must not be written.
        var lost: WorkerCounters.GivenUp?
    }

    private struct State {
        var phase = Phase.created
        /// Set once the grace period of `stop` is over; jobs fetched after it are given back.
        var hardStopped = false
        var localPaused = false
        var renewalSuspended = false
        var inFlight: [Run: InFlight] = [:]
        var counters = WorkerCounters()
        var threadsAlive = 0
        var threadsInProcessor = 0
        var tokenSeq = 0
        var finishSeq = 0
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

    public convenience init(queueName: String, prefix: String = "bull", redisURL: String, concurrency: Int = 1,
                            options: WorkerOptions = .init(), processor: @escaping @Sendable (Job) throws -> String) throws {
        try self.init(queueName: queueName, prefix: prefix, redisURL: redisURL, threads: concurrency, processor: .sync(processor), options: options)
    }

    /// An async worker: `fetchers` threads (1–16) take jobs, at most `maxInFlight` (1–100000) run
    /// at once as tasks on `executor`.
    public convenience init(queueName: String, prefix: String = "bull", redisURL: String, fetchers: Int = 1, maxInFlight: Int,
                            executor: ThreadPoolExecutor, options: WorkerOptions = .init(),
                            processor: @escaping @Sendable (Job) async throws -> String) throws {
        guard (1...16).contains(fetchers), (1...100_000).contains(maxInFlight) else {
            throw RuntimeError("worker fetchers must be 1-16 and max in flight 1-100000 (got \(fetchers), \(maxInFlight))")
        }
        try self.init(queueName: queueName, prefix: prefix, redisURL: redisURL, threads: fetchers,
                      processor: .async(processor, executor: executor, maxInFlight: maxInFlight), options: options)
    }

    private init(queueName: String, prefix: String, redisURL: String, threads: Int, processor: Processor, options: WorkerOptions) throws {
        self.queueName = queueName
        self.prefix = prefix
        self.concurrency = max(threads, 1)
        self.options = options
        self.processor = processor
        base = "\(prefix):\(queueName):"
        clients = try (0..<max(threads, 1)).map { _ in try RedisClient(url: redisURL, timeoutMs: options.redisTimeoutMs) }
        if case .async(_, _, let maxInFlight) = processor {
            finishClients = try (0..<max(threads, 1)).map { _ in try RedisClient(url: redisURL, timeoutMs: options.redisTimeoutMs) }
            slots = DispatchSemaphore(value: maxInFlight)
        } else {
            finishClients = []
            slots = DispatchSemaphore(value: 0)
        }
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
        let isAsync: Bool
        if case .async = processor { isAsync = true } else { isAsync = false }
        for i in 0..<concurrency {
            let t = Thread { [self] in if isAsync { fetchLoop(client: clients[i]) } else { processingLoop(client: clients[i]) } }
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
        state.wait(until: { $0.inFlight.isEmpty }, deadline: grace)
        let leftovers = state.withLock { s -> [Run] in
            s.hardStopped = true
            let out = s.inFlight.filter { $0.value.lost == nil }.map(\.key)
            for run in out { s.inFlight[run]?.lost = .released }
            return out
        }
        for run in leftovers { release(id: run.id, token: run.token, client: maintenanceClient) }
        // Idle threads notice the stop within one blocking call; threads stuck in a processor are
        // left to finish on their own (their jobs were released above).
        let idleDeadline = Deadline.after(ms: options.maxBlockMs + options.redisTimeoutMs + 500)
        state.wait(until: { $0.threadsAlive <= $0.threadsInProcessor }, deadline: idleDeadline)
        state.withLock { $0.phase = .stopped }
    }

    /// Stops this worker from taking new jobs (jobs in flight finish); the queue is not paused.
    public func pause() { state.withLock { $0.localPaused = true } }
    public func resume() { state.withLock { $0.localPaused = false } }

    /// Ids of the jobs currently being processed.
    public var activeJobIds: [String] { state.withLock { Array(Set($0.inFlight.keys.map(\.id))) } }

    /// What this worker counted since it started.
    public var counters: WorkerCounters { state.withLock { $0.counters } }

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
        guard case .sync(let body) = processor else { return nil }
        let run = Run(id: f.id, token: f.token)
        let accepted = state.withLock { s -> Bool in
            if s.hardStopped { return false }
            s.inFlight[run] = InFlight()
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
            do { outcome = .completed(Self.normalizedJSON(try body(job))) } catch { outcome = Self.outcome(of: error) }
        }
        state.withLock { $0.threadsInProcessor -= 1 }
        let fetchNext = state.withLock { $0.phase == .running && !$0.localPaused }
        return finish(run, job, outcome: outcome, client: client, fetchNext: fetchNext)
    }

    private static func outcome(of error: Error) -> Outcome {
        if let e = error as? UnrecoverableError { return .failed(reason: e.message, unrecoverable: true) }
        return .failed(reason: "\(error)", unrecoverable: false)
    }

    /// Writes a run's outcome (unless the run lost its job) and forgets the run; returns the next
    /// job if `fetchNext` and the finish script handed one out.
    private func finish(_ run: Run, _ job: Job, outcome: Outcome, client: RedisClient, fetchNext: Bool) -> Fetched? {
        defer { state.withLock { _ = $0.inFlight.removeValue(forKey: run) } }
        let nextToken = fetchNext ? self.nextToken() : ""
        let (script, args) = finishCall(job, token: run.token, outcome: outcome, fetchNext: fetchNext, nextToken: nextToken)
        let r: RedisReply
        switch runOwned(run, client: client, { try client.eval(script, args: args) }) {
        case .gaveUp(let why, let detail):
            gaveUp(run, why, detail)
            return nil
        case .done(let reply): r = reply
        }
        options.afterFinishScript?(run.id)
        if case .int(let code) = r, code < 0 {
            gaveUp(run, .notOwned, ["code": .int(code)])
            return nil
        }
        return parseFetch(r, token: nextToken).0
    }

    // MARK: - async mode

    /// A fetcher thread: takes a job whenever a place is free, hands it to a task, and blocks on
    /// the marker when the queue is empty.
    private func fetchLoop(client: RedisClient) {
        defer { state.withLock { $0.threadsAlive -= 1 } }
        var errorPauseMs = 0
        while true {
            let (stopping, paused) = state.withLock { ($0.phase != .running, $0.localPaused) }
            if stopping { return }
            if paused { usleep(50_000); continue }
            guard slots.wait(timeout: .now() + .milliseconds(options.maxBlockMs)) == .success else { continue }
            do {
                let token = nextToken()
                let r = try client.eval(QueueScripts.moveToActive, args: [base, String(Clock.wallMillis()), token, String(options.lockDurationMs)])
                let (fetched, nextDue) = parseFetch(r, token: token)
                if let f = fetched {
                    launch(f)
                } else {
                    slots.signal()
                    try waitForWork(client, nextDelayedDue: nextDue)
                }
                errorPauseMs = 0
            } catch {
                slots.signal()
                errorPauseMs = min(max(errorPauseMs * 2, 50), 2_000)
                logger.warn("queue worker redis call failed", ["queue": .string(queueName), "error": .string("\(error)")])
                usleep(UInt32(errorPauseMs) * 1000)
            }
        }
    }

    /// Runs a fetched job as a task on the executor; its place is freed when its outcome is written.
    private func launch(_ f: Fetched) {
        guard case .async(let body, let executor, _) = processor else { return }
        let run = Run(id: f.id, token: f.token)
        let (accepted, n) = state.withLock { s -> (Bool, Int) in
            if s.hardStopped { return (false, 0) }
            s.inFlight[run] = InFlight()
            s.finishSeq &+= 1
            return (true, s.finishSeq)
        }
        let client = finishClients[n % finishClients.count]
        guard accepted else {
            release(id: f.id, token: f.token, client: client)
            slots.signal()
            return
        }
        let job = Job(id: f.id, fields: f.fields, context: JobContext(client: client, base: base))
        Task(executorPreference: executor) { [self] in
            let outcome: Outcome
            if let defa = job.deferredFailure {
                outcome = .failed(reason: defa, unrecoverable: true)
            } else {
                do { outcome = .completed(Self.normalizedJSON(try await body(job))) } catch { outcome = Self.outcome(of: error) }
            }
            _ = finish(run, job, outcome: outcome, client: client, fetchNext: false)
            slots.signal()
        }
    }

    /// Logs and counts a run whose outcome is not written; the job is left to its current owner
    /// or, if it has none, to the stalled checker.
    private func gaveUp(_ run: Run, _ why: WorkerCounters.GivenUp, _ detail: [String: JSON] = [:]) {
        state.withLock { $0.counters.finishesGivenUp[why, default: 0] += 1 }
        var fields: [String: JSON] = ["queue": .string(queueName), "jobId": .string(run.id), "reason": .string(why.rawValue)]
        fields.merge(detail) { a, _ in a }
        logger.warn("queue job finish given up: the run no longer owns the job, its outcome is not written", fields)
        options.onFinishGivenUp?(queueName, run.id, why)
    }

    /// Chooses the transition: complete, retry after a backoff, retry now, or fail for good.
    private func finishCall(_ job: Job, token: String, outcome: Outcome, fetchNext: Bool, nextToken: String) -> (RedisScript, [String]) {
        let now = String(Clock.wallMillis())
        switch outcome {
        case .completed(let rv):
            let keep = KeepJobs(json: job.opts["removeOnComplete"]) ?? options.removeOnComplete
            return (QueueScripts.moveToFinished,
                    [base, job.id, token, now, "completed", "returnvalue", rv] + keepArgs(keep)
                        + [String(job.maxAttempts), fetchNext ? "1" : "0", nextToken, String(options.lockDurationMs), metricsArg])
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
                        + [String(job.maxAttempts), fetchNext ? "1" : "0", nextToken, String(options.lockDurationMs), metricsArg] + fields)
        }
    }

    /// BullMQ's `metrics.maxDataPoints`, or '' when the worker keeps no metrics.
    private var metricsArg: String { options.metricsMaxDataPoints.map { String(max($0, 1)) } ?? "" }

    private func keepArgs(_ k: KeepJobs) -> [String] {
        [String(k.scriptCount), k.ageSeconds.map(String.init) ?? "", String(k.limit ?? 1000)]
    }

    /// Processor results are stored as JSON; text that is not JSON is stored as a JSON string.
    static func normalizedJSON(_ s: String) -> String {
        if s.isEmpty { return "null" }
        if (try? JSONParser.parse(s)) != nil { return s }
        return JSON.string(s).serialized()
    }

    private enum Owned {
        case done(RedisReply)
        case gaveUp(WorkerCounters.GivenUp, [String: JSON])
    }

    /// Runs a transition of an owned run, retrying while Redis is unreachable, until it succeeds
    /// or the run stops owning its job.
    private func runOwned(_ run: Run, client: RedisClient, _ body: () throws -> RedisReply) -> Owned {
        var pauseMs = 50
        while true {
            let lost = state.withLock { s -> WorkerCounters.GivenUp? in
                // Only a run still in the table may write; a missing one is never written blindly.
                guard let f = s.inFlight[run] else { return .notOwned }
                return f.lost
            }
            if let lost { return .gaveUp(lost, [:]) }
            do { return .done(try body()) } catch let e as RedisError where e.isConnectionError {
                logger.warn("queue worker cannot reach redis; retrying", ["queue": .string(queueName), "jobId": .string(run.id)])
                usleep(UInt32(pauseMs) * 1000)
                pauseMs = min(pauseMs * 2, 2_000)
            } catch {
                return .gaveUp(.error, ["error": .string("\(error)")])
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
        let owned = state.withLock { s -> [Run] in
            if s.renewalSuspended { return [] }
            return s.inFlight.filter { $0.value.lost == nil }.map(\.key)
        }
        if owned.isEmpty { return }
        var args = [base, String(options.lockDurationMs)]
        for run in owned { args.append(run.id); args.append(run.token) }
        do {
            let reply = try maintenanceClient.eval(QueueScripts.extendLocks, args: args).strings
            let failed = stride(from: 0, to: reply.count - 1, by: 2).map { Run(id: reply[$0], token: reply[$0 + 1]) }
            if failed.isEmpty { return }
            state.withLock { s in
                for run in failed where s.inFlight[run] != nil && s.inFlight[run]?.lost == nil { s.inFlight[run]?.lost = .lockLost }
            }
            logger.warn("queue lost job locks", ["queue": .string(queueName), "jobIds": .array(failed.map { .string($0.id) })])
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
