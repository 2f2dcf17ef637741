import Foundation
import Dispatch

/// The stop steps of a process's parts, in the order the parts started; `stop()` runs them last
/// first, so a listener stops before the store it uses is closed.
///
/// A group may hold another group (`add`), which keeps the place it was added at however late
/// its own steps arrive: a service's parts, opened by a start that succeeds only after the RPC
/// server is listening, still stop after that server has drained. A step registered after the
/// group stopped runs at once, so nothing opened during a shutdown is left open.
public final class StopGroup: Sendable {
    private enum Entry: Sendable {
        case step(String, @Sendable () -> Void)
        case group(StopGroup)
    }
    private let state = Locked<(entries: [Entry], stopped: Bool)>(([], false))
    public let name: String

    public init(_ name: String) { self.name = name }

    /// Registers how to release a part; call it right after the part started.
    public func onStop(_ name: String, _ step: @escaping @Sendable () -> Void) {
        let late = state.withLock { s -> Bool in
            if s.stopped { return true }
            s.entries.append(.step(name, step))
            return false
        }
        if late { step() }
    }

    /// Puts `group` at this point of the order; its steps run when the order reaches it.
    public func add(_ group: StopGroup) {
        let late = state.withLock { s -> Bool in
            if s.stopped { return true }
            s.entries.append(.group(group))
            return false
        }
        if late { group.stop() }
    }

    /// Runs every step once, last registered first (nested groups likewise). Later calls do nothing.
    public func stop(log: Logger? = nil) {
        let entries = state.withLock { s -> [Entry] in
            if s.stopped { return [] }
            s.stopped = true
            return s.entries
        }
        for e in entries.reversed() {
            switch e {
            case .step(let n, let step):
                log?.debug("stopping", ["part": .string(n)])
                step()
            case .group(let g):
                g.stop(log: log)
            }
        }
    }
}

/// Waits for SIGTERM or SIGINT and stops the process's parts once, in reverse order of start.
/// Each long-running part registers a stop step (`onStop`) as soon as it started.
public final class Lifecycle: Sendable {
    /// The process's parts, in the order they started.
    public let parts = StopGroup("process")
    private let done = DispatchSemaphore(value: 0)
    private let sources = Locked<[DispatchSourceSignal]>([])
    private let started = Locked<Bool>(false)
    private let log: Logger

    public init(log: Logger) {
        self.log = log
        signal(SIGPIPE, SIG_IGN)
        // Catch SIGTERM/SIGINT from the first instant: a signal that arrives while the process
        // is still starting is handled (after start-up finishes) instead of lost.
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { [self] in self.requested.withLock { $0 = sig == SIGTERM ? "SIGTERM" : "SIGINT" }; self.signalled.signal() }
            src.resume()
            sources.withLock { $0.append(src) }
        }
    }

    private let requested = Locked<String?>(nil)
    private let signalled = DispatchSemaphore(value: 0)

    public func onStop(_ name: String, _ step: @escaping @Sendable () -> Void) {
        parts.onStop(name, step)
    }

    /// Blocks the calling thread until a signal arrives and all stop steps ran.
    public func waitForSignal() {
        Thread.detachNewThread { [self] in
            signalled.wait()
            shutdown(reason: requested.current ?? "signal")
        }
        done.wait()
    }

    public func shutdown(reason: String) {
        let first = started.withLock { s -> Bool in
            if s { return false }
            s = true
            return true
        }
        guard first else { return }
        log.info("shutting down", ["reason": .string(reason)])
        parts.stop(log: log)
        log.info("stopped")
        done.signal()
    }
}
