import Foundation
import JSON
import RPC
import Runtime
import Store
import Queue
import Domain
import HTTPClient


public enum ParcelXProcess {
    /// Opens what the service needs and returns its RPC methods; `ServiceHost.main` runs it.
    @Sendable public static func build(_ env: ServiceEnvironment) throws -> ServiceParts {
        let c = env.config
        let store = try StoreFactory.open(service: ServiceName.parcelx, dataDir: c.dataDir, mongoURI: c.mongoURI, log: env.log)
        env.onStop("store") { store.close() }
        let logs = ProviderLogRepository(store: store)
        try logs.prepare()
        let createQueue = try JobQueue(name: QueueNames.orders, prefix: QueueNames.prefix, redisURL: c.redisURL)
        env.onStop("create queue") { createQueue.close() }
        let cancelQueue = try JobQueue(name: QueueNames.cancellations, prefix: QueueNames.prefix, redisURL: c.redisURL)
        env.onStop("cancel queue") { cancelQueue.close() }
        let trackQueue = try JobQueue(name: QueueNames.tracking, prefix: QueueNames.prefix, redisURL: c.redisURL, defaults: .tracking)
        env.onStop("tracking queue") { trackQueue.close() }
        /// A number from the environment, refused at start when outside its range.
        func limit(_ key: String, default d: Int, _ range: ClosedRange<Int>) throws -> Int {
            let v = c.int(key, default: d)
            guard range.contains(v) else { throw RuntimeError("\(key) must be \(range.lowerBound)-\(range.upperBound), got \(v)") }
            return v
        }
        // Provider calls in flight per queue: each is a task suspended on the HTTP client, holding
        // no thread and no Redis connection. The cancel queue has its own places, so a create
        // backlog never keeps cancellations waiting for one.
        let createInFlight = try limit("OOPS_PARCELX_MAX_IN_FLIGHT", default: 1000, 1...100_000)
        let cancelInFlight = try limit("OOPS_PARCELX_CANCEL_MAX_IN_FLIGHT", default: 64, 1...100_000)
        let trackInFlight = try limit("OOPS_TRACK_MAX_IN_FLIGHT", default: 64, 1...100_000)
        let fetchers = try limit("OOPS_PARCELX_FETCHERS", default: 2, 1...16)
        let executor = ThreadPoolExecutor(threads: try limit("OOPS_PARCELX_THREADS", default: 8, 1...256), name: "parcelx-job")
        var httpOptions = CurlClientOptions()
        httpOptions.connectTimeoutMs = c.int("PARCELX_TIMEOUT_MS", default: 10_000)
        httpOptions.totalTimeoutMs = c.int("PARCELX_TOTAL_TIMEOUT_MS", default: 15_000)
        httpOptions.maxConnectionsPerHost = c.int("PARCELX_MAX_CONNECTIONS", default: createInFlight + cancelInFlight + trackInFlight)
        let caFile = c.string("PARCELX_CA_FILE", default: "")
        httpOptions.caFile = caFile.isEmpty ? nil : caFile
        let http = try CurlHTTPClient(options: httpOptions, name: "parcelx-http")
        env.onStop("provider http client") { http.close() }
        // What the provider may be sent, and how a slow or refusing provider is backed off from.
        var providerLimits = ProviderLimits()
        providerLimits.callsPerSecond = Double(try limit("PARCELX_MAX_CALLS_PER_S", default: 0, 0...1_000_000))
        providerLimits.maxConcurrent = try limit("PARCELX_MAX_CONCURRENT_CALLS", default: httpOptions.maxConnectionsPerHost, 1...100_000)
        providerLimits.breakerFailures = try limit("PARCELX_BREAKER_FAILURES", default: 20, 1...1_000_000)
        providerLimits.breakerOpenMs = try limit("PARCELX_BREAKER_OPEN_MS", default: 5_000, 1...3_600_000)
        providerLimits.maxRetryAfterMs = try limit("PARCELX_MAX_RETRY_AFTER_MS", default: 60_000, 0...3_600_000)
        providerLimits.maxHoldMs = try limit("PARCELX_MAX_HOLD_MS", default: 60_000, 1...86_400_000)
        let gate = try ProviderGate(http, limits: providerLimits, name: "parcelx-gate")
        env.onStop("provider gate") { gate.stop() }
        let client = ParcelXClient(baseURL: c.parcelxBaseURL, accessKey: c.parcelxAccessKey, secretKey: c.parcelxSecretKey, transport: gate)
        let service = ParcelXOrderService(client: client, logs: logs, orders: RPCClient(runDir: c.runDir, service: ServiceName.order, poolSize: 4),
                                          log: env.log, defaultAttempts: QueueDefaults.standard.attempts,
                                          tracking: TrackingPolls(queue: trackQueue, schedule: TrackingSchedule(c)))
        // Provider logs are kept for OOPS_PROVIDER_LOG_RETENTION_DAYS; older ones are removed hourly
        // (and at start), so tracking polls do not grow the audit log without bound.
        let retentionDays = try limit("OOPS_PROVIDER_LOG_RETENTION_DAYS", default: 30, 1...3650)
        let retention = PeriodicTask(name: "provider-log-retention", intervalMs: c.int("OOPS_PROVIDER_LOG_SWEEP_MS", default: 3_600_000, range: 1000...86_400_000)) {
            do {
                let removed = try logs.removeOlder(thanMs: Clock.wallMillis() - Int64(retentionDays) * 86_400_000)
                if removed > 0 { env.log.info("provider logs past retention removed", ["count": .int(Int64(removed)), "days": .int(Int64(retentionDays))]) }
            } catch {
                env.log.warn("provider log retention sweep failed", ["error": .string(String(describing: error))])
            }
        }
        env.onStop("provider log retention") { retention.stop() }

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
        env.onStop("alerts") { alertTicker.stop() }
        // Provider latency over time (the dashboard's chart): a sample per period, the latest 3 hours' worth by default.
        let latencyHistory = try ProviderLatencyHistory(redisURL: c.redisURL, keep: try limit("OOPS_PROVIDER_LATENCY_SAMPLES", default: 180, 1...10_080))
        env.onStop("latency history") { latencyHistory.close() }
        let latencySampler = PeriodicTask(name: "latency-samples", intervalMs: try limit("OOPS_PROVIDER_LATENCY_SAMPLE_MS", default: 60_000, 100...3_600_000),
                                          initialDelayMs: 1000) {
            do { try latencyHistory.record(gate.state, instance: c.instance) } catch {
                env.log.warn("provider latency sample not recorded", ["error": .string(String(describing: error))])
            }
        }
        env.onStop("latency sampler") { latencySampler.stop() }
        let m = Metrics.shared
        m.describe([
            "oops_queue_jobs": "Jobs in each state of each queue, read at scrape time.",
            "oops_queue_jobs_completed_total": "Jobs completed by this worker process.",
            "oops_queue_jobs_failed_total": "Jobs that failed for good (attempts exhausted or not retryable).",
            "oops_queue_jobs_retried_total": "Failed attempts that will be retried.",
            "oops_queue_job_finishes_given_up_total": "Job runs whose finish (outcome) was given up because the run no longer owned its job, by reason (lock_lost, released, not_owned, error).",
            "oops_provider_calls_total": "ParcelX calls by operation and outcome.",
            "oops_provider_call_duration_seconds": "ParcelX call latency by operation.",
            "oops_alert_firing": "1 while an alert fires.",
            "oops_tracking_unknown_status_total": "Tracking polls that saw a provider status the tracking map does not know (kept raw).",
            "oops_provider_calls_in_flight": "ParcelX calls sent and not yet answered.",
            "oops_provider_calls_waiting": "ParcelX calls held back by the provider limits, a Retry-After pause or an open breaker.",
            "oops_provider_window": "ParcelX calls allowed at once now (halved on 429, grown back by successes).",
            "oops_provider_breaker_state": "1 for the breaker's current state (closed, open, half_open).",
            "oops_provider_call_latency_seconds": "ParcelX latency quantiles over the latest 1024 answers.",
            "oops_provider_resent_total": "ParcelX calls sent again after a 429 or a 503 with Retry-After.",
            "oops_provider_breaker_opened_total": "Times the provider breaker opened.",
        ])
        m.gauges {
            var out: [(String, [String: String], Double)] = [("oops_alert_firing", ["alert": "failed_job_spike"], spike.firing ? 1 : 0)]
            let p = gate.state
            out += [("oops_provider_calls_in_flight", [:], Double(p.inFlight)), ("oops_provider_calls_waiting", [:], Double(p.waiting)),
                    ("oops_provider_window", [:], Double(p.window)), ("oops_provider_resent_total", [:], Double(p.resentTotal)),
                    ("oops_provider_breaker_opened_total", [:], Double(p.breakerOpenedTotal))]
            for b in [ProviderGateState.Breaker.closed, .open, .halfOpen] {
                out.append(("oops_provider_breaker_state", ["state": b.rawValue], p.breaker == b ? 1 : 0))
            }
            for (q, v) in p.latencyQuantiles { out.append(("oops_provider_call_latency_seconds", ["quantile": String(q)], v)) }
            for q in [createQueue, cancelQueue, trackQueue] {
                guard let counts = try? q.counts().json.objectValue else { continue }
                for (state, n) in counts { out.append(("oops_queue_jobs", ["queue": q.name, "state": state], n.doubleValue ?? 0)) }
                out.append(("oops_queue_paused", ["queue": q.name], ((try? q.isPaused()) ?? false) ? 1 : 0))
            }
            return out
        }
        /// Counts every job outcome per queue and feeds failures to the spike alert.
        @Sendable func measured(_ queue: String, _ job: Job, _ body: () async throws -> String) async throws -> String {
            do {
                let r = try await body()
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
        // Per-minute counts in BullMQ's metrics layout (the dashboard's charts, Taskforce-style tools).
        let metricsPoints = try limit("OOPS_QUEUE_METRICS_MINUTES", default: 10_080, 0...100_000)
        wopts.metricsMaxDataPoints = metricsPoints == 0 ? nil : metricsPoints
        wopts.onFinishGivenUp = { queue, _, reason in
            m.increment("oops_queue_job_finishes_given_up_total", ["queue": queue, "reason": reason.rawValue])
        }
        let createWorker = try Worker(queueName: QueueNames.orders, prefix: QueueNames.prefix, redisURL: c.redisURL, fetchers: fetchers,
                                      maxInFlight: createInFlight, executor: executor, options: wopts) { job in
            try await measured(QueueNames.orders, job) { try await service.processParcelXOrder(orderId: orderId(job), job: job).serialized() }
        }
        let cancelWorker = try Worker(queueName: QueueNames.cancellations, prefix: QueueNames.prefix, redisURL: c.redisURL, fetchers: 1,
                                      maxInFlight: cancelInFlight, executor: executor, options: wopts) { job in
            try await ParcelXClient.$urgent.withValue(true) {
                try await measured(QueueNames.cancellations, job) {
                    try await service.processParcelXOrderCancellation(orderId: orderId(job), job: job).serialized()
                }
            }
        }
        let trackWorker = try Worker(queueName: QueueNames.tracking, prefix: QueueNames.prefix, redisURL: c.redisURL, fetchers: 1,
                                     maxInFlight: trackInFlight, executor: executor, options: wopts) { job in
            try await measured(QueueNames.tracking, job) { try await service.processTrackingPoll(orderId: orderId(job), job: job).serialized() }
        }
        createWorker.start()
        cancelWorker.start()
        trackWorker.start()
        env.onStop("workers") {
            createWorker.stop(graceMs: 20_000)
            cancelWorker.stop(graceMs: 20_000)
            trackWorker.stop(graceMs: 20_000)
        }

        let providerLogs = Method("parcelx.providerLogs", summary: "Every provider request and response for an order, secrets redacted",
                                  roles: [.admin, .system], params: .object([("orderId", .id)], required: ["orderId"]), result: .anything) { p, ctx throws in
            let orderId = try p.requiredString("orderId")
            let found = try logs.logs(orderId: orderId)
            if found["requestCount"] == 0 {
                // No calls yet: tell an unknown order (404) from one the provider was not asked about.
                _ = try service.orders.call("orders.internal.get", ["orderId": .string(orderId)],
                                            ctx: RPCContext(requestId: ctx.requestId, actor: .system, deadline: ctx.deadline))
            }
            return found
        }
        let provider = Method("parcelx.provider", summary: "The provider gate: calls in flight and waiting, breaker, latency quantiles",
                              roles: [.admin, .system], params: .empty, result: .anything) { _, _ in
            let p = gate.state
            return ["breaker": .string(p.breaker.rawValue), "inFlight": .int(Int64(p.inFlight)), "waiting": .int(Int64(p.waiting)),
                    "window": .int(Int64(p.window)), "pausedForMs": .int(Int64(p.pausedForMs)), "resentTotal": .int(Int64(p.resentTotal)),
                    "breakerOpenedTotal": .int(Int64(p.breakerOpenedTotal)),
                    "latencySeconds": .object(Dictionary(uniqueKeysWithValues: p.latencyQuantiles.map { ("p\(Int($0.0 * 100))", JSON.double($0.1)) }))]
        }
        let latency = Method("parcelx.latencyHistory", summary: "Provider latency samples (p50/p90/p99 ms) of every ParcelXSvc instance, newest first",
                             roles: [.admin, .system], params: .object([("limit", .int(min: 1, max: 10_080))]), result: .anything) { p, _ throws in
            do {
                return ["instances": .object(try latencyHistory.read(limit: Int(p["limit"]?.intValue ?? 180)).mapValues { .array($0) })]
            } catch { throw RPCError.unavailable("Redis unavailable") }
        }
        let queues = [QueueNames.orders: createQueue, QueueNames.cancellations: cancelQueue, QueueNames.tracking: trackQueue]
        let alerts = Method("queues.alerts", summary: "Alert states of the queue consumers (failed-job spike)", roles: [.admin, .system],
                            params: .empty, result: .anything) { _, _ in .array([spike.state]) }
        let activity = OrderActivity.method(logs: logs, queues: queues, log: env.log)
        return ServiceParts(methods: [providerLogs, alerts, provider, activity, latency] + QueueAdmin.methods(queues)) {
            var checks: [String: JSON] = [:]
            checks["store"] = store.healthCheck
            checks["redis"] = createQueue.healthCheck
            checks["workers"] = ["ok": true, "active": .int(Int64(createWorker.activeJobIds.count + cancelWorker.activeJobIds.count + trackWorker.activeJobIds.count)),
                                 "finishesGivenUp": .int(Int64(createWorker.counters.finishesGivenUpTotal + cancelWorker.counters.finishesGivenUpTotal
                                                               + trackWorker.counters.finishesGivenUpTotal))]
            // An alert is information for operators, not a reason to take the instance out of service.
            var alert = spike.state
            alert["ok"] = true
            checks["failedJobSpike"] = alert
            return checks
        }
    }
}
