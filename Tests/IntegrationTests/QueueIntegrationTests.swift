import Foundation
import JSON
import Redis
import Runtime
import TestSupport
import XCTest
@testable import Queue

/// Starts a real redis-server per test and gives each test its own queue name.
class RedisQueueTestCase: XCTestCase {
    var redis: RedisServer!
    var queueName = ""
    var workers: [Worker] = []

    override func setUpWithError() throws {
        redis = try RedisServer()
        queueName = "q\(UInt32.random(in: 0...UInt32.max))"
    }

    override func tearDown() {
        for w in workers { w.stop(graceMs: 0) }
        workers = []
        redis?.stop()
    }

    func makeQueue() throws -> JobQueue { try JobQueue(name: queueName, redisURL: redis.url) }

    func startWorker(concurrency: Int = 1, options: WorkerOptions = .init(), _ processor: @escaping @Sendable (Job) throws -> String) throws -> Worker {
        var o = options
        if o.logger == nil { o.logger = Logger(service: "queue-test", instance: 0, level: .error) }
        let w = try Worker(queueName: queueName, redisURL: redis.url, concurrency: concurrency, options: o, processor: processor)
        workers.append(w)
        w.start()
        return w
    }

    func raw() throws -> RedisClient { try RedisClient(url: redis.url) }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
}

