import Foundation
import JSON
import RPC
import Runtime
import Domain

/// HTTP request counters and latency histograms of this Gateway, by route and status.
final class HTTPMetrics: Sendable {
    struct Series { var count: Int64 = 0; var hist = [Int64](repeating: 0, count: RPCStats.buckets.count + 1); var sum: Double = 0 }
    private let series = Locked<[String: Series]>([:])

    func record(route: String, method: String, status: Int, nanos: UInt64) {
        let s = Double(nanos) / 1e9
        let b = RPCStats.bucket(nanos: nanos)
        let key = "\(route)\u{1}\(status)"
        // In place: copying the entry out and back would copy its histogram on every request.
        series.withLock { all in HTTPMetrics.add(&all[key, default: Series()], bucket: b, seconds: s) }
    }

    private static func add(_ x: inout Series, bucket: Int, seconds: Double) {
        x.count += 1
        x.hist[bucket] += 1
        x.sum += seconds
    }

    var snapshot: [String: Series] { series.current }
}

/// Prometheus text exposition (format 0.0.4), built family by family so each metric name has
/// one HELP and one TYPE line whatever number of instances report it.
struct Exposition {
    private var order: [String] = []
    private var families: [String: (type: String, help: String, lines: [String])] = [:]

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func labels(_ l: [(String, String)]) -> String {
        l.isEmpty ? "" : "{" + l.map { "\($0.0)=\"\(esc($0.1))\"" }.joined(separator: ",") + "}"
    }

    static func num(_ d: Double) -> String {
        if d.isInfinite { return d > 0 ? "+Inf" : "-Inf" }
        if d.isNaN { return "NaN" }
        if d == d.rounded() && abs(d) < 1e15 { return String(Int64(d)) }
        return String(d)
    }

    mutating func family(_ name: String, _ type: String, _ help: String) {
        if families[name] == nil {
            order.append(name)
            families[name] = (type, help, [])
        }
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double, family: String? = nil) {
        families[family ?? name]?.lines.append("\(name)\(Exposition.labels(labels)) \(Exposition.num(value))")
    }

    mutating func histogram(_ name: String, _ labels: [(String, String)], bounds: [Double], buckets: [Int64], sum: Double, count: Int64) {
        var cum: Int64 = 0
        for (i, ub) in (bounds + [Double.infinity]).enumerated() where i < buckets.count {
            // Bucket counts come from each instance's `rpc.metrics` answer: a nonsense count
            // saturates rather than trapping the Gateway.
            let (sum, overflow) = cum.addingReportingOverflow(buckets[i])
            cum = overflow ? (buckets[i] < 0 ? .min : .max) : sum
            sample(name + "_bucket", labels + [("le", Exposition.num(ub))], Double(cum), family: name)
        }
        sample(name + "_sum", labels, sum, family: name)
        sample(name + "_count", labels, Double(count), family: name)
    }

    var text: String {
        var out = ""
        for n in order {
            let f = families[n]!
            out += "# HELP \(n) \(f.help)\n# TYPE \(n) \(f.type)\n"
            for l in f.lines { out += l + "\n" }
        }
        return out
    }
}

