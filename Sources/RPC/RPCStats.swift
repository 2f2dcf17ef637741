import Foundation
import JSON
import Runtime

/// Per-method call counts by outcome and a latency histogram, served by `rpc.metrics` and
/// scraped by the Gateway into `/metrics`.
public final class RPCStats: Sendable {
    /// Upper bounds in seconds, Prometheus style: the one set of latency buckets, used by every
    /// histogram of the project (RPC methods, `Metrics.observe`, the Gateway's HTTP routes).
    public static let buckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    /// The same bounds in nanoseconds, for the comparison made on every call.
    private static let bucketNanos: [UInt64] = buckets.map { UInt64(($0 * 1e9).rounded()) }

    /// The bucket a duration falls in: the first bound it does not exceed, or the last
    /// (`+Inf`) one, `buckets.count`. A histogram has `buckets.count + 1` counters.
    public static func bucket(nanos: UInt64) -> Int {
        for (i, ub) in bucketNanos.enumerated() where nanos <= ub { return i }
        return bucketNanos.count
    }

    public static func bucket(seconds: Double) -> Int {
        for (i, ub) in buckets.enumerated() where seconds <= ub { return i }
        return buckets.count
    }

    /// One method's counters, found once (when the method table is built) and then updated
    /// under a lock of its own, so recording a call costs no lookup.
    public final class Series: @unchecked Sendable {
        private let lock = NSLock()
        private var ok: Int64 = 0
        private var errors: [Int: Int64] = [:]
        private var hist = [Int64](repeating: 0, count: RPCStats.buckets.count + 1)
        private var sumNanos: UInt64 = 0
        private var n: Int64 = 0

        /// `code` nil: the call succeeded.
        public func record(code: Int?, nanos: UInt64) {
            let b = RPCStats.bucket(nanos: nanos)
            lock.lock()
            if let c = code { errors[c, default: 0] += 1 } else { ok += 1 }
            hist[b] += 1
            sumNanos &+= nanos
            n += 1
            lock.unlock()
        }

        var json: JSON? {
            lock.lock()
            defer { lock.unlock() }
            if n == 0 { return nil }
            var counts: [String: JSON] = [:]
            if ok > 0 { counts["ok"] = .int(ok) }
            for (k, v) in errors { counts[String(k)] = .int(v) }
            return ["outcomes": .object(counts), "buckets": .array(hist.map { .int($0) }), "sum": .double(Double(sumNanos) / 1e9), "count": .int(n)]
        }
    }

    private let all = Locked<[String: Series]>([:])

    public init() {}

    /// The series of `method`, created on first use; the same object every time.
    public func series(for method: String) -> Series {
        all.withLock { a in
            if let s = a[method] { return s }
            let s = Series()
            a[method] = s
            return s
        }
    }

    public var json: JSON {
        var methods: [String: JSON] = [:]
        for (m, s) in all.current {
            if let j = s.json { methods[m] = j }
        }
        return ["bucketBounds": .array(RPCStats.buckets.map { .double($0) }), "methods": .object(methods)]
    }
}