final class QueueIntegrationTests: RedisQueueTestCase {
    func testAddedJobIsProcessedAndCompletedWithEverythingRecorded() throws {
        let q = try makeQueue()
        let id = try q.add(name: "create-order", dataJSON: #"{"orderId":"o1"}"#)
        XCTAssertEqual(try q.state(id: id), .waiting)
        let seen = Locked<[String]>([])
        _ = try startWorker { job in
            seen.withLock { $0.append(job.data["orderId"]?.stringValue ?? "?") }
            try job.log("calling provider")
            try job.updateProgress("50")
            return #"{"awb":"AWB1"}"#
        }
        XCTAssertTrue(waitUntil { (try? q.counts().completed) == 1 })
        let j = try XCTUnwrap(try q.job(id: id))
        XCTAssertEqual(seen.current, ["o1"])
        XCTAssertEqual(j.state, .completed)
        XCTAssertEqual(j.name, "create-order")
        XCTAssertEqual(j.returnValue, ["awb": "AWB1"])
        XCTAssertEqual(j.attemptsMade, 1)
        XCTAssertEqual(j.attemptsStarted, 1)
        XCTAssertEqual(j.logs, ["calling provider"])
        XCTAssertEqual(j.progress, 50)
        XCTAssertNotNil(j.processedOn)
        XCTAssertGreaterThanOrEqual(j.finishedOn ?? 0, j.processedOn ?? .max)
        XCTAssertEqual(j.opts["attempts"], 5, "queue defaults are written into the job")
        let events = try q.events(count: 50).reversed().filter { $0.fields["jobId"] == id }.map(\.event)
        XCTAssertEqual(events, ["added", "waiting", "active", "progress", "completed"])
        let c = try raw()
        XCTAssertEqual(try c.run(["EXISTS", q.base + id + ":lock"]).intValue, 0, "the lock is released")
    }

    func testFailingJobIsRetriedWithBackoffThenSucceeds() throws {
        let q = try makeQueue()
        let id = try q.add(name: "create-order", dataJSON: "{}", options: JobOptions(attempts: 3, backoff: .fixed(delayMs: 300)))
        let starts = Locked<[Int64]>([])
        _ = try startWorker { job in
            let n = starts.withLock { s -> Int in s.append(Clock.wallMillis()); return s.count }
            if n < 3 { throw TestFailure(description: "provider down \(n)") }
            return "true"
        }
        XCTAssertTrue(waitUntil(timeoutMs: 10_000) { (try? q.counts().completed) == 1 })
        let s = starts.current
        XCTAssertEqual(s.count, 3)
        XCTAssertGreaterThanOrEqual(s[1] - s[0], 290, "second try waits for the backoff")
        XCTAssertGreaterThanOrEqual(s[2] - s[1], 290)
        let j = try XCTUnwrap(try q.job(id: id))
        XCTAssertEqual(j.attemptsMade, 3)
        XCTAssertEqual(j.failedReason, "provider down 2", "the last failure stays visible, as with BullMQ")
        XCTAssertEqual(j.stacktrace, ["provider down 1", "provider down 2"])
        XCTAssertEqual(try q.events(count: 100).filter { $0.event == "delayed" && $0.fields["jobId"] == id }.count, 2)
    }

    func testJobFailsForGoodWhenAttemptsRunOut() throws {
        let q = try makeQueue()
        let id = try q.add(name: "n", dataJSON: "{}", options: JobOptions(attempts: 2, backoff: .exponential(delayMs: 50)))
        let runs = Locked(0)
        _ = try startWorker { _ in runs.withLock { $0 += 1 }; throw TestFailure(description: "nope") }
        XCTAssertTrue(waitUntil { (try? q.counts().failed) == 1 })
        XCTAssertEqual(runs.current, 2)
        let j = try XCTUnwrap(try q.job(id: id))
        XCTAssertEqual(j.state, .failed)
        XCTAssertEqual(j.attemptsMade, 2)
        XCTAssertEqual(j.failedReason, "nope")
        XCTAssertTrue(try q.events(count: 100).contains { $0.event == "retries-exhausted" && $0.fields["attemptsMade"] == "2" })
    }

    func testUnrecoverableErrorFailsAtOnce() throws {
        let q = try makeQueue()
        let id = try q.add(name: "n", dataJSON: "{}", options: JobOptions(attempts: 5))
        let runs = Locked(0)
        _ = try startWorker { _ in runs.withLock { $0 += 1 }; throw UnrecoverableError("invalid pincode") }
        XCTAssertTrue(waitUntil { (try? q.counts().failed) == 1 })
        usleep(200_000)
        XCTAssertEqual(runs.current, 1)
        let j = try XCTUnwrap(try q.job(id: id))
        XCTAssertEqual(j.attemptsMade, 1)
        XCTAssertEqual(j.failedReason, "invalid pincode")
    }

    func testCustomJobIdMakesRepeatedAddANoOp() throws {
        let q = try makeQueue()
        let a = try q.add(name: "create-order", dataJSON: #"{"orderId":"o7"}"#, options: JobOptions(jobId: "order-o7"))
        let b = try q.add(name: "create-order", dataJSON: #"{"orderId":"other"}"#, options: JobOptions(jobId: "order-o7"))
        XCTAssertEqual(a, "order-o7")
        XCTAssertEqual(b, "order-o7")
        XCTAssertEqual(try q.counts().waiting, 1)
        XCTAssertEqual(try q.job(id: a)?.data["orderId"], "o7", "the first add wins")
        XCTAssertTrue(try q.events(count: 10).contains { $0.event == "duplicated" && $0.fields["jobId"] == "order-o7" })
        let runs = Locked(0)
        _ = try startWorker { _ in runs.withLock { $0 += 1 }; return "null" }
        XCTAssertTrue(waitUntil { (try? q.counts().completed) == 1 })
        _ = try q.add(name: "create-order", dataJSON: "{}", options: JobOptions(jobId: "order-o7"))
        usleep(300_000)
        XCTAssertEqual(runs.current, 1, "a completed job is not enqueued again")
        let bulk = try q.addBulk([NewJob(name: "n", dataJSON: "{}", options: JobOptions(jobId: "order-o7")),
                                  NewJob(name: "n", dataJSON: "{}", options: JobOptions(jobId: "order-o8"))])
        XCTAssertEqual(bulk, ["order-o7", "order-o8"])
    }

    func testPrioritizedLifoAndDelayedJobsRunInBullMQOrder() throws {
        let q = try makeQueue()
        try q.pause()
        let d = try q.add(name: "d", dataJSON: "{}", options: JobOptions(delayMs: 600))
        let p5 = try q.add(name: "p5", dataJSON: "{}", options: JobOptions(priority: 5))
        let p1 = try q.add(name: "p1", dataJSON: "{}", options: JobOptions(priority: 1))
        let s1 = try q.add(name: "s1", dataJSON: "{}")
        let s2 = try q.add(name: "s2", dataJSON: "{}")
        let l = try q.add(name: "lifo", dataJSON: "{}", options: JobOptions(lifo: true))
        XCTAssertEqual(try q.state(id: d), .delayed)
        XCTAssertEqual(try q.state(id: p5), .prioritized)
        let order = Locked<[String]>([])
        let started = Locked<[String: Int64]>([:])
        _ = try startWorker { job in
            order.withLock { $0.append(job.id) }
            started.withLock { $0[job.id] = Clock.wallMillis() }
            return "null"
        }
        usleep(300_000)
        XCTAssertEqual(order.current, [], "nothing runs while the queue is paused")
        try q.resume()
        XCTAssertTrue(waitUntil { (try? q.counts().completed) == 6 })
        XCTAssertEqual(order.current, [l, s1, s2, p1, p5, d])
        // Due at its own timestamp + delay (a clock read after the adds would be late on a loaded machine).
        let dj = try XCTUnwrap(try q.job(id: d))
        XCTAssertGreaterThanOrEqual((started.current[d] ?? 0) - dj.timestamp, 600, "the delayed job waits for its time")
        XCTAssertEqual(dj.delay, 0, "promotion resets the delay field")
    }

    func testStalledJobIsRecoveredByAnotherWorker() throws {
        let q = try makeQueue()
        let release = DispatchSemaphore(value: 0)
        var frozen = WorkerOptions()
        frozen.lockDurationMs = 800
        frozen.stalledIntervalMs = 60_000
        let a = try startWorker(options: frozen) { _ in release.wait(); return #""A""# }
        a.suspendLockRenewal()
        let id = try q.add(name: "n", dataJSON: "{}")
        XCTAssertTrue(waitUntil { a.activeJobIds == [id] })
        var rescuer = WorkerOptions()
        rescuer.stalledIntervalMs = 300
        let c = try raw()
        _ = try c.run(["DEL", q.base + "stalled-check"])
        _ = try startWorker(options: rescuer) { _ in #""B""# }
        XCTAssertTrue(waitUntil(timeoutMs: 10_000) { (try? q.counts().completed) == 1 })
        release.signal()
        XCTAssertTrue(waitUntil { a.counters.finishesGivenUp[.notOwned] == 1 }, "the refused finish is counted: \(a.counters)")
        let j = try XCTUnwrap(try q.job(id: id))
        XCTAssertEqual(j.returnValue, "B")
        XCTAssertEqual(j.stalledCounter, 1)
        XCTAssertEqual(j.attemptsMade, 1, "the frozen worker's late finish is refused")
        XCTAssertEqual(j.attemptsStarted, 2)
        XCTAssertTrue(try q.events(count: 100).contains { $0.event == "stalled" && $0.fields["jobId"] == id })
    }

    func testJobStalledTooOftenIsFailedWithoutRunning() throws {
        let q = try makeQueue()
        let id = try q.add(name: "n", dataJSON: "{}")
        let c = try raw()
        // A job that already stalled once, taken again by a worker that then vanished.
        _ = try c.run(["HSET", q.base + id, "stc", "1"])
        _ = try c.run(["RPOPLPUSH", q.base + "wait", q.base + "active"])
        _ = try c.run(["SADD", q.base + "stalled", id])
        var o = WorkerOptions()
        o.stalledIntervalMs = 200
        let runs = Locked(0)
        _ = try startWorker(options: o) { _ in runs.withLock { $0 += 1 }; return "null" }
        XCTAssertTrue(waitUntil { (try? q.counts().failed) == 1 })
        XCTAssertEqual(runs.current, 0)
        XCTAssertEqual(try q.job(id: id)?.failedReason, "job stalled more than allowable limit")
    }

    func testGracefulStopFinishesQuickJobsAndReleasesSlowOnes() throws {
        let q = try makeQueue()
        let quick = try q.add(name: "quick", dataJSON: "{}")
        let gate = DispatchSemaphore(value: 0)
        let w = try startWorker(concurrency: 2) { job in
            if job.name == "slow" { gate.wait() } else { usleep(200_000) }
            return "null"
        }
        XCTAssertTrue(waitUntil { w.activeJobIds.contains(quick) })
        let slow = try q.add(name: "slow", dataJSON: "{}")
        XCTAssertTrue(waitUntil { w.activeJobIds.contains(slow) })
        w.stop(graceMs: 500)
        XCTAssertEqual(try q.state(id: quick), .completed)
        XCTAssertEqual(try q.state(id: slow), .waiting, "an unfinished job goes back to the queue")
        gate.signal()
        XCTAssertTrue(waitUntil { w.counters.finishesGivenUp[.released] == 1 }, "the discarded result is counted: \(w.counters)")
        XCTAssertEqual(try q.state(id: slow), .waiting, "its late result is discarded")
        let runs = Locked(0)
        _ = try startWorker { _ in runs.withLock { $0 += 1 }; return "null" }
        XCTAssertTrue(waitUntil { (try? q.state(id: slow)) == .completed })
    }

    func testRetentionKeepsOnlyTheNewestCompletedJobs() throws {
        let q = try makeQueue()
        let ids = try q.addBulk((0..<5).map { _ in NewJob(name: "n", dataJSON: "{}", options: JobOptions(removeOnComplete: .count(2))) })
        let gone = try q.add(name: "n", dataJSON: "{}", options: JobOptions(removeOnComplete: KeepJobs.removeImmediately))
        _ = try startWorker { _ in "null" }
        XCTAssertTrue(waitUntil { (try? q.state(id: gone)) == .unknown && (try? q.counts().waiting) == 0 })
        XCTAssertTrue(waitUntil { (try? q.counts().active) == 0 })
        XCTAssertEqual(try q.counts().completed, 2)
        XCTAssertEqual(try q.jobs(state: .completed).map(\.id), [ids[4], ids[3]])
        XCTAssertNil(try q.job(id: ids[0]), "trimmed jobs are deleted, not just unlisted")
        XCTAssertNil(try q.job(id: gone))
    }

    func testAdministration() throws {
        let q = try makeQueue()
        var failing = JobOptions(attempts: 1)
        failing.removeOnFail = .all
        let f1 = try q.add(name: "f", dataJSON: #"{"fail":true}"#, options: failing)
        let f2 = try q.add(name: "f", dataJSON: #"{"fail":true}"#, options: failing)
        let ok = try q.add(name: "ok", dataJSON: "{}")
        let shouldFail = Locked(true)
        let w = try startWorker { job in
            if job.data["fail"] == true && shouldFail.current { throw TestFailure(description: "bad address") }
            return "1"
        }
        XCTAssertTrue(waitUntil { (try? q.counts()).map { $0.failed == 2 && $0.completed == 1 } ?? false })
        XCTAssertEqual(try q.jobs(state: .failed).map(\.id), [f2, f1], "newest first")
        XCTAssertEqual(try q.jobs(state: .failed, offset: 1, limit: 1).map(\.id), [f1])
        let shown = try XCTUnwrap(try q.job(id: f1))
        XCTAssertEqual(shown.json["failedReason"], "bad address")
        XCTAssertEqual(shown.json["stacktrace"], ["bad address"])
        XCTAssertEqual(shown.json["state"], "failed")

        shouldFail.withLock { $0 = false }
        XCTAssertTrue(try q.retry(id: f1))
        XCTAssertFalse(try q.retry(id: ok), "a completed job is not in failed")
        XCTAssertTrue(waitUntil { (try? q.state(id: f1)) == .completed })
        XCTAssertEqual(try q.retryAllFailed(), 1)
        XCTAssertTrue(waitUntil { (try? q.counts().completed) == 3 })

        w.stop(graceMs: 1000)
        let d = try q.add(name: "d", dataJSON: "{}", options: JobOptions(delayMs: 60_000))
        XCTAssertTrue(try q.promote(id: d))
        XCTAssertEqual(try q.state(id: d), .waiting)
        XCTAssertFalse(try q.promote(id: d))
        XCTAssertTrue(try q.remove(id: d))
        XCTAssertEqual(try q.state(id: d), .unknown)
        XCTAssertFalse(try q.remove(id: d))

        XCTAssertEqual(try q.clean(state: .completed, olderThanMs: 60_000), [], "nothing is that old")
        XCTAssertEqual(Set(try q.clean(state: .completed, olderThanMs: 0)), Set([f1, f2, ok]))
        XCTAssertEqual(try q.counts().completed, 0)
        XCTAssertTrue(try q.events(count: 5).contains { $0.event == "cleaned" && $0.fields["count"] == "3" })

        XCTAssertFalse(try q.isPaused())
        try q.pause()
        XCTAssertTrue(try q.isPaused())
        try q.resume()
        XCTAssertFalse(try q.isPaused())
        let names = try q.events(count: 2).map(\.event)
        XCTAssertEqual(names, ["resumed", "paused"])
    }

    /// Removing a job a worker is processing is refused as exactly that (not as Redis failing) and
    /// changes nothing; a removed job's `removed` event names the state it left as BullMQ does.
    func testRemovingAJobAWorkerProcessesIsRefusedAndRemovedEventsNameTheStateLeft() throws {
        let q = try makeQueue()
        let gate = DispatchSemaphore(value: 0)
        let w = try startWorker { _ in gate.wait(); return #""done""# }
        let id = try q.add(name: "n", dataJSON: "{}")
        XCTAssertTrue(waitUntil { w.activeJobIds == [id] })
        XCTAssertThrowsError(try q.remove(id: id)) { e in
            XCTAssertEqual((e as? QueueError)?.kind, .jobActive, "\(e)")
            XCTAssertEqual("\(e)", "Job \(id) is being processed by a worker; it can be removed once it has finished")
        }
        XCTAssertEqual(try q.state(id: id), .active, "the refused removal changed nothing")
        gate.signal()
        XCTAssertTrue(waitUntil { (try? q.state(id: id)) == .completed })
        XCTAssertEqual(try q.job(id: id)?.returnValue, "done")
        w.stop(graceMs: 1000)

        let waiting = try q.add(name: "n", dataJSON: "{}")
        let delayed = try q.add(name: "n", dataJSON: "{}", options: JobOptions(delayMs: 600_000))
        XCTAssertTrue(try q.remove(id: waiting))
        XCTAssertTrue(try q.remove(id: delayed))
        XCTAssertTrue(try q.remove(id: id))
        let removed = try q.events(count: 20).reversed().filter { $0.event == "removed" }.map { [$0.fields["jobId"] ?? "", $0.fields["prev"] ?? ""] }
        XCTAssertEqual(removed, [[waiting, "wait"], [delayed, "delayed"], [id, "completed"]])
    }

    func testPausedQueueKeepsJobsWaitingUntilResumed() throws {
        let q = try makeQueue()
        let runs = Locked(0)
        _ = try startWorker(concurrency: 2) { _ in runs.withLock { $0 += 1 }; return "null" }
        try q.pause()
        for _ in 0..<3 { try q.add(name: "n", dataJSON: "{}") }
        usleep(1_200_000)
        XCTAssertEqual(runs.current, 0)
        XCTAssertEqual(try q.counts().waiting, 3)
        let t0 = Clock.wallMillis()
        try q.resume()
        XCTAssertTrue(waitUntil { runs.current == 3 })
        XCTAssertLessThan(Clock.wallMillis() - t0, 500, "the marker wakes blocked workers at once")
    }

    func testWorkersAndProducersSurviveARedisRestart() throws {
        // With `appendfsync everysec` Redis may acknowledge a write before it reaches the AOF
        // (it postpones the write while a slow fsync runs, as on a loaded CI machine), and a
        // kill -9 then loses an acknowledged completion, so the job runs again: at-least-once,
        // by Redis's durability setting. This test is about the worker and the producers, so
        // the server writes every change to the AOF before it answers.
        // The lock also outlasts a slow restart: a lock that expires while Redis is away lets
        // the stalled check hand a finished job out again, which is the other at-least-once case.
        _ = try raw().command(["CONFIG", "SET", "appendfsync", "always"])
        let q = try makeQueue()
        let seen = Locked<[String: Int]>([:])
        var o = WorkerOptions()
        o.lockDurationMs = 15_000
        o.stalledIntervalMs = 1000
        o.redisTimeoutMs = 1000
        _ = try startWorker(concurrency: 4, options: o) { job in
            seen.withLock { $0[job.id, default: 0] += 1 }
            usleep(20_000)
            return "null"
        }
        var ids: [String] = []
        for i in 0..<40 { ids.append(try q.add(name: "n", dataJSON: "{\"i\":\(i)}")) }
        XCTAssertTrue(waitUntil { seen.current.count >= 10 })
        try redis.restart()
        for i in 40..<80 { ids.append(try q.add(name: "n", dataJSON: "{\"i\":\(i)}")) }
        XCTAssertTrue(waitUntil(timeoutMs: 30_000) { (try? q.counts().completed) == 80 }, "counts: \(String(describing: try? q.counts()))")
        XCTAssertEqual(Set(seen.current.keys), Set(ids))
        XCTAssertEqual(seen.current.values.filter { $0 != 1 }.count, 0, "each job ran exactly once")
    }
}
