import Foundation
import JSON
import Runtime

/// What a service process needs at start: configuration, its logger and its lifecycle.
public struct ServiceEnvironment: Sendable {
    public let name: String
    public let config: Config
    public let log: Logger
    public let lifecycle: Lifecycle
}

/// What a service hands back: its methods and the checks shown by `rpc.health`.
public struct ServiceParts: Sendable {
    public var methods: [Method]
    public var healthChecks: @Sendable () -> [String: JSON]
    public init(methods: [Method], healthChecks: @escaping @Sendable () -> [String: JSON] = { [:] }) {
        self.methods = methods
        self.healthChecks = healthChecks
    }
}

/// The common `main` of every service binary:
/// `<Svc> [--instance N] [--socket PATH] [--stdio]`. Serves `<run dir>/<name>-<n>.sock`, or one
/// session on stdin/stdout with `--stdio`; SIGTERM drains and exits 0.
public enum ServiceHost {
    public static func main(name: String, build: (ServiceEnvironment) throws -> ServiceParts) -> Never {
        var config = Config.fromEnvironment()
        var args = Array(CommandLine.arguments.dropFirst())
        var stdio = false
        var socketPath: String?
        while !args.isEmpty {
            let a = args.removeFirst()
            switch a {
            case "--stdio": stdio = true
            case "--instance": config.instance = Int(args.isEmpty ? "" : args.removeFirst()) ?? 0
            case "--socket": socketPath = args.isEmpty ? nil : args.removeFirst()
            case "--help", "-h":
                print("usage: \(name) [--instance N] [--socket PATH] [--stdio]\nConfiguration comes from OOPS_* environment variables; see README.md.")
                exit(0)
            default:
                FileHandle.standardError.write("unknown argument \(a); try --help\n".data(using: .utf8)!)
                exit(2)
            }
        }
        let log = Logger(service: name, instance: config.instance, level: config.logLevel)
        let lifecycle = Lifecycle(log: log)
        let env = ServiceEnvironment(name: name, config: config, log: log, lifecycle: lifecycle)
        let parts: ServiceParts
        do {
            parts = try build(env)
        } catch {
            log.error("cannot start", ["error": .string(String(describing: error))])
            exit(1)
        }
        let dispatcher = Dispatcher(service: name, instance: config.instance, methods: parts.methods, log: log, healthChecks: parts.healthChecks)
        var limits = ServerLimits()
        limits.maxLineBytes = config.rpcMaxLineBytes
        limits.idleTimeoutMs = config.rpcIdleTimeoutMs
        let server = RPCServer(dispatcher: dispatcher, limits: limits, log: log)
        if stdio {
            server.serveStdio()
            lifecycle.shutdown(reason: "stdin closed")
            exit(0)
        }
        let path = socketPath ?? config.socketPath(service: name, instance: config.instance)
        do {
            try server.listen(path: path)
        } catch {
            log.error("cannot listen", ["socket": .string(path), "error": .string(String(describing: error))])
            exit(1)
        }
        lifecycle.onStop("rpc server") { server.stop() }
        lifecycle.waitForSignal()
        exit(0)
    }
}
