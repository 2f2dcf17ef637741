import Foundation
import JSON
import Redis
import Runtime
import TestSupport
import XCTest
@testable import Queue

/// BullMQ's per-minute metrics (docs/queues.md, "Metrics"), written by the finish script of a
/// worker with `metricsMaxDataPoints`, in BullMQ's keys: `metrics:completed|failed` (hash
/// `count`, `prevTS`, `prevCount`) and `metrics:completed|failed:data` (list, newest first).
final class QueueMetricsIntegrationTests: RedisQueueTestCase {
    func testFinishesAreCountedInBullMQsLayout() throws {
        let q = try makeQueue()
        var o = WorkerOptions()
        o.metricsMaxDataPoints = 5
        _ = try startWorker(options: o) { job in
            if job.data["fail"] == true { throw TestFailure(description: "no") }
            return "ok"
        }
        for i in 0..<3 { try q.add(name: "j", dataJSON: #"{"i":\#(i)}"#) }
        try q.add(name: "j", dataJSON: #"{"fail":true}"#, options: JobOptions(attempts: 1))
        // A failure that is retried is not a finish.
        try q.add(name: "j", dataJSON: #"{"fail":true}"#, options: JobOptions(attempts: 2, backoff: .fixed(delayMs: 600_000)))
        XCTAssertTrue(waitUntil { (try? q.counts()).map { $0.completed == 3 && $0.failed == 1 && $0.delayed == 1 } ?? false })
        let r = try raw()
        defer { r.disconnect() }
        let base = "bull:\(queueName):metrics:"
        let completed = try r.run(["HGETALL", base + "completed"]).strings
        let c = Dictionary(uniqueKeysWithValues: stride(from: 0, to: completed.count, by: 2).map { (completed[$0], completed[$0 + 1]) })
        XCTAssertEqual(c["count"], "3")
        XCTAssertEqual(c["prevCount"], "0")
        XCTAssertNotNil(c["prevTS"].flatMap { Int64($0) })
        XCTAssertEqual(try r.run(["HGET", base + "failed", "count"]).stringValue, "1")
        XCTAssertEqual(try r.run(["LLEN", base + "completed:data"]).intValue, 0, "no whole minute has passed")
        let m = try q.metrics(.completed, limit: 10)
        XCTAssertEqual(m.count, 3)
        XCTAssertEqual(m.data, [])
    }

    /// Whole minutes since the last point: the finishes since are pushed, then a 0 for each
    /// further empty minute (newest first), trimmed to the points kept.
    func testWholeMinutesPushDataPointsNewestFirst() throws {
        let q = try makeQueue()
        let r = try raw()
        defer { r.disconnect() }
        let mk = "bull:\(queueName):metrics:completed"
        let now = Clock.wallMillis()
        // 10 finishes counted, the last point 3 minutes and a bit ago.
        _ = try r.run(["HSET", mk, "count", "10", "prevTS", String(now - 3 * 60_000 - 5_000), "prevCount", "0"])
        var o = WorkerOptions()
        o.metricsMaxDataPoints = 5
        _ = try startWorker(options: o) { _ in "ok" }
        try q.add(name: "j", dataJSON: "{}")
        XCTAssertTrue(waitUntil { (try? q.counts().completed) == 1 })
        XCTAssertEqual(try r.run(["LRANGE", mk + ":data", "0", "-1"]).strings, ["0", "0", "10"])
        XCTAssertEqual(try r.run(["HGET", mk, "count"]).stringValue, "11")
        XCTAssertEqual(try r.run(["HGET", mk, "prevCount"]).stringValue, "10")

        // A long quiet spell is capped at the points kept.
        _ = try r.run(["HSET", mk, "prevTS", String(Clock.wallMillis() - 100 * 60_000)])
        try q.add(name: "j", dataJSON: "{}")
        XCTAssertTrue(waitUntil { (try? q.counts().completed) == 2 })
        XCTAssertEqual(try r.run(["LRANGE", mk + ":data", "0", "-1"]).strings, ["0", "0", "0", "0", "1"])
        let m = try q.metrics(.completed, limit: 3)
        XCTAssertEqual(m.data, [0, 0, 0])
        XCTAssertEqual(m.kept, 5)
        XCTAssertEqual(m.count, 12)
        XCTAssertEqual(m.prevCount, 11)
    }

    func testAWorkerWithoutMetricsWritesNone() throws {
        let q = try makeQueue()
        _ = try startWorker { _ in "ok" }
        try q.add(name: "j", dataJSON: "{}")
        XCTAssertTrue(waitUntil { (try? q.counts().completed) == 1 })
        let r = try raw()
        defer { r.disconnect() }
        XCTAssertEqual(try r.run(["EXISTS", "bull:\(queueName):metrics:completed"]).intValue, 0)
    }
}
