import JSON
import Runtime

/// Per-method call counts by outcome and a latency histogram, served by `rpc.metrics` and
/// scraped by the Gateway into `/metrics`.
public final class RPCStats: Sendable {
    /// Upper bounds in seconds, Prometheus style.
    public static let buckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

    struct Series { var count: [String: Int64] = [:]; var hist = [Int64](repeating: 0, count: RPCStats.buckets.count + 1); var sum: Double = 0; var n: Int64 = 0 }
    private let series = Locked<[String: Series]>([:])

    public init() {}

    public func record(method: String, outcome: String, nanos: UInt64) {
        let s = Double(nanos) / 1e9
        var b = RPCStats.buckets.count
        for (i, ub) in RPCStats.buckets.enumerated() where s <= ub { b = i; break }
        // Mutate in place: copying the entry out and back would copy its arrays on every call.
        series.withLock { all in
            RPCStats.add(&all[method, default: Series()], outcome: outcome, bucket: b, seconds: s)
        }
    }

    private static func add(_ x: inout Series, outcome: String, bucket: Int, seconds: Double) {
        x.count[outcome, default: 0] += 1
        x.hist[bucket] += 1
        x.sum += seconds
        x.n += 1
    }

    public var json: JSON {
        let snap = series.current
        var methods: [String: JSON] = [:]
        for (m, s) in snap {
            var counts: [String: JSON] = [:]
            for (k, v) in s.count { counts[k] = .int(v) }
            methods[m] = ["outcomes": .object(counts), "buckets": .array(s.hist.map { .int($0) }), "sum": .double(s.sum), "count": .int(s.n)]
        }
        return ["bucketBounds": .array(RPCStats.buckets.map { .double($0) }), "methods": .object(methods)]
    }
}
