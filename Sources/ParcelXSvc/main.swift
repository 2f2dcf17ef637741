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
                                      cancelQueue: cancelQueue, log: env.log, defaultAttempts: QueueDefaults.standard.attempts)

    @Sendable func orderId(_ job: Job) throws -> String {
        guard let d = try? JSONParser.parse(job.dataJSON), let id = d["orderId"]?.stringValue, !id.isEmpty else {
            throw UnrecoverableError("job data has no orderId")
        }
        return id
    }
    var wopts = WorkerOptions()
    wopts.logger = env.log
    wopts.name = "parcelx-\(c.instance)"
    let createWorker = try Worker(queueName: QueueNames.orders, prefix: QueueNames.prefix, redisURL: c.redisURL,
                                  concurrency: c.int("OOPS_PARCELX_CREATE_CONCURRENCY", default: 16), options: wopts) { job in
        try service.processParcelXOrder(orderId: orderId(job), job: job).serialized()
    }
    let cancelWorker = try Worker(queueName: QueueNames.cancellations, prefix: QueueNames.prefix, redisURL: c.redisURL,
                                  concurrency: c.int("OOPS_PARCELX_CANCEL_CONCURRENCY", default: 4), options: wopts) { job in
        try service.processParcelXOrderCancellation(orderId: orderId(job), job: job).serialized()
    }
    createWorker.start()
    cancelWorker.start()
    env.lifecycle.onStop("store") {
        createQueue.close()
        cancelQueue.close()
        store.close()
    }
    env.lifecycle.onStop("workers") {
        createWorker.stop(graceMs: 20_000)
        cancelWorker.stop(graceMs: 20_000)
    }

    let providerLogs = Method("parcelx.providerLogs", summary: "Every provider request and response for an order, secrets redacted",
                              roles: [.admin, .system], params: .object([("orderId", .id)], required: ["orderId"]), result: .anything) { p, ctx throws in
        do { return try logs.logs(orderId: p["orderId"]!.stringValue!) } catch {
            env.log.error("provider log read failed", requestId: ctx.requestId, ["error": .string(String(describing: error))])
            throw RPCError.unavailable("Log store unavailable")
        }
    }
    let queues = [QueueNames.orders: createQueue, QueueNames.cancellations: cancelQueue]
    return ServiceParts(methods: [providerLogs] + QueueAdmin.methods(queues)) {
        var checks: [String: JSON] = [:]
        do { try store.ping(); checks["store"] = ["ok": true, "backend": .string(store.backend)] } catch {
            checks["store"] = ["ok": false, "error": .string(String(describing: error))]
        }
        do { _ = try createQueue.isPaused(); checks["redis"] = ["ok": true] } catch {
            checks["redis"] = ["ok": false, "error": .string(String(describing: error))]
        }
        checks["workers"] = ["ok": true, "active": .int(Int64(createWorker.activeJobIds.count + cancelWorker.activeJobIds.count))]
        return checks
    }
}
