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
        var b = RPCStats.buckets.count
        for (i, ub) in RPCStats.buckets.enumerated() where s <= ub { b = i; break }
        let key = "\(route)\u{1}\(status)"
        series.withLock { all in
            var x = all[key] ?? Series()
            x.count += 1
            x.hist[b] += 1
            x.sum += s
            all[key] = x
        }
    }

    var snapshot: [String: Series] { series.current }
}

/// Renders `/metrics` in the Prometheus text format: the Gateway's own HTTP series, and each live
/// service instance's RPC series (scraped over `rpc.metrics`, labelled by service and instance;
/// a dead instance simply disappears).
enum MetricsExporter {
    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func fmt(_ d: Double) -> String {
        if d.isInfinite { return "+Inf" }
        return String(d)
    }

    static func render(_ g: Gateway) -> String {
        var out = ""
        out += "# HELP oops_http_requests_total HTTP requests served by the Gateway.\n# TYPE oops_http_requests_total counter\n"
        let snap = g.metrics.snapshot.sorted { $0.key < $1.key }
        for (k, s) in snap {
            let parts = k.split(separator: "\u{1}")
            out += "oops_http_requests_total{route=\"\(esc(String(parts[0])))\",status=\"\(parts[1])\"} \(s.count)\n"
        }
        out += "# HELP oops_http_request_duration_seconds HTTP request latency.\n# TYPE oops_http_request_duration_seconds histogram\n"
        var byRoute: [String: HTTPMetrics.Series] = [:]
        for (k, s) in snap {
            let r = String(k.split(separator: "\u{1}")[0])
            var x = byRoute[r] ?? HTTPMetrics.Series()
            x.count += s.count
            x.sum += s.sum
            for i in 0..<x.hist.count { x.hist[i] += s.hist[i] }
            byRoute[r] = x
        }
        for (r, s) in byRoute.sorted(by: { $0.key < $1.key }) {
            var cum: Int64 = 0
            for (i, ub) in (RPCStats.buckets + [Double.infinity]).enumerated() {
                cum += s.hist[i]
                out += "oops_http_request_duration_seconds_bucket{route=\"\(esc(r))\",le=\"\(fmt(ub))\"} \(cum)\n"
            }
            out += "oops_http_request_duration_seconds_sum{route=\"\(esc(r))\"} \(s.sum)\n"
            out += "oops_http_request_duration_seconds_count{route=\"\(esc(r))\"} \(s.count)\n"
        }
        // RPC series of every live instance.
        var calls = "# HELP oops_rpc_calls_total RPC calls handled, by service, instance, method and outcome.\n# TYPE oops_rpc_calls_total counter\n"
        var lat = "# HELP oops_rpc_duration_seconds RPC handling latency.\n# TYPE oops_rpc_duration_seconds histogram\n"
        var up = "# HELP oops_service_up Whether a service instance answered the scrape.\n# TYPE oops_service_up gauge\n"
        for s in ServiceName.all {
            let client = g.client(s)
            for p in client.instancePaths() {
                let inst = String(((p as NSString).lastPathComponent as NSString).deletingPathExtension.split(separator: "-").last ?? "0")
                guard let m = try? client.call(instancePath: p, "rpc.metrics", ctx: .new(timeoutMs: 500)) else {
                    continue
                }
                up += "oops_service_up{service=\"\(s)\",instance=\"\(inst)\"} 1\n"
                let bounds = (m["bucketBounds"]?.arrayValue ?? []).compactMap { $0.doubleValue } + [Double.infinity]
                for (method, v) in (m["methods"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                    for (o, c) in (v["outcomes"]?.objectValue ?? [:]).sorted(by: { $0.key < $1.key }) {
                        calls += "oops_rpc_calls_total{service=\"\(s)\",instance=\"\(inst)\",method=\"\(esc(method))\",outcome=\"\(esc(o))\"} \(c.intValue ?? 0)\n"
                    }
                    var cum: Int64 = 0
                    let hist = v["buckets"]?.arrayValue ?? []
                    for (i, ub) in bounds.enumerated() where i < hist.count {
                        cum += hist[i].intValue ?? 0
                        lat += "oops_rpc_duration_seconds_bucket{service=\"\(s)\",instance=\"\(inst)\",method=\"\(esc(method))\",le=\"\(fmt(ub))\"} \(cum)\n"
                    }
                    lat += "oops_rpc_duration_seconds_sum{service=\"\(s)\",instance=\"\(inst)\",method=\"\(esc(method))\"} \(v["sum"]?.doubleValue ?? 0)\n"
                    lat += "oops_rpc_duration_seconds_count{service=\"\(s)\",instance=\"\(inst)\",method=\"\(esc(method))\"} \(v["count"]?.intValue ?? 0)\n"
                }
                if let extra = m["gauges"]?.objectValue {
                    for (name, val) in extra.sorted(by: { $0.key < $1.key }) {
                        out += "\(name){service=\"\(s)\",instance=\"\(inst)\"} \(val.doubleValue ?? 0)\n"
                    }
                }
            }
        }
        return out + up + calls + lat
    }
}
