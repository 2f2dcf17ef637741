import Foundation
import HTTPServer
import Runtime

let config = Config.fromEnvironment()
let log = Logger(service: "gateway", instance: config.instance, level: config.logLevel)
let lifecycle = Lifecycle(log: log)

do {
    let gateway = try Gateway(config: config, log: log)
    let (host, port) = Config.hostPort(config.httpAddress)
    var options = HTTPServerOptions()
    // The services' RPC line limit is derived from the same setting (Config.rpcMaxLineBytes).
    options.maxBodyBytes = config.httpMaxBodyBytes
    options.connectionLimit = config.int("OOPS_HTTP_MAX_CONNECTIONS", default: 1024)
    options.connectionTimeoutSeconds = config.int("OOPS_HTTP_TIMEOUT_S", default: 30)
    options.eventThreads = config.int("OOPS_HTTP_EVENT_THREADS", default: options.eventThreads)
    options.maxWorkers = config.int("OOPS_HTTP_MAX_WORKERS", default: options.maxWorkers)
    let server = try HTTPServer(host: host, port: port, options: options, reply: { req in gateway.handle(req) })
    log.info("listening", ["http": .string("\(host):\(server.boundPort)")])
    lifecycle.onStop("http server") { server.stop() }
    lifecycle.waitForSignal()
    exit(0)
} catch {
    log.error("cannot start", ["error": .string(String(describing: error))])
    exit(1)
}
