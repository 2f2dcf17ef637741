import Foundation
import Dispatch

/// Waits for SIGTERM or SIGINT and runs the shutdown steps in order, once.
/// Each long-running part registers a stop step; steps run in reverse order of registration
/// (last started, first stopped), so the listener stops before the store it uses is closed.
public final class Lifecycle: Sendable {
    private let steps = Locked<[(String, @Sendable () -> Void)]>([])
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
        steps.withLock { $0.append((name, step)) }
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
        for (name, step) in steps.current.reversed() {
            log.debug("stopping", ["part": .string(name)])
            step()
        }
        log.info("stopped")
        done.signal()
    }
}
