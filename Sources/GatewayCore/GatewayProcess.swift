import Foundation
import HTTPServer
import Runtime

/// The Gateway process: the public HTTP listener and the operator listener, until SIGTERM.
public enum GatewayProcess {
    public static func main() -> Never {
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
            // The operator listener: /metrics and the detailed /readyz, loopback unless told otherwise.
            // Few connections and threads: Prometheus and an operator's curl, nothing more.
            let (adminHost, adminPort) = Config.hostPort(config.string("OOPS_ADMIN_ADDR", default: "127.0.0.1:9080"))
            var adminOptions = HTTPServerOptions()
            adminOptions.maxBodyBytes = 4096
            adminOptions.connectionLimit = 64
            adminOptions.connectionTimeoutSeconds = options.connectionTimeoutSeconds
            adminOptions.eventThreads = 1
            adminOptions.maxWorkers = 8
            let adminServer = try HTTPServer(host: adminHost, port: adminPort, options: adminOptions, reply: { req in gateway.handle(req, admin: true) })
            log.info("listening", ["http": .string("\(host):\(server.boundPort)"), "admin": .string("\(adminHost):\(adminServer.boundPort)")])
            lifecycle.onStop("admin http server") { adminServer.stop() }
            lifecycle.onStop("http server") { server.stop() }
            lifecycle.waitForSignal()
            exit(0)
        } catch {
            log.error("cannot start", ["error": .string(String(describing: error))])
            exit(1)
        }
    }
}
