import Foundation
import Harness
import JSON
import Queue
import Redis
import Runtime

/// `bench queue`: the Swift BullMQ-compatible queue (enqueue; no-op jobs at worker concurrency
/// 1, 16, 64) beside Python bullmq 3.4.4 on the same Redis in the same run, and beside raw
/// EVALSHA calls of a trivial script: a job costs one add script and, in steady state, one
/// finish script that also fetches the next job (moveToFinished with fetchNext).
enum QueueBench {
    static let trivial = RedisScript(name: "bench-trivial", source: "return 1")

    static func python(_ args: [String]) -> JSON? {
        let script = (ProcessInfo.processInfo.environment["OOPS_HOME"] ?? FileManager.default.currentDirectoryPath) + "/scripts/bench/bullmq_bench.py"
        guard FileManager.default.fileExists(atPath: script), let py = which("python3") else { return nil }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: py)
        p.arguments = [script] + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        // bullmq has been seen to hang at concurrency 64: give up after two minutes.
        let watchdog = DispatchWorkItem { if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
        defer { watchdog.cancel() }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        let last = String(decoding: data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        return try? JSONParser.parse(last)
    }

    static func run(_ report: Report, seconds: Double) throws {
        print("queue: Swift queue vs Python bullmq 3.4.4 vs raw EVALSHA, same redis-server")
        let sys = try BenchSystem("queue", parts: [])
        defer { sys.cleanup() }
        let url = sys.redisURL

        // Raw Redis: a trivial script, sequentially on one connection and from 64 connections.
        let evalClients = try (0..<64).map { _ in try RedisClient(url: url) }
        defer { evalClients.forEach { $0.disconnect() } }
        let e1 = runLoad(threads: 1, seconds: seconds) { _ in (try? evalClients[0].eval(trivial, args: [])) != nil }
        let e64 = runLoad(threads: 64, seconds: seconds) { t in (try? evalClients[t].eval(trivial, args: [])) != nil }
        let eval1 = Double(e1.ops) / e1.elapsed, eval64 = Double(e64.ops) / e64.elapsed
        report.add(BenchRow(suite: "queue", name: "raw EVALSHA (return 1), 1 connection", value: eval1, unit: "calls/s", baselineName: nil, baseline: nil,
                            note: String(format: "p50 %.0f µs", e1.samples.p50)))
        report.add(BenchRow(suite: "queue", name: "raw EVALSHA (return 1), 64 connections", value: eval64, unit: "calls/s", baselineName: nil, baseline: nil))

        // Enqueue, one producer, one job per call.
        let q = try JobQueue(name: "bench-add-\(benchTag())", redisURL: url)
        defer { q.close() }
        let add = runLoad(threads: 1, seconds: seconds) { i in
            (try? q.add(name: "noop", dataJSON: "{\"i\":1}", options: JobOptions(removeOnComplete: .removeImmediately))) != nil
        }
        let swiftAdd = Double(add.ops) / add.elapsed
        let pyAdd = python(["enqueue", url, String(seconds)])?["perSecond"]?.doubleValue
        report.add(BenchRow(suite: "queue", name: "enqueue (JobQueue.add), 1 producer", value: swiftAdd, unit: "jobs/s",
                            baselineName: "Python bullmq Queue.add", baseline: pyAdd,
                            note: String(format: "%.0f%% of raw 1-connection EVALSHA (1 script per add)%@", 100 * swiftAdd / eval1,
                                         pyAdd == nil ? "; bullmq not available" : "")))

        // Processing no-op jobs; job counts sized so each phase takes about `seconds`.
        for c in [1, 16, 64] {
            let guess = c == 1 ? swiftAdd * 0.6 : min(swiftAdd * 1.5, eval64 * 0.6)
            let jobs = max(500, min(200_000, Int(guess * seconds)))
            let r = try QueueBenchmark.noopThroughput(redisURL: url, jobs: jobs, concurrency: c)
            // Python is several times slower: give it about `seconds` of work of its own.
            let pyJobs = max(200, min(jobs, Int((pyAdd ?? 1000) * seconds)))
            let py = python(["process", url, String(pyJobs), String(c)])?["perSecond"]?.doubleValue
            let allowed = c == 1 ? eval1 : eval64
            report.add(BenchRow(suite: "queue", name: "process no-op jobs, worker concurrency \(c)", value: r.jobsPerSecond, unit: "jobs/s",
                                baselineName: "Python bullmq Worker, same concurrency", baseline: py,
                                note: String(format: "%d jobs; %.0f%% of raw EVALSHA at %@ (1 finish+fetch script per job)", jobs,
                                             100 * r.jobsPerSecond / allowed, c == 1 ? "1 connection" : "64 connections")))
        }
    }
}
