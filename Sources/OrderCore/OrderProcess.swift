import Foundation
import JSON
import RPC
import Runtime
import Store
import Queue
import Domain
import HTTPClient


public enum OrderProcess {
    /// Opens what the service needs and returns its RPC methods; `ServiceHost.main` runs it.
    @Sendable public static func build(_ env: ServiceEnvironment) throws -> ServiceParts {
        let store = try StoreFactory.open(service: ServiceName.order, dataDir: env.config.dataDir, mongoURI: env.config.mongoURI, log: env.log)
        env.onStop("store") { store.close() }
        let repo = OrderRepository(store: store)
        try repo.prepare()
        let createQueue = try JobQueue(name: QueueNames.orders, prefix: QueueNames.prefix, redisURL: env.config.redisURL)
        env.onStop("create queue") { createQueue.close() }
        let cancelQueue = try JobQueue(name: QueueNames.cancellations, prefix: QueueNames.prefix, redisURL: env.config.redisURL)
        env.onStop("cancel queue") { cancelQueue.close() }
        // Signed webhooks: the events' store, their queue, an HTTP client of their own and the worker.
        let whSettings = WebhookSettings(env.config)
        let whQueue = try JobQueue(name: WebhookService.queueName, prefix: QueueNames.prefix, redisURL: env.config.redisURL)
        env.onStop("webhook queue") { whQueue.close() }
        var whHTTP = CurlClientOptions()
        whHTTP.connectTimeoutMs = min(whSettings.timeoutMs, 10_000)
        whHTTP.totalTimeoutMs = whSettings.timeoutMs
        whHTTP.maxResponseBytes = 4096
        whHTTP.maxConnectionsPerHost = 8
        let whClient = try CurlHTTPClient(options: whHTTP, name: "webhook-http")
        env.onStop("webhook http client") { whClient.close() }
        let webhooks = WebhookService(store: store, queue: whQueue, http: whClient, settings: whSettings, log: env.log)
        try webhooks.prepare()
        // OOPS_ORDER_FAILPOINT is for crash tests only (see `OrderService.Failpoint`).
        let failpoint = OrderService.Failpoint(env.config.string("OOPS_ORDER_FAILPOINT", default: ""))
        if let f = failpoint { env.log.warn("test failpoint armed", ["clientOrderId": .string(f.clientOrderId), "seq": .int(Int64(f.seq))]) }
        let service = OrderService(
            repo: repo,
            wallet: RPCClient(runDir: env.config.runDir, service: ServiceName.wallet),
            auth: RPCClient(runDir: env.config.runDir, service: ServiceName.auth),
            createQueue: createQueue, cancelQueue: cancelQueue, log: env.log, webhooks: webhooks, failpoint: failpoint)
        var whOptions = WorkerOptions()
        whOptions.logger = env.log
        whOptions.name = "order-webhooks-\(env.config.instance)"
        let whExecutor = ThreadPoolExecutor(threads: 2, name: "webhook-job")
        let whWorker = try Worker(queueName: WebhookService.queueName, prefix: QueueNames.prefix, redisURL: env.config.redisURL, fetchers: 1,
                                  maxInFlight: whSettings.maxInFlight, executor: whExecutor, options: whOptions) { job in
            try await webhooks.process(job).serialized()
        }
        whWorker.start()
        env.onStop("webhook worker") { whWorker.stop(graceMs: 10_000) }
        // Webhook events are kept OOPS_WEBHOOK_RETENTION_DAYS; an hourly sweep removes older ones.
        let whRetention = PeriodicTask(name: "webhook-retention", intervalMs: 3_600_000, initialDelayMs: 5000) {
            do {
                let n = try webhooks.removeEvents(olderThanMs: Clock.wallMillis() - Int64(whSettings.retentionDays) * 86_400_000)
                if n > 0 { env.log.info("webhook events past retention removed", ["count": .int(Int64(n))]) }
            } catch {
                env.log.warn("webhook retention sweep failed", ["error": .string(String(describing: error))])
            }
        }
        env.onStop("webhook retention") { whRetention.stop() }

        let m = Metrics.shared
        m.describe([
            "oops_orders_created_total": "Orders accepted (new).",
            "oops_orders_replayed_total": "Create requests answered from an existing order (sameFingerprint=false means 409).",
            "oops_orders_refused_total": "New orders refused after they were stored (e.g. insufficient balance).",
            "oops_orders_cancel_requested_total": "Cancellations queued.",
            "oops_order_transitions_total": "Status changes from provider outcomes (orders.provider.*), by new status.",
            "oops_orders_recovered_total": "Interrupted orders finished by the recovery pass.",
            "oops_order_charges_paise_total": "Shipping charges taken for new orders, in paise.",
            "oops_webhook_events_deferred_total": "Order changes whose webhook events were not recorded by their request (left to the recovery pass).",
        ])
        // The recovery pass: at start and every few seconds, on its own timer.
        let interval = env.config.int("OOPS_ORDER_RECOVERY_MS", default: 5000)
        let recovery = PeriodicTask(name: "order.recovery", intervalMs: interval, initialDelayMs: 500) {
            _ = service.recoverOnce()
            _ = service.recoverWebhooksOnce()
        }
        env.onStop("recovery") { recovery.stop() }
        // The reconciliation with the queues (jobs a Redis failover lost): every 30 s, for orders
        // unchanged for a minute.
        m.describe("oops_orders_jobs_readded_total", "Provider jobs found missing from every queue state and added again.")
        let reconcileAfter = Int64(env.config.int("OOPS_ORDER_RECONCILE_AFTER_MS", default: 60_000, range: 1000...86_400_000))
        let reconcile = PeriodicTask(name: "order.reconcile-jobs", intervalMs: env.config.int("OOPS_ORDER_RECONCILE_MS", default: 30_000, range: 100...86_400_000),
                                     initialDelayMs: 2000) { _ = service.reconcileJobsOnce(olderThanMs: reconcileAfter) }
        env.onStop("job reconciliation") { reconcile.stop() }

        let timeline = OrderTimeline(repo: repo, wallet: service.wallet, parcelx: RPCClient(runDir: env.config.runDir, service: ServiceName.parcelx),
                                     log: env.log)
        return ServiceParts(methods: OrderHandlers.methods(service) + OrderHandlers.timelineMethods(timeline) + OrderHandlers.webhookMethods(webhooks)) {
            var checks: [String: JSON] = [:]
            checks["store"] = store.healthCheck
            checks["redis"] = createQueue.healthCheck
            return checks
        }
    }
}
