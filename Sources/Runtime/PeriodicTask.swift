import Foundation

/// Runs `body` every `intervalMs` on a thread of its own until `stop()`; `stop()` waits for a
/// run in progress to finish, so a stopped task never touches a closed store.
public final class PeriodicTask: Sendable {
    private let state = Locked<(stopped: Bool, running: Bool)>((false, false))

    public init(name: String, intervalMs: Int, initialDelayMs: Int = 0, _ body: @escaping @Sendable () -> Void) {
        let t = Thread { [self] in
            var delay = initialDelayMs
            while true {
                // Sleeps out the delay, or until stop() (a change of `state` wakes the wait).
                if delay > 0 { state.wait(until: { $0.stopped }, deadline: .after(ms: delay)) }
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
        state.wait(until: { !$0.running })
    }
}
