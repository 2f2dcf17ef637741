import Foundation
import Runtime

/// Latency samples and the numbers reported from them.
struct Samples {
    var nanos: [UInt64] = []
    mutating func add(_ n: UInt64) { nanos.append(n) }
    func percentile(_ p: Double) -> Double {
        guard !nanos.isEmpty else { return 0 }
        let s = nanos.sorted()
        let i = min(s.count - 1, Int((Double(s.count) * p).rounded(.up)) - 1)
        return Double(s[max(0, i)]) / 1000  // µs
    }
    var p50: Double { percentile(0.50) }
    var p99: Double { percentile(0.99) }
}

/// One line of a benchmark report: a measured case beside the baseline measured in the same run.
struct BenchRow {
    var suite: String
    var name: String
    var value: Double
    var unit: String
    var baselineName: String?
    var baseline: Double?
    var note: String = ""

    var ratio: String {
        guard let b = baseline, b > 0 else { return "" }
        return String(format: "%.2f×", value / b)
    }

    var markdown: String {
        "| \(suite) | \(name) | \(Self.fmt(value)) \(unit) | \(baselineName ?? "") | \(baseline.map { Self.fmt($0) + " " + unit } ?? "") | \(ratio) | \(note) |"
    }

    static func fmt(_ v: Double) -> String {
        if v >= 1000 { return String(format: "%.0f", v) }
        if v >= 10 { return String(format: "%.1f", v) }
        return String(format: "%.2f", v)
    }
}

/// One load level of an end-to-end case, for the "how cost grows with load" tables.
struct ScalingRow {
    var suite: String
    var what: String
    var clients: Int
    var rate: Double
    var p50Ms: Double
    var p99Ms: Double
    var note: String = ""
}

/// Collects rows and prints them as they come.
final class Report: @unchecked Sendable {
    private(set) var rows: [BenchRow] = []
    private(set) var scaling: [ScalingRow] = []
    func addScaling(_ r: ScalingRow) { scaling.append(r) }
    func add(_ r: BenchRow) {
        rows.append(r)
        var line = "  \(r.name): \(BenchRow.fmt(r.value)) \(r.unit)"
        if let b = r.baseline, let bn = r.baselineName { line += "   [\(bn): \(BenchRow.fmt(b)) \(r.unit), ratio \(r.ratio)]" }
        if !r.note.isEmpty { line += "   \(r.note)" }
        print(line)
        fflush(nil)
    }
}

/// Runs `body` on `threads` threads until `seconds` pass; returns total operations and per-op latencies.
func runLoad(threads: Int, seconds: Double, _ body: @escaping @Sendable (Int) -> Bool) -> (ops: Int, samples: Samples, elapsed: Double) {
    let deadline = Clock.monotonicNanos() + UInt64(seconds * 1e9)
    let results = Locked<(Int, [UInt64])>((0, []))
    let group = DispatchGroup()
    let t0 = Clock.monotonicNanos()
    for t in 0..<threads {
        group.enter()
        Thread.detachNewThread {
            var n = 0
            var lat: [UInt64] = []
            lat.reserveCapacity(100_000)
            while Clock.monotonicNanos() < deadline {
                let s = Clock.monotonicNanos()
                if body(t) { n += 1; lat.append(Clock.monotonicNanos() - s) }
            }
            results.withLock { $0.0 += n; $0.1.append(contentsOf: lat) }
            group.leave()
        }
    }
    group.wait()
    let elapsed = Double(Clock.monotonicNanos() - t0) / 1e9
    let (ops, lat) = results.current
    return (ops, Samples(nanos: lat), elapsed)
}

func machineDescription() -> String {
    let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n").first { $0.hasPrefix("model name") }
        .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
    let mem = ProcessInfo.processInfo.physicalMemory / (1 << 30)
    return "\(ProcessInfo.processInfo.activeProcessorCount) cores (\(cpu)), \(mem) GiB, \(ProcessInfo.processInfo.operatingSystemVersionString)"
}

/// Starts this same binary in a hidden server mode as a child process.
func spawnSelf(_ args: [String], env: [String: String] = [:]) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    if !FileManager.default.isExecutableFile(atPath: p.executableURL!.path) {
        p.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    }
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    for (k, v) in env { e[k] = v }
    p.environment = e
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    return p
}

func waitForFile(_ path: String, timeoutMs: Int = 10_000) -> Bool {
    let d = Deadline.after(ms: timeoutMs)
    while !d.hasPassed {
        if FileManager.default.fileExists(atPath: path) { return true }
        usleep(10_000)
    }
    return false
}
