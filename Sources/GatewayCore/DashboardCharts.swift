import Foundation
import JSON
import RPC
import Domain
import Runtime

/// The dashboard's charts, drawn on the server as inline SVG (no script, no style attribute: the
/// CSP stays strict): completed and failed jobs per minute of a queue, from BullMQ's metrics keys
/// (`queues.metrics`).
extension Dashboard {
    /// Minutes a chart shows.
    static let chartMinutes = 60

    /// Per minute, newest first: the minute still counting (`count - prevCount`), then the data points.
    static func perMinute(_ m: JSON?) -> [Int64] {
        guard let m else { return [] }
        let count = m["count"]?.intValue ?? 0, prevCount = m["prevCount"]?.intValue ?? 0
        let current: [Int64] = (m["prevTS"]?.intValue ?? 0) > 0 ? [max(count - prevCount, 0)] : []
        return current + (m["data"]?.arrayValue ?? []).map { max($0.intValue ?? 0, 0) }
    }

    /// One queue's chart: a column per minute, oldest on the left; completed (green) under
    /// failed (red). Each column carries its numbers as `data-*` attributes and a `<title>`.
    static func queueChart(_ g: Gateway, _ u: User, _ q: String) -> String {
        guard let m = try? g.client(ServiceName.parcelx).call("queues.metrics", ["queue": .string(q), "minutes": .int(Int64(chartMinutes))], ctx: u.ctx) else {
            return "<p class=\"muted\">Per-minute counts are unavailable.</p>"
        }
        return chartSVG(queue: q, completed: perMinute(m["completed"]), failed: perMinute(m["failed"]))
    }

    static func chartSVG(queue: String, completed: [Int64], failed: [Int64]) -> String {
        let n = chartMinutes
        let (w, h, top, bottom, left) = (600.0, 120.0, 12.0, 18.0, 34.0)
        let col = (w - left) / Double(n)
        func at(_ a: [Int64], _ i: Int) -> Int64 { i < a.count ? a[i] : 0 }
        let peak = max((0..<n).map { at(completed, $0) + at(failed, $0) }.max() ?? 0, 1)
        let scale = (h - top - bottom) / Double(peak)
        var s = "<svg class=\"chart\" data-chart=\"\(H.h(queue))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" width=\"\(Int(w))\" height=\"\(Int(h))\" "
            + "role=\"img\" aria-label=\"\(H.h(queue)): completed and failed jobs per minute, last \(n) minutes\" xmlns=\"http://www.w3.org/2000/svg\">"
        s += "<line x1=\"\(Int(left))\" y1=\"\(Int(h - bottom))\" x2=\"\(Int(w))\" y2=\"\(Int(h - bottom))\" stroke=\"#c9ced8\"/>"
        s += "<text x=\"0\" y=\"\(Int(top) + 4)\" font-size=\"10\" fill=\"#6b7280\">\(peak)</text>"
        s += "<text x=\"0\" y=\"\(Int(h - bottom))\" font-size=\"10\" fill=\"#6b7280\">0</text>"
        s += "<text x=\"\(Int(left))\" y=\"\(Int(h) - 4)\" font-size=\"10\" fill=\"#6b7280\">\(n) min ago</text>"
        s += "<text x=\"\(Int(w) - 24)\" y=\"\(Int(h) - 4)\" font-size=\"10\" fill=\"#6b7280\">now</text>"
        for i in 0..<n {
            let c = at(completed, i), f = at(failed, i)
            let x = left + Double(n - 1 - i) * col
            let ch = Double(c) * scale, fh = Double(f) * scale
            let label = i == 0 ? "this minute" : "\(i) min ago"
            s += "<g data-minute=\"\(i)\" data-completed=\"\(c)\" data-failed=\"\(f)\"><title>\(label): \(c) completed, \(f) failed</title>"
            if c > 0 { s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#2e7d4f\"/>", x + 1, h - bottom - ch, col - 2, ch) }
            if f > 0 { s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#c0392b\"/>", x + 1, h - bottom - ch - fh, col - 2, fh) }
            s += "</g>"
        }
        return s + "</svg>"
    }
}

extension Dashboard {
    /// Provider latency over time: p50, p90 and p99 in ms, one line each, per ParcelXSvc instance,
    /// from the samples `parcelx.latencyHistory` keeps (one per sample period with answers).
    static func latencyCharts(_ g: Gateway, _ u: User) -> String {
        guard let r = try? g.client(ServiceName.parcelx).call("parcelx.latencyHistory", ["limit": 180], ctx: u.ctx),
              let instances = r["instances"]?.objectValue, !instances.isEmpty else {
            return "<p class=\"muted\" data-latency-empty>No provider latency samples yet (one is taken each minute with calls).</p>"
        }
        return instances.keys.sorted().map { latencySVG(instance: $0, samples: instances[$0]?.arrayValue ?? []) }.joined()
    }

    static func latencySVG(instance: String, samples: [JSON]) -> String {
        let pts = samples.reversed().compactMap { s -> (Int64, [Double])? in
            guard let at = s["at"]?.intValue else { return nil }
            return (at, ["p50", "p90", "p99"].map { s["ms"]?[$0]?.doubleValue ?? 0 })
        }
        guard let first = pts.first, let last = pts.last else { return "" }
        let (w, h, top, bottom, left) = (600.0, 120.0, 12.0, 18.0, 40.0)
        let span = Double(max(last.0 - first.0, 1))
        let peak = max(pts.map { $0.1.max() ?? 0 }.max() ?? 0, 1)
        func x(_ at: Int64) -> Double { pts.count == 1 ? w - 4 : left + (w - left - 4) * Double(at - first.0) / span }
        func y(_ v: Double) -> Double { h - bottom - (h - top - bottom) * v / peak }
        var s = "<svg class=\"chart\" data-latency-chart=\"\(H.h(instance))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" width=\"\(Int(w))\" height=\"\(Int(h))\" "
            + "role=\"img\" aria-label=\"provider latency p50, p90, p99 of ParcelXSvc \(H.h(instance))\" xmlns=\"http://www.w3.org/2000/svg\">"
        s += "<line x1=\"\(Int(left))\" y1=\"\(Int(h - bottom))\" x2=\"\(Int(w))\" y2=\"\(Int(h - bottom))\" stroke=\"#c9ced8\"/>"
        s += String(format: "<text x=\"0\" y=\"%d\" font-size=\"10\" fill=\"#6b7280\">%.0f ms</text>", Int(top) + 4, peak)
        s += "<text x=\"\(Int(left))\" y=\"\(Int(h) - 4)\" font-size=\"10\" fill=\"#6b7280\">\(H.h(Clock.iso8601(millis: first.0).dropFirst(11).prefix(5) + " UTC"))</text>"
        s += "<text x=\"\(Int(w) - 60)\" y=\"\(Int(h) - 4)\" font-size=\"10\" fill=\"#6b7280\">\(H.h(Clock.iso8601(millis: last.0).dropFirst(11).prefix(5) + " UTC"))</text>"
        for (k, (name, color)) in [("p50", "#2e7d4f"), ("p90", "#b7791f"), ("p99", "#c0392b")].enumerated() {
            let line = pts.map { String(format: "%.1f,%.1f", x($0.0), y($0.1[k])) }.joined(separator: " ")
            s += "<polyline data-quantile=\"\(name)\" data-points=\"\(pts.count)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(line)\"><title>\(name)</title></polyline>"
            s += "<text x=\"\(Int(w) - 150 + 40 * k)\" y=\"\(Int(top))\" font-size=\"10\" fill=\"\(color)\">\(name)</text>"
        }
        return s + "</svg>"
    }
}
