import Foundation
import JSON
import Runtime
import TestSupport
import XCTest
@testable import Queue

/// The Swift producer and worker against Python bullmq 3.4.4 on one real Redis, driven through
/// Tests/Python/interop/bullmq_interop.py; everything is read back through bullmq's own Queue API.
final class InteropIntegrationTests: RedisQueueTestCase {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tests/Python/interop/bullmq_interop.py").path

    override func setUpWithError() throws {
        let probe = try python(["-c", "import bullmq; assert bullmq.__version__ == '3.4.4', bullmq.__version__"])
        if probe.status != 0 {
            throw XCTSkip("Python bullmq 3.4.4 is not importable (pip install bullmq==3.4.4): \(probe.stderr)")
        }
        try super.setUpWithError()
    }

    /// Jobs the Swift producer adds are processed by a Python Worker.
    func testPythonWorkerProcessesJobsAddedBySwift() throws {
        let q = try makeQueue()
        let t0 = Clock.wallMillis()
        var ids: [String: String] = [:]
        ids["ok"] = try q.add(name: "create-order", dataJSON: #"{"orderId":"sw-1","mode":"ok"}"#)
        ids["delayed"] = try q.add(name: "create-order", dataJSON: #"{"orderId":"sw-2","mode":"ok"}"#, options: JobOptions(delayMs: 300))
        ids["prio"] = try q.add(name: "create-order", dataJSON: #"{"orderId":"sw-3","mode":"ok"}"#, options: JobOptions(priority: 2))
        ids["flaky"] = try q.add(name: "create-order", dataJSON: #"{"orderId":"sw-4","mode":"flaky","okOn":2}"#,
                                 options: JobOptions(attempts: 3, backoff: .exponential(delayMs: 100)))
        ids["fail"] = try q.add(name: "create-order", dataJSON: #"{"orderId":"sw-5","mode":"fail"}"#,
                                options: JobOptions(attempts: 2, backoff: .fixed(delayMs: 50)))
        ids["unrecoverable"] = try q.add(name: "create-order", dataJSON: #"{"orderId":"sw-6","mode":"unrecoverable"}"#,
                                         options: JobOptions(attempts: 5))
        ids["custom"] = try q.add(name: "cancel-order", dataJSON: #"{"orderId":"sw-7","mode":"ok"}"#, options: JobOptions(jobId: "ord-sw-7"))
        XCTAssertEqual(try q.add(name: "cancel-order", dataJSON: #"{"orderId":"sw-7b","mode":"ok"}"#, options: JobOptions(jobId: "ord-sw-7")),
                       "ord-sw-7")

        let worked = try runInterop(["work", "--count", "7", "--timeout", "40"])
        XCTAssertEqual(worked["finished"], 7)
        let jobs = try XCTUnwrap(try runInterop(["inspect", "--ids", ids.values.joined(separator: ",")])["jobs"])
        func job(_ k: String) -> JSON { jobs[ids[k]!] ?? .null }

        for k in ["ok", "delayed", "prio", "custom"] {
            XCTAssertEqual(job(k)["state"], "completed", k)
            XCTAssertEqual(job(k)["attemptsMade"], 1, k)
            XCTAssertEqual(job(k)["returnvalue"]?["by"], "python", k)
            XCTAssertEqual(job(k)["returnvalue"]?["echo"], job(k)["data"], k)
            let ts = job(k)["timestamp"]?.intValue ?? 0
            XCTAssertGreaterThanOrEqual(ts, t0, k)
            XCTAssertGreaterThanOrEqual(job(k)["processedOn"]?.intValue ?? 0, ts, k)
            XCTAssertGreaterThanOrEqual(job(k)["finishedOn"]?.intValue ?? 0, job(k)["processedOn"]?.intValue ?? .max, k)
        }
        XCTAssertEqual(job("custom")["data"]?["orderId"], "sw-7", "the repeated add did not replace the job")
        XCTAssertGreaterThanOrEqual((job("delayed")["processedOn"]?.intValue ?? 0) - (job("delayed")["timestamp"]?.intValue ?? 0), 300)
        XCTAssertEqual(job("flaky")["state"], "completed")
        XCTAssertEqual(job("flaky")["attemptsMade"], 2)
        XCTAssertEqual(job("flaky")["failedReason"], "flaky 1")
        XCTAssertEqual(job("fail")["state"], "failed")
        XCTAssertEqual(job("fail")["attemptsMade"], 2)
        XCTAssertEqual(job("fail")["failedReason"], "boom 2")
        XCTAssertEqual(job("unrecoverable")["state"], "failed")
        XCTAssertEqual(job("unrecoverable")["attemptsMade"], 1)
        XCTAssertEqual(job("unrecoverable")["failedReason"], "cannot ever work")
        XCTAssertEqual(job("ok")["opts"]?["attempts"], 5, "Python reads the options the Swift producer wrote")
    }

    /// Jobs a Python Queue adds are processed by the Swift worker, and Python reads back the result.
    func testSwiftWorkerProcessesJobsAddedByPython() throws {
        let added = try runInterop(["add"])
        XCTAssertEqual(added["customAgain"], added["custom"], "bullmq itself treats the repeated custom id as a no-op")
        let q = try makeQueue()
        _ = try startWorker(concurrency: 4) { job in
            let attempt = job.attemptsMade + 1
            switch job.data["mode"]?.stringValue ?? "ok" {
            case "fail": throw TestFailure(description: "boom \(attempt)")
            case "unrecoverable": throw UnrecoverableError("cannot ever work")
            case "flaky" where attempt < Int(job.data["okOn"]?.intValue ?? 1): throw TestFailure(description: "flaky \(attempt)")
            default: return JSON.object(["echo": job.data, "by": "swift"]).serialized()
            }
        }
        XCTAssertTrue(waitUntil(timeoutMs: 20_000) { (try? q.counts()).map { $0.completed + $0.failed == 7 } ?? false })
        let keys = ["ok", "delayed", "prio", "flaky", "fail", "unrecoverable", "custom"]
        let ids = keys.compactMap { added[$0]?.stringValue }
        let out = try runInterop(["inspect", "--ids", ids.joined(separator: ",")])
        XCTAssertEqual(out["counts"]?["completed"], 5)
        XCTAssertEqual(out["counts"]?["failed"], 2)
        let jobs = try XCTUnwrap(out["jobs"])
        func job(_ k: String) -> JSON { jobs[added[k]?.stringValue ?? ""] ?? .null }
        for k in ["ok", "delayed", "prio", "custom"] {
            XCTAssertEqual(job(k)["state"], "completed", k)
            XCTAssertEqual(job(k)["attemptsMade"], 1, k)
            XCTAssertEqual(job(k)["returnvalue"]?["by"], "swift", k)
            XCTAssertEqual(job(k)["returnvalue"]?["echo"], job(k)["data"], k)
            XCTAssertGreaterThanOrEqual(job(k)["processedOn"]?.intValue ?? 0, job(k)["timestamp"]?.intValue ?? .max, k)
            XCTAssertGreaterThanOrEqual(job(k)["finishedOn"]?.intValue ?? 0, job(k)["processedOn"]?.intValue ?? .max, k)
        }
        XCTAssertGreaterThanOrEqual((job("delayed")["processedOn"]?.intValue ?? 0) - (job("delayed")["timestamp"]?.intValue ?? 0), 300)
        XCTAssertEqual(job("flaky")["state"], "completed")
        XCTAssertEqual(job("flaky")["attemptsMade"], 2)
        XCTAssertEqual(job("flaky")["failedReason"], "flaky 1")
        XCTAssertEqual(job("flaky")["stacktrace"], ["flaky 1"])
        XCTAssertEqual(job("fail")["state"], "failed")
        XCTAssertEqual(job("fail")["attemptsMade"], 2)
        XCTAssertEqual(job("fail")["failedReason"], "boom 2")
        XCTAssertEqual(job("unrecoverable")["state"], "failed")
        XCTAssertEqual(job("unrecoverable")["attemptsMade"], 1)
        XCTAssertEqual(job("unrecoverable")["failedReason"], "cannot ever work")
    }

    /// A Python producer sets `attempts` without `backoff`, so every failure goes straight back to
    /// wait and another thread can take it at once. Each job must fail after exactly its attempts,
    /// never stall, and run the handler exactly that often (it lost runs to the stalled checker
    /// when the in-flight table was keyed by job id alone).
    func testSwiftWorkerFailsImmediatelyRetriedJobsAfterExactlyTheirAttempts() throws {
        let q = try makeQueue()
        let runs = Locked<[String: Int]>([:])
        var o = WorkerOptions()
        // A run whose finish is lost shows up as a stall within seconds rather than minutes.
        o.lockDurationMs = 3_000
        o.stalledIntervalMs = 1_000
        // A thread that loses its core right after its finish script answered (common on a
        // loaded 2-core machine): a retried job is then taken by another thread before this one
        // has cleaned up.
        o.afterFinishScript = { _ in usleep(50_000) }
        let w = try startWorker(concurrency: 16, options: o) { job in
            let n = runs.withLock { r -> Int in r[job.id, default: 0] += 1; return r[job.id]! }
            usleep(100_000) // a provider call that fails
            throw TestFailure(description: "boom \(n)")
        }
        // Jobs arrive a little apart, as orders do: idle threads wait on the marker and take a
        // retried job the moment it is back in wait.
        let ids = try XCTUnwrap(try runInterop(["add-failing", "--count", "40", "--attempts", "3", "--gap-ms", "10"])["ids"]?.arrayValue)
            .compactMap { $0.stringValue }
        XCTAssertEqual(ids.count, 40)
        XCTAssertTrue(waitUntil(timeoutMs: 120_000, intervalMs: 50) { (try? q.counts()).map { $0.completed + $0.failed == 40 } ?? false },
                      "not every job finished: \(String(describing: try? q.counts()))")
        try assertFailedAfterExactlyThreeAttempts(ids, runs: runs.current)
        XCTAssertEqual(w.counters.finishesGivenUpTotal, 0, "no finish was given up")
    }

    /// The same jobs processed by Python bullmq's own worker end the same way.
    func testPythonWorkerFailsImmediatelyRetriedJobsAfterExactlyTheirAttempts() throws {
        let worked = try runInterop(["work", "--add-failing", "40", "--attempts", "3", "--gap-ms", "10",
                                     "--count", "40", "--concurrency", "16", "--timeout", "120"])
        XCTAssertEqual(worked["finished"], 40)
        let ids = try XCTUnwrap(worked["ids"]?.arrayValue).compactMap { $0.stringValue }
        XCTAssertEqual(ids.count, 40)
        let raw = try raw().command(["HGETALL", "interop:runs"]).strings
        var runs: [String: Int] = [:]
        for i in stride(from: 0, to: raw.count - 1, by: 2) { runs[raw[i]] = Int(raw[i + 1]) ?? 0 }
        try assertFailedAfterExactlyThreeAttempts(ids, runs: runs)
    }

    /// A Python producer adds with keep-last-if-active deduplication while our worker runs the job
    /// owning the id: the last such add is saved, and our finish of the owner enqueues it and
    /// hands it the id, as BullMQ's moveToFinished does; its own finish frees the id.
    func testKeepLastIfActiveJobSavedWhileTheOwnerRunsIsEnqueuedWhenTheOwnerFinishes() throws {
        let q = try makeQueue()
        let gates = ["first": DispatchSemaphore(value: 0), "third": DispatchSemaphore(value: 0)]
        let ran = Locked<[String]>([])
        let w = try startWorker { job in
            let tag = job.data["tag"]?.stringValue ?? "?"
            ran.withLock { $0.append(tag) }
            gates[tag]?.wait()
            return JSON.object(["tag": .string(tag)]).serialized()
        }
        func add(_ tag: String) throws -> String {
            try XCTUnwrap(try runInterop(["add-dedup", "--dedup", "d1", "--tag", tag])["id"]?.stringValue)
        }
        func keys() throws -> JSON { try runInterop(["dedup-keys", "--dedup", "d1"]) }

        let owner = try add("first")
        XCTAssertTrue(waitUntil { w.activeJobIds == [owner] })
        // While the owner runs, adds are answered with its id and the last one is kept for later.
        XCTAssertEqual(try add("second"), owner)
        XCTAssertEqual(try add("third"), owner)
        let saved = try keys()
        XCTAssertEqual(saved["de"]?.stringValue, owner)
        XCTAssertEqual(saved["dePttl"], -1)
        let next = try XCTUnwrap(saved["dn"]?["jid"]?.stringValue)
        XCTAssertEqual(try JSONParser.parse(saved["dn"]?["data"]?.stringValue ?? "")["tag"], "third")

        gates["first"]!.signal()
        XCTAssertTrue(waitUntil(timeoutMs: 15_000) { w.activeJobIds == [next] }, "the saved job was enqueued and taken")
        let handedOver = try keys()
        XCTAssertEqual(handedOver["de"]?.stringValue, next, "the id now belongs to the saved job")
        XCTAssertEqual(handedOver["dePttl"], -1)
        XCTAssertEqual(handedOver["dn"], .object([:]), "the saved copy is consumed")
        XCTAssertEqual(try add("fourth"), next, "an add while the new owner runs is deduplicated again")

        gates["third"]!.signal()
        XCTAssertTrue(waitUntil(timeoutMs: 15_000) { (try? q.counts().completed) == 3 })
        XCTAssertEqual(ran.current, ["first", "third", "fourth"])
        let after = try keys()
        XCTAssertEqual(after["de"], .null, "the last finish frees the id")
        XCTAssertEqual(after["dn"], .object([:]))
        let out = try runInterop(["inspect", "--ids", "\(owner),\(next)"])
        XCTAssertEqual(out["jobs"]?[owner]?["returnvalue"]?["tag"], "first")
        XCTAssertEqual(out["jobs"]?[next]?["state"], "completed")
        XCTAssertEqual(out["jobs"]?[next]?["data"]?["tag"], "third")
        XCTAssertEqual(out["jobs"]?[next]?["returnvalue"]?["tag"], "third")
        let events = try q.events(count: 200).reversed().filter { $0.fields["jobId"] == next }.map(\.event)
        XCTAssertEqual(events, ["added", "waiting", "active", "deduplicated", "completed"])
    }

    /// Read back through bullmq's own Queue API: failed, attemptsMade 3, never stalled, run 3 times.
    private func assertFailedAfterExactlyThreeAttempts(_ ids: [String], runs: [String: Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let out = try runInterop(["inspect", "--ids", ids.joined(separator: ",")])
        XCTAssertEqual(out["counts"]?["failed"], 40, file: file, line: line)
        XCTAssertEqual(out["counts"]?["completed"], 0, file: file, line: line)
        XCTAssertEqual(out["counts"]?["active"], 0, file: file, line: line)
        let jobs = try XCTUnwrap(out["jobs"], file: file, line: line)
        var wrong: [String] = []
        for id in ids {
            let j = jobs[id] ?? .null
            if j["state"] != "failed" || j["attemptsMade"] != 3 || j["attemptsStarted"] != 3 || j["stalledCounter"] != 0
                || j["failedReason"] != "boom 3" || runs[id] != 3 {
                wrong.append("\(id): state \(j["state"]?.stringValue ?? "?") atm \(j["attemptsMade"]?.intValue ?? -1) "
                             + "ats \(j["attemptsStarted"]?.intValue ?? -1) stc \(j["stalledCounter"]?.intValue ?? -1) "
                             + "reason \(j["failedReason"]?.stringValue ?? "?") runs \(runs[id] ?? 0)")
            }
        }
        XCTAssertEqual(wrong, [], "\(wrong.count) of \(ids.count) jobs did not fail cleanly after 3 attempts", file: file, line: line)
    }

    // MARK: - helpers

    /// A Swift worker and a Python worker share one queue: each of 10,000 jobs runs exactly once.
    func testSwiftAndPythonWorkersSharingAQueueRunEachOfTenThousandJobsOnce() throws {
        let q = try makeQueue()
        let total = 10_000
        var batch: [NewJob] = []
        for i in 0..<total {
            batch.append(NewJob(name: "create-order", dataJSON: #"{"orderId":"share-\#(i)"}"#,
                                options: JobOptions(removeOnComplete: .removeImmediately)))
            if batch.count == 500 {
                _ = try q.addBulk(batch)
                batch.removeAll()
            }
        }
        let counter = try raw()
        let swiftWorker = try startWorker(concurrency: 8) { job in
            _ = try counter.command(["HINCRBY", "interop:runs", job.id, "1"])
            _ = try counter.command(["HINCRBY", "interop:by", "swift", "1"])
            return #"{"by":"swift"}"#
        }
        let py = try runInterop(["share", "--count", "\(total)", "--timeout", "240"])
        XCTAssertEqual(py["runs"]?.intValue, Int64(total))
        swiftWorker.stop(graceMs: 5000)
        let runs = try raw().command(["HGETALL", "interop:runs"]).strings
        var perJob: [String: Int] = [:]
        for i in stride(from: 0, to: runs.count - 1, by: 2) { perJob[runs[i]] = Int(runs[i + 1]) ?? 0 }
        XCTAssertEqual(perJob.count, total, "every job ran")
        XCTAssertEqual(perJob.values.filter { $0 != 1 }.count, 0, "no job ran twice")
        let by = try raw().command(["HGETALL", "interop:by"]).strings
        var share: [String: Int] = [:]
        for i in stride(from: 0, to: by.count - 1, by: 2) { share[by[i]] = Int(by[i + 1]) ?? 0 }
        XCTAssertGreaterThan(share["swift"] ?? 0, 0, "the Swift worker took part")
        XCTAssertGreaterThan(share["python"] ?? 0, 0, "the Python worker took part")
        XCTAssertEqual((share["swift"] ?? 0) + (share["python"] ?? 0), total)
        let counts = try q.counts()
        XCTAssertEqual(counts.waiting + counts.active + counts.failed + counts.delayed, 0)
    }

    private func runInterop(_ args: [String]) throws -> JSON {
        let r = try python([Self.script] + args + ["--url", redis.url, "--queue", queueName])
        guard r.status == 0 else { throw TestFailure(description: "interop \(args[0]) exited \(r.status): \(r.stderr)") }
        return try JSONParser.parse(r.stdout)
    }

    private func python(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        guard let exe = which("python3") else { return (127, "", "python3 not found") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        // stderr goes to a file so that a chatty child can never block on a full pipe.
        let errPath = NSTemporaryDirectory() + "/interop-python-\(UInt32.random(in: 0...UInt32.max)).err"
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: errPath)
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let e = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: errPath)
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), e)
    }
}