/// Renders `/metrics` for the whole system: the Gateway's HTTP series, and for every live
/// service instance (scraped over `rpc.metrics`, labelled by service and instance) its RPC
/// series and its own counters, gauges and histograms. A dead instance simply disappears.
enum MetricsExporter {
    static func render(_ g: Gateway) -> String {
        var x = Exposition()
        x.family("oops_http_requests_total", "counter", "HTTP requests served by the Gateway, by route and status.")
        x.family("oops_http_request_duration_seconds", "histogram", "HTTP request latency at the Gateway, by route.")
        let snap = g.metrics.snapshot.sorted { $0.key < $1.key }
        var byRoute: [String: HTTPMetrics.Series] = [:]
        for (k, s) in snap {
            let parts = k.split(separator: "\u{1}").map(String.init)
            x.sample("oops_http_requests_total", [("route", parts[0]), ("status", parts[1])], Double(s.count))
            var r = byRoute[parts[0]] ?? HTTPMetrics.Series()
            r.count += s.count
            r.sum += s.sum
            for i in 0..<r.hist.count { r.hist[i] += s.hist[i] }
            byRoute[parts[0]] = r
        }
        for (r, s) in byRoute.sorted(by: { $0.key < $1.key }) {
            x.histogram("oops_http_request_duration_seconds", [("route", r)], bounds: RPCStats.buckets, buckets: s.hist, sum: s.sum, count: s.count)
        }
        x.family("oops_service_up", "gauge", "1 for every service instance that answered this scrape.")
        x.family("oops_rpc_calls_total", "counter", "RPC calls handled, by service, instance, method and outcome (ok or the error code).")
        x.family("oops_rpc_duration_seconds", "histogram", "RPC handling latency, by service, instance and method.")

        // Scrape every instance in parallel, with a short deadline each.
        var targets: [(String, String, String)] = []
        for s in ServiceName.all {
            for p in g.client(s).instancePaths() {
                let inst = String(((p as NSString).lastPathComponent as NSString).deletingPathExtension.split(separator: "-").last ?? "0")
                targets.append((s, inst, p))
            }
        }
        let results = Locked<[Int: JSON]>([:])
        let scrape = targets
        DispatchQueue.concurrentPerform(iterations: scrape.count) { i in
            let (s, _, p) = scrape[i]
            if let m = try? g.client(s).call(instancePath: p, "rpc.metrics", ctx: .new(timeoutMs: 800)) {
                results.withLock { $0[i] = m }
            }
        }
        for (i, (s, inst, _)) in targets.enumerated() {
            guard let m = results.current[i] else { continue }
            let base = [("service", s), ("instance", inst)]
            x.sample("oops_service_up", base, 1)
            let bounds = (m["bucketBounds"]?.arrayValue ?? []).compactMap { $0.doubleValue }
            for (method, v) in (m["methods"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                for (o, c) in (v["outcomes"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                    x.sample("oops_rpc_calls_total", base + [("method", method), ("outcome", o)], c.doubleValue ?? 0)
                }
                x.histogram("oops_rpc_duration_seconds", base + [("method", method)], bounds: bounds,
                            buckets: (v["buckets"]?.arrayValue ?? []).map { $0.intValue ?? 0 }, sum: v["sum"]?.doubleValue ?? 0, count: v["count"]?.intValue ?? 0)
            }
            let proc = m["process"] ?? .null
            let help = proc["help"]?.objectValue ?? [:]
            func lbl(_ j: JSON?) -> [(String, String)] {
                base + (j?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value.stringValue ?? "") }
            }
            for c in proc["counters"]?.arrayValue ?? [] {
                guard let n = c["name"]?.stringValue else { continue }
                x.family(n, "counter", help[n]?.stringValue ?? n)
                x.sample(n, lbl(c["labels"]), c["value"]?.doubleValue ?? 0)
            }
            for c in proc["gauges"]?.arrayValue ?? [] {
                guard let n = c["name"]?.stringValue else { continue }
                x.family(n, "gauge", help[n]?.stringValue ?? n)
                x.sample(n, lbl(c["labels"]), c["value"]?.doubleValue ?? 0)
            }
            for h in proc["histograms"]?.arrayValue ?? [] {
                guard let n = h["name"]?.stringValue else { continue }
                x.family(n, "histogram", help[n]?.stringValue ?? n)
                x.histogram(n, lbl(h["labels"]), bounds: bounds.isEmpty ? RPCStats.buckets : bounds,
                            buckets: (h["buckets"]?.arrayValue ?? []).map { $0.intValue ?? 0 }, sum: h["sum"]?.doubleValue ?? 0, count: h["count"]?.intValue ?? 0)
            }
        }
        return x.text
    }
}
