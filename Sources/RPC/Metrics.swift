import JSON
import Runtime

/// The process's own metrics, served by `rpc.metrics` beside the per-method RPC series and
/// rendered by the Gateway into `/metrics` with `service` and `instance` labels added.
/// Counters and histograms are recorded as things happen; gauges are read at scrape time.
public final class Metrics: Sendable {
    public static let shared = Metrics()

    struct Key: Hashable { let name: String; let labels: [String: String] }
    struct Histogram { var buckets = [Int64](repeating: 0, count: RPCStats.buckets.count + 1); var sum: Double = 0; var count: Int64 = 0 }

    private let counters = Locked<[Key: Int64]>([:])
    private let histograms = Locked<[Key: Histogram]>([:])
    private let gaugeSources = Locked<[@Sendable () -> [(String, [String: String], Double)]]>([])
    private let help = Locked<[String: String]>([:])

    public init() {}

    public func describe(_ name: String, _ text: String) { help.withLock { $0[name] = text } }

    /// The `# HELP` text of several metrics at once: `[name: text, ...]`.
    public func describe(_ table: KeyValuePairs<String, String>) {
        help.withLock { for (name, text) in table { $0[name] = text } }
    }

    public func increment(_ name: String, _ labels: [String: String] = [:], by n: Int64 = 1) {
        counters.withLock { $0[Key(name: name, labels: labels), default: 0] += n }
    }

    public func observe(_ name: String, _ labels: [String: String] = [:], seconds: Double) {
        let b = RPCStats.bucket(seconds: seconds)
        let k = Key(name: name, labels: labels)
        histograms.withLock { all in
            all[k, default: Histogram()].buckets[b] += 1
            all[k, default: Histogram()].sum += seconds
            all[k, default: Histogram()].count += 1
        }
    }

    /// Registers a function read at every scrape (queue depths, alert states).
    public func gauges(_ source: @escaping @Sendable () -> [(String, [String: String], Double)]) {
        gaugeSources.withLock { $0.append(source) }
    }

    static func labelsJSON(_ l: [String: String]) -> JSON { .object(l.mapValues { .string($0) }) }

    public var json: JSON {
        let c = counters.current.map { k, v -> JSON in ["name": .string(k.name), "labels": Self.labelsJSON(k.labels), "value": .int(v)] }
        let h = histograms.current.map { k, v -> JSON in
            ["name": .string(k.name), "labels": Self.labelsJSON(k.labels), "buckets": .array(v.buckets.map { .int($0) }), "sum": .double(v.sum), "count": .int(v.count)]
        }
        var g: [JSON] = []
        for src in gaugeSources.current {
            for (n, l, v) in src() { g.append(["name": .string(n), "labels": Self.labelsJSON(l), "value": .double(v)]) }
        }
        return ["counters": .array(c), "histograms": .array(h), "gauges": .array(g),
                "help": .object(help.current.mapValues { .string($0) })]
    }
}
