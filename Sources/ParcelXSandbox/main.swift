import Foundation
import HTTPServer
import Runtime

/// Entry point: reads the environment, serves until SIGTERM/SIGINT, then drains and exits 0.
///
/// Environment: OOPS_SANDBOX_ADDR (127.0.0.1:8090), PARCELX_ACCESS_KEY / PARCELX_SECRET_KEY
/// (sandbox-access / sandbox-secret), OOPS_SANDBOX_TIMEOUT_MS (30000: how late a
/// `[sandbox:timeout]` create answers), OOPS_SANDBOX_LATENCY_MS (0), OOPS_SANDBOX_FAILURE_RATE (0),
/// OOPS_SANDBOX_TRACK_STEP_MS (0: shipments move along their tracking path only through
/// `POST /__sandbox/advance`; otherwise one step every this many ms),
/// OOPS_SANDBOX_STRICT_WAREHOUSES (0: any non-empty pick_address_id is accepted),
/// OOPS_SANDBOX_MAX_CALLS (2048: calls answered at once, each waiting out the latency on a
/// thread; 1–10000), OOPS_LOG_LEVEL.
func runSandbox() -> Int32 {
    let config = Config.fromEnvironment()
    let log = Logger(service: "sandbox", instance: config.instance, level: config.logLevel)
    let lifecycle = Lifecycle(log: log)
    let defaults = SandboxConfig(
        latencyMs: max(0, config.int("OOPS_SANDBOX_LATENCY_MS", default: 0)),
        failureRate: min(1, max(0, Double(config.string("OOPS_SANDBOX_FAILURE_RATE", default: "0")) ?? 0)),
        timeoutMs: max(0, config.int("OOPS_SANDBOX_TIMEOUT_MS", default: 30_000)),
        trackStepMs: config.int("OOPS_SANDBOX_TRACK_STEP_MS", default: 0, range: 0...86_400_000))
    let sandbox = Sandbox(accessKey: config.parcelxAccessKey, secretKey: config.parcelxSecretKey, defaults: defaults,
                          strictWarehouses: config.string("OOPS_SANDBOX_STRICT_WAREHOUSES", default: "0") == "1", log: log)
    let (host, port) = Config.hostPort(config.sandboxAddress)
    var options = HTTPServerOptions()
    options.drainTimeoutMs = 5_000
    // A slow provider holds many calls at once: the bench keeps a thousand in flight at 1 s.
    let maxCalls = config.int("OOPS_SANDBOX_MAX_CALLS", default: 2048)
    guard (1...10_000).contains(maxCalls) else {
        log.error("OOPS_SANDBOX_MAX_CALLS must be 1-10000", ["value": .int(Int64(maxCalls))])
        return 1
    }
    options.maxWorkers = maxCalls
    options.connectionLimit = maxCalls + 64
    let server: HTTPServer
    do {
        server = try HTTPServer(host: host, port: port, options: options, handler: sandbox.handle)
    } catch {
        log.error("cannot start", ["address": .string(config.sandboxAddress), "error": .string("\(error)")])
        return 1
    }
    lifecycle.onStop("http") {
        sandbox.beginShutdown()
        server.stop()
    }
    log.info("listening", ["address": .string("\(host):\(server.boundPort)"), "timeoutMs": .int(Int64(defaults.timeoutMs))])
    lifecycle.waitForSignal()
    return 0
}

exit(runSandbox())
