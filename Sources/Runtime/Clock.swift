import Foundation

/// Time sources. Monotonic time measures durations and deadlines; wall time stamps records.
public enum Clock {
    /// Nanoseconds on the monotonic clock.
    public static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// The monotonic clock as of the last timer tick (a few milliseconds behind, and cheaper to
    /// read): for checks like "is a rescan due", made on every call.
    public static func coarseMonotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Nanoseconds from `start` to `now`, zero when another thread's later reading made `start` newer.
    public static func elapsed(from start: UInt64, to now: UInt64) -> UInt64 { now > start ? now - start : 0 }

    /// Milliseconds since the Unix epoch.
    public static func wallMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// ISO 8601 with milliseconds in UTC, e.g. `2026-11-25T23:27:31.123Z`.
    public static func iso8601(millis: Int64) -> String {
        var t = time_t(millis / 1000)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        // Digits written by hand: String(format:) costs microseconds, and every stored document
        // and log line carries a timestamp.
        var out: [UInt8] = []
        out.reserveCapacity(24)
        func digits(_ v: Int, _ width: Int) {
            var d = [UInt8](repeating: 0x30, count: width)
            var x = v
            for k in stride(from: width - 1, through: 0, by: -1) {
                d[k] = UInt8(0x30 + x % 10)
                x /= 10
            }
            out.append(contentsOf: d)
        }
        digits(Int(tmv.tm_year) + 1900, 4); out.append(0x2D)
        digits(Int(tmv.tm_mon) + 1, 2); out.append(0x2D)
        digits(Int(tmv.tm_mday), 2); out.append(0x54)
        digits(Int(tmv.tm_hour), 2); out.append(0x3A)
        digits(Int(tmv.tm_min), 2); out.append(0x3A)
        digits(Int(tmv.tm_sec), 2); out.append(0x2E)
        digits(Int(((millis % 1000) + 1000) % 1000), 3); out.append(0x5A)
        return String(decoding: out, as: UTF8.self)
    }

    public static func nowISO() -> String { iso8601(millis: wallMillis()) }
}

/// The wall clock service logic reads (record stamps, lock and retry windows, the age of
/// stranded work), passed in so a unit test can move time: `SystemClock` in every process,
/// TestSupport's `ManualClock` in tests. Durations and deadlines stay on the monotonic clock.
public protocol WallClock: Sendable {
    /// Milliseconds since the Unix epoch.
    func nowMillis() -> Int64
}

extension WallClock {
    /// The current time in ISO 8601 with milliseconds, UTC.
    public func nowISO() -> String { Clock.iso8601(millis: nowMillis()) }
}

/// The real wall clock.
public struct SystemClock: WallClock {
    public init() {}
    public func nowMillis() -> Int64 { Clock.wallMillis() }
}

/// A point on the monotonic clock after which work is no longer wanted.
public struct Deadline: Sendable, Comparable {
    public let nanos: UInt64
    public init(nanos: UInt64) { self.nanos = nanos }
    public static func after(ms: Int) -> Deadline { Deadline(nanos: Clock.monotonicNanos() + UInt64(max(ms, 0)) * 1_000_000) }
    public var remainingMs: Int {
        let now = Clock.monotonicNanos()
        return now >= nanos ? 0 : Int((nanos - now) / 1_000_000)
    }
    public var remainingNanos: UInt64 {
        let now = Clock.monotonicNanos()
        return now >= nanos ? 0 : nanos - now
    }
    public var hasPassed: Bool { Clock.monotonicNanos() >= nanos }
    public static func < (a: Deadline, b: Deadline) -> Bool { a.nanos < b.nanos }
}
