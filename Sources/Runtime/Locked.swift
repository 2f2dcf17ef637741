import Foundation

/// A value guarded by a lock; the one way this project shares mutable state between threads.
///
/// A thread may also wait for the value to reach a state (`wait(until:)`): every change made
/// through `withLock` wakes the waiters, which re-check their condition. Shutdown paths wait this
/// way instead of polling with sleeps.
public final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let cond = NSCondition()
    /// Threads blocked in `wait`; a change wakes them only when there are any, so the common
    /// case (nobody waits) costs one comparison.
    private var waiters = 0

    public init(_ value: Value) { self.value = value }

    @discardableResult
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        cond.lock()
        defer {
            if waiters > 0 { cond.broadcast() }
            cond.unlock()
        }
        return try body(&value)
    }

    public var current: Value { withLock { $0 } }

    /// Blocks until `condition` holds for the value, or until `deadline` passes (if given).
    /// Returns whether the condition held.
    @discardableResult
    public func wait(until condition: (Value) -> Bool, deadline: Deadline? = nil) -> Bool {
        cond.lock()
        defer { cond.unlock() }
        waiters += 1
        defer { waiters -= 1 }
        while !condition(value) {
            if let d = deadline {
                let left = d.remainingNanos
                if left == 0 { return false }
                _ = cond.wait(until: Date().addingTimeInterval(Double(left) / 1e9))
            } else {
                cond.wait()
            }
        }
        return true
    }
}
