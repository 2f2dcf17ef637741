import Foundation
import JSON
import Runtime

/// What a service process needs at start: configuration, its logger, and where to register how
/// to release what it opens.
public struct ServiceEnvironment: Sendable {
    public let name: String
    public let config: Config
    public let log: Logger
    fileprivate let stops: StopGroup

    /// Registers how to release something this start attempt opened (a store, a queue client, a
    /// timer). If the attempt fails, its steps run at once, last registered first, so a retry
    /// never keeps the previous attempt's connections open; if it succeeds, they stop with the
    /// service, after the RPC server has drained. Register each step right after opening the
    /// thing it releases.
    public func onStop(_ name: String, _ step: @escaping @Sendable () -> Void) {
        stops.onStop(name, step)
    }
}

/// Starting a service's parts: one call of its build closure per attempt, each attempt's parts
/// in a stop group of their own.
enum ServiceStart {
    /// Runs `build` once. On success the attempt's stop steps join `service` (a group whose
    /// place in the process's stop order was fixed before the RPC server started); on failure
    /// they run at once, last opened first, and the error is rethrown.
    static func attempt(_ build: (ServiceEnvironment) throws -> ServiceParts, name: String, config: Config, log: Logger,
                        into service: StopGroup) throws -> ServiceParts {
        let stops = StopGroup("start attempt")
        let env = ServiceEnvironment(name: name, config: config, log: log, stops: stops)
        do {
            let parts = try build(env)
            service.add(stops)
            return parts
        } catch {
            log.debug("releasing what a failed start opened")
            stops.stop(log: log)
            throw error
        }
    }

    /// Starts the service behind `dispatcher`'s methods. A few quick attempts first (instances
    /// starting together can briefly contend for the store); if a dependency is still
    /// unreachable, the dispatcher answers as not ready and a retry task keeps trying. Any other
    /// failure is thrown. Registers, in `parts`, the service's group and then the retry task,
    /// so a shutdown stops the retry (waiting for an attempt in progress) before the service's
    /// parts close.
    static func start(_ build: @escaping @Sendable (ServiceEnvironment) throws -> ServiceParts, name: String, config: Config,
                      log: Logger, parts: StopGroup, quickTries: Int = 5, quickPauseMs: Int = 100,
                      retryMs: Int = 2000) throws -> Dispatcher {
        let service = StopGroup("service")
        parts.add(service)
        var tries = 0
        var lastError: Error?
        while true {
            do {
                let p = try attempt(build, name: name, config: config, log: log, into: service)
                return Dispatcher(service: name, instance: config.instance, methods: p.methods, log: log, healthChecks: p.healthChecks)
            } catch let e as TransientStartError where e.isTransient {
                lastError = e
                if tries >= quickTries { break }
                tries += 1
                usleep(UInt32(quickPauseMs * tries) * 1000)
            }
        }
        // A dependency is not reachable yet: serve rpc.health as degraded (so /readyz is red)
        // and retry, rather than exit into a restart loop.
        log.error("dependency unavailable at start; serving as not ready and retrying", ["error": .string(String(describing: lastError!))])
        let failing = Locked<String?>(String(describing: lastError!))
        let dispatcher = Dispatcher(service: name, instance: config.instance, methods: [], log: log, healthChecks: {
            ["startup": .object(["ok": .bool(false), "error": .string(failing.current ?? "starting")])]
        })
        dispatcher.setStarting(true)
        let retry = PeriodicTask(name: "start-retry", intervalMs: retryMs, initialDelayMs: retryMs) {
            guard failing.current != nil else { return }
            do {
                let p = try attempt(build, name: name, config: config, log: log, into: service)
                dispatcher.install(methods: p.methods, healthChecks: p.healthChecks)
                dispatcher.setStarting(false)
                failing.withLock { $0 = nil }
                log.info("dependencies reachable; serving")
            } catch {
                failing.withLock { $0 = String(describing: error) }
            }
        }
        parts.onStop("start retry") { retry.stop() }
        return dispatcher
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
        // Parts start in order and stop in reverse: the service's parts (store, queues, timers)
        // first, the RPC server last, so at SIGTERM the server drains before the store closes.
        let dispatcher: Dispatcher
        do {
            dispatcher = try ServiceStart.start(build, name: name, config: config, log: log, parts: lifecycle.parts)
        } catch {
            log.error("cannot start", ["error": .string(String(describing: error))])
            lifecycle.shutdown(reason: "start failed")
            exit(1)
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
            lifecycle.shutdown(reason: "cannot listen")
            exit(1)
        }
        lifecycle.onStop("rpc server") { server.stop() }
        lifecycle.waitForSignal()
        exit(0)
    }
}
