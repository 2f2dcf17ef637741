import Runtime

/// A wall clock that stands still until a test moves it, for unit tests of logic that reads
/// time through `WallClock` (lock windows, retry windows, the age of stranded work).
public final class ManualClock: WallClock {
    private let millis: Locked<Int64>

    /// Starts at `millis` (default 2026-01-01T00:00:00Z).
    public init(millis: Int64 = 1_767_225_600_000) {
        self.millis = Locked(millis)
    }

    public func nowMillis() -> Int64 { millis.current }

    /// Moves the clock forward (or back, with a negative amount).
    public func advance(ms: Int64) { millis.withLock { $0 += ms } }
}
