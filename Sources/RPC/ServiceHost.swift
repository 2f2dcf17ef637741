import Foundation
import JSON
import Runtime

/// What a service process needs at start: configuration, its logger and its lifecycle.
public struct ServiceEnvironment: Sendable {
    public let name: String
    public let config: Config
    public let log: Logger
    /// For steps that outlive start-up; what a start attempt opens is released with `onStop`.
    public let lifecycle: Lifecycle
    fileprivate let attempt: StartAttempt

    /// Registers how to release something this start attempt opened (a store, a queue client, a
    /// timer). If the attempt fails, its steps run at once, last registered first, so a retry
    /// never keeps the previous attempt's connections open; if it succeeds, they become stop
    /// steps of the lifecycle. Register each step right after opening the thing it releases.
    public func onStop(_ name: String, _ step: @escaping @Sendable () -> Void) {
        attempt.steps.withLock { $0.append((name, step)) }
    }
}

/// The stop steps of one call of a service's build closure.
private final class StartAttempt: Sendable {
    let steps = Locked<[(String, @Sendable () -> Void)]>([])

    /// Runs `build`; on success hands the steps to `lifecycle`, on failure runs them and rethrows.
    static func run(_ build: (ServiceEnvironment) throws -> ServiceParts, name: String, config: Config, log: Logger,
                    lifecycle: Lifecycle) throws -> ServiceParts {
        let attempt = StartAttempt()
        let env = ServiceEnvironment(name: name, config: config, log: log, lifecycle: lifecycle, attempt: attempt)
        do {
            let parts = try build(env)
            for (n, step) in attempt.steps.current { lifecycle.onStop(n, step) }
            return parts
        } catch {
            for (n, step) in attempt.steps.current.reversed() {
                log.debug("releasing after a failed start", ["part": .string(n)])
                step()
            }
            throw error
        }
    }
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
    public static func main(name: String, build: @escaping @Sendable (ServiceEnvironment) throws -> ServiceParts) -> Never {
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
        let cfg = config
        @Sendable func startAttempt() throws -> ServiceParts {
            try StartAttempt.run(build, name: name, config: cfg, log: log, lifecycle: lifecycle)
        }
        var parts: ServiceParts?
        var startError: Error?
        do {
            // A few quick tries first: instances starting together can briefly contend for the store.
            var attempt = 0
            while true {
                do {
                    parts = try startAttempt()
                    break
                } catch let e as TransientStartError where e.isTransient && attempt < 5 {
                    attempt += 1
                    usleep(UInt32(100_000 * attempt))
                }
            }
        } catch let e as TransientStartError where e.isTransient {
            // A dependency is not reachable yet: serve rpc.health as degraded (so /readyz is red)
            // and retry, rather than exit into a restart loop.
            log.error("dependency unavailable at start; serving as not ready and retrying", ["error": .string(String(describing: e))])
            startError = e
        } catch {
            log.error("cannot start", ["error": .string(String(describing: error))])
            exit(1)
        }
        let failing = Locked(startError.map { String(describing: $0) })
        let degradedChecks: @Sendable () -> [String: JSON] = {
            let e: JSON = .string(failing.current ?? "starting")
            return ["startup": .object(["ok": .bool(false), "error": e])]
        }
        let dispatcher = Dispatcher(service: name, instance: config.instance, methods: parts?.methods ?? [], log: log,
                                    healthChecks: parts?.healthChecks ?? degradedChecks)
        if parts == nil {
            dispatcher.setStarting(true)
            let retry = PeriodicTask(name: "start-retry", intervalMs: 2000, initialDelayMs: 2000) {
                guard failing.current != nil else { return }
                do {
                    let p = try startAttempt()
                    dispatcher.install(methods: p.methods, healthChecks: p.healthChecks)
                    dispatcher.setStarting(false)
                    failing.withLock { $0 = nil }
                    log.info("dependencies reachable; serving")
                } catch {
                    failing.withLock { $0 = String(describing: error) }
                }
            }
            lifecycle.onStop("start retry") { retry.stop() }
        }
        var limits = ServerLimits()
        limits.maxLineBytes = config.rpcMaxLineBytes
        limits.idleTimeoutMs = config.rpcIdleTimeoutMs
        let server = RPCServer(dispatcher: dispatcher, limits: limits, log: log)
        if stdio {
            Thread.detachNewThread {
                lifecycle.waitForSignal()
                exit(0)
            }
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
