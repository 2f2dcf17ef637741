import Foundation
import JSON
import RPC
import Runtime
import Store
import Queue
import Domain

ServiceHost.main(name: ServiceName.parcelx) { env in
    let c = env.config
    let store = try StoreFactory.open(service: ServiceName.parcelx, dataDir: c.dataDir, mongoURI: c.mongoURI, log: env.log)
    let logs = ProviderLogRepository(store: store)
    try logs.prepare()
    let createQueue = try JobQueue(name: QueueNames.orders, prefix: QueueNames.prefix, redisURL: c.redisURL)
    let cancelQueue = try JobQueue(name: QueueNames.cancellations, prefix: QueueNames.prefix, redisURL: c.redisURL)
    let client = ParcelXClient(baseURL: c.parcelxBaseURL, accessKey: c.parcelxAccessKey, secretKey: c.parcelxSecretKey,
                               requestTimeoutS: Double(c.int("PARCELX_TIMEOUT_MS", default: 10_000)) / 1000,
                               totalTimeoutS: Double(c.int("PARCELX_TOTAL_TIMEOUT_MS", default: 15_000)) / 1000,
                               maxConnections: c.int("PARCELX_MAX_CONNECTIONS", default: 64))
    let service = ParcelXOrderService(client: client, logs: logs, orders: RPCClient(runDir: c.runDir, service: ServiceName.order, poolSize: 4),
                                      log: env.log, defaultAttempts: QueueDefaults.standard.attempts)

    @Sendable func orderId(_ job: Job) throws -> String {
        guard let d = try? JSONParser.parse(job.dataJSON), let id = d["orderId"]?.stringValue, !id.isEmpty else {
            throw UnrecoverableError("job data has no orderId")
        }
        return id
    }
    let spike = FailureSpikeMonitor(windowMs: Int64(c.int("OOPS_ALERT_FAILED_JOBS_WINDOW_S", default: 300)) * 1000,
                                    threshold: c.int("OOPS_ALERT_FAILED_JOBS_THRESHOLD", default: 20),
                                    webhook: URL(string: c.string("OOPS_ALERT_WEBHOOK_URL", default: "")), log: env.log)
    let alertTicker = PeriodicTask(name: "alerts", intervalMs: 1000) { spike.evaluate() }
    let m = Metrics.shared
    m.describe("oops_queue_jobs", "Jobs in each state of each queue, read at scrape time.")
    m.describe("oops_queue_jobs_completed_total", "Jobs completed by this worker process.")
    m.describe("oops_queue_jobs_failed_total", "Jobs that failed for good (attempts exhausted or not retryable).")
    m.describe("oops_queue_jobs_retried_total", "Failed attempts that will be retried.")
    m.describe("oops_queue_job_finishes_given_up_total",
               "Job runs whose finish (outcome) was given up because the run no longer owned its job, by reason (lock_lost, released, not_owned, error).")
    m.describe("oops_provider_calls_total", "ParcelX calls by operation and outcome.")
    m.describe("oops_provider_call_duration_seconds", "ParcelX call latency by operation.")
    m.describe("oops_alert_firing", "1 while an alert fires.")
    m.gauges {
        var out: [(String, [String: String], Double)] = [("oops_alert_firing", ["alert": "failed_job_spike"], spike.firing ? 1 : 0)]
        for q in [createQueue, cancelQueue] {
            guard let counts = try? q.counts().json.objectValue else { continue }
            for (state, n) in counts { out.append(("oops_queue_jobs", ["queue": q.name, "state": state], n.doubleValue ?? 0)) }
            out.append(("oops_queue_paused", ["queue": q.name], ((try? q.isPaused()) ?? false) ? 1 : 0))
        }
        return out
    }
    /// Counts every job outcome per queue and feeds failures to the spike alert.
    @Sendable func measured(_ queue: String, _ job: Job, _ body: () throws -> String) throws -> String {
        do {
            let r = try body()
            m.increment("oops_queue_jobs_completed_total", ["queue": queue])
            return r
        } catch {
            let attempts = Int(job.opts["attempts"]?.intValue ?? Int64(QueueDefaults.standard.attempts))
            let final = error is UnrecoverableError || job.attemptsMade + 1 >= attempts
            m.increment(final ? "oops_queue_jobs_failed_total" : "oops_queue_jobs_retried_total", ["queue": queue])
            spike.recordFailure(queue: queue)
            throw error
        }
    }
    var wopts = WorkerOptions()
    wopts.logger = env.log
    wopts.lockDurationMs = c.int("OOPS_QUEUE_LOCK_DURATION_MS", default: 30_000)
    wopts.stalledIntervalMs = c.int("OOPS_QUEUE_STALLED_INTERVAL_MS", default: 30_000)
    // A job caught in several worker crashes runs again rather than failing unrun: each run
    // looks the order up at the provider first, so running again never books twice.
    wopts.maxStalledCount = c.int("OOPS_QUEUE_MAX_STALLED", default: QueueDefaults.standard.attempts)
    wopts.name = "parcelx-\(c.instance)"
    wopts.onFinishGivenUp = { queue, _, reason in
        m.increment("oops_queue_job_finishes_given_up_total", ["queue": queue, "reason": reason.rawValue])
    }
    let createWorker = try Worker(queueName: QueueNames.orders, prefix: QueueNames.prefix, redisURL: c.redisURL,
                                  concurrency: c.int("OOPS_PARCELX_CREATE_CONCURRENCY", default: 16), options: wopts) { job in
        try measured(QueueNames.orders, job) { try service.processParcelXOrder(orderId: orderId(job), job: job).serialized() }
    }
    let cancelWorker = try Worker(queueName: QueueNames.cancellations, prefix: QueueNames.prefix, redisURL: c.redisURL,
                                  concurrency: c.int("OOPS_PARCELX_CANCEL_CONCURRENCY", default: 4), options: wopts) { job in
        try measured(QueueNames.cancellations, job) { try service.processParcelXOrderCancellation(orderId: orderId(job), job: job).serialized() }
    }
    createWorker.start()
    cancelWorker.start()
    env.lifecycle.onStop("store") {
        createQueue.close()
        cancelQueue.close()
        store.close()
    }
    env.lifecycle.onStop("alerts") { alertTicker.stop() }
    env.lifecycle.onStop("workers") {
        createWorker.stop(graceMs: 20_000)
        cancelWorker.stop(graceMs: 20_000)
    }

    let providerLogs = Method("parcelx.providerLogs", summary: "Every provider request and response for an order, secrets redacted",
                              roles: [.admin, .system], params: .object([("orderId", .id)], required: ["orderId"]), result: .anything) { p, ctx throws in
        let orderId = try p.requiredString("orderId")
        let found: JSON
        do { found = try logs.logs(orderId: orderId) } catch {
            env.log.error("provider log read failed", requestId: ctx.requestId, ["error": .string(String(describing: error))])
            throw RPCError.unavailable("Log store unavailable")
        }
        if found["requestCount"] == 0 {
            // No calls yet: tell an unknown order (404) from one the provider was not asked about.
            _ = try service.orders.call("orders.internal.get", ["orderId": .string(orderId)],
                                        ctx: RPCContext(requestId: ctx.requestId, actor: .system, deadline: ctx.deadline))
        }
        return found
    }
    let queues = [QueueNames.orders: createQueue, QueueNames.cancellations: cancelQueue]
    let alerts = Method("queues.alerts", summary: "Alert states of the queue consumers (failed-job spike)", roles: [.admin, .system],
                        params: .empty, result: .anything) { _, _ in .array([spike.state]) }
    return ServiceParts(methods: [providerLogs, alerts] + QueueAdmin.methods(queues)) {
        var checks: [String: JSON] = [:]
        checks["store"] = store.healthCheck
        checks["redis"] = createQueue.healthCheck
        checks["workers"] = ["ok": true, "active": .int(Int64(createWorker.activeJobIds.count + cancelWorker.activeJobIds.count)),
                             "finishesGivenUp": .int(Int64(createWorker.counters.finishesGivenUpTotal + cancelWorker.counters.finishesGivenUpTotal))]
        // An alert is information for operators, not a reason to take the instance out of service.
        var alert = spike.state
        alert["ok"] = true
        checks["failedJobSpike"] = alert
        return checks
    }
}
