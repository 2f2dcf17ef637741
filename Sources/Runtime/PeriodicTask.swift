import Foundation

/// Runs `body` every `intervalMs` on a thread of its own until `stop()`; `stop()` waits for a
/// run in progress to finish, so a stopped task never touches a closed store.
public final class PeriodicTask: Sendable {
    private let state = Locked<(stopped: Bool, running: Bool)>((false, false))
    private let wake = NSCondition()

    public init(name: String, intervalMs: Int, initialDelayMs: Int = 0, _ body: @escaping @Sendable () -> Void) {
        let t = Thread { [self] in
            var delay = initialDelayMs
            while true {
                wake.lock()
                if !state.current.stopped && delay > 0 { _ = wake.wait(until: Date().addingTimeInterval(Double(delay) / 1000)) }
                wake.unlock()
                let go = state.withLock { s -> Bool in
                    if s.stopped { return false }
                    s.running = true
                    return true
                }
                if !go { return }
                body()
                state.withLock { $0.running = false }
                delay = intervalMs
            }
        }
        t.name = name
        t.start()
    }

    public func stop() {
        state.withLock { $0.stopped = true }
        wake.lock()
        wake.broadcast()
        wake.unlock()
        while state.current.running { usleep(1000) }
    }
}
