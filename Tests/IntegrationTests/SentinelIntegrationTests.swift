import Foundation
import JSON
import Redis
import Runtime
import TestSupport
import XCTest
@testable import Queue

/// Redis through Sentinel with real processes: a master, a replica and three redis-sentinel.
final class SentinelIntegrationTests: XCTestCase {
    var ha: RedisSentinelSet!
    var workers: [Worker] = []

    override func setUpWithError() throws { ha = try RedisSentinelSet() }

    override func tearDown() {
        for w in workers { w.stop(graceMs: 0) }
        workers = []
        ha?.stop()
    }

    func testClientFindsTheMasterThroughTheSentinelsAndFollowsAFailover() throws {
        let c = try RedisClient(url: ha.url, timeoutMs: 2000)
        try c.run(["SET", "k", "before"])
        XCTAssertEqual(c.port, Int(ha.servers[0].port), "the sentinels name the first server as master")
        _ = try ha.failover()
        // The old connection is dead; the next commands fail (connect) until the client asks the
        // sentinels again, then reach the promoted replica, which has the replicated key.
        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 100) { (try? c.run(["SET", "k2", "after"])) != nil })
        XCTAssertEqual(c.port, Int(ha.servers[1].port))
        XCTAssertEqual(try c.run(["GET", "k"]).stringValue, "before")
    }

    /// A failover that kills nothing (`SENTINEL FAILOVER`, or a master cut off by the network):
    /// the old master stays up and takes writes until Sentinel gets round to demoting it, seconds
    /// later; writes it takes meanwhile are lost. The client hears `+switch-master` and moves at
    /// once, while the old master still says it is master.
    func testAFailoverWithoutAKillMovesTheClientBeforeTheOldMasterIsDemoted() throws {
        let c = try RedisClient(url: ha.url, timeoutMs: 2000)
        try c.run(["SET", "k", "v"])
        let (oldMaster, newMaster) = (ha.servers[0], ha.servers[1])
        XCTAssertEqual(c.port, Int(oldMaster.port))
        try ha.manualFailover()
        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 20) {
            _ = try? c.run(["SET", "k", "w"])
            return c.port == Int(newMaster.port)
        }, "the client moved to the promoted replica")
        let oldRole = try RedisClient(url: oldMaster.url).command(["ROLE"]).arrayValue?.first?.stringValue
        XCTAssertEqual(oldRole, "master", "the client left before Sentinel demoted the old master")
        XCTAssertEqual(try RedisClient(url: newMaster.url).run(["GET", "k"]).stringValue, "w")
    }

    /// `WAIT` after adds: one replica acknowledges while it is there; without it the wait ends at
    /// its timeout once, and the next adds do not wait at all for a while.
    func testAddsWaitForTheReplicaAndStopWaitingWhileItIsGone() throws {
        let c = try RedisClient(url: ha.url + "?wait=1&wait_ms=300", timeoutMs: 2000)
        try c.run(["SET", "a", "1"])
        XCTAssertEqual(c.waitForReplicas(), 1, "the replica acknowledged")
        ha.servers[1].kill9()
        try c.run(["SET", "b", "2"])
        let t0 = Clock.monotonicNanos()
        XCTAssertEqual(c.waitForReplicas(), 0, "no replica to acknowledge")
        XCTAssertGreaterThanOrEqual(Clock.monotonicNanos() - t0, 250_000_000, "waited for the timeout")
        try c.run(["SET", "c", "3"])
        XCTAssertNil(c.waitForReplicas(), "skipped while the replica is missing")
        XCTAssertNil(try RedisClient(url: ha.url).waitForReplicas(), "no wait configured: nothing to do")
    }

    /// The queue across a `kill -9` of the master: a job added before (replicated by WAIT, not yet
    /// due) and jobs added during and after are all processed; the producer keeps adding through
    /// the failover, each add answered within its reconnect window or retried by the caller.
    func testQueueKeepsWorkingAcrossAMasterKill() throws {
        let name = "q\(UInt32.random(in: 0...UInt32.max))"
        let url = ha.url + "?wait=1&wait_ms=1000"
        let q = try JobQueue(name: name, redisURL: url, timeoutMs: 1000)
        let done = Locked<Set<String>>([])
        var o = WorkerOptions()
        o.logger = Logger(service: "queue-test", instance: 0, level: .error)
        o.redisTimeoutMs = 1000
        let w = try Worker(queueName: name, redisURL: url, concurrency: 2, options: o) { job in
            done.withLock { _ = $0.insert(job.id) }
            return "{}"
        }
        workers.append(w)
        w.start()

        try q.add(name: "t", dataJSON: "{}", options: JobOptions(jobId: "before", delayMs: 4000))
        let stop = Locked(false)
        let added = Locked<[String]>([])
        let producerErrors = Locked(0)
        let producer = Thread {
            var i = 0
            while !stop.current {
                let id = "during-\(i)"
                do {
                    try q.add(name: "t", dataJSON: "{}", options: JobOptions(jobId: id))
                    added.withLock { $0.append(id) }
                    i += 1
                } catch {
                    producerErrors.withLock { $0 += 1 }  // the caller retries the same id
                    usleep(100_000)
                }
                usleep(20_000)
            }
        }
        producer.start()
        XCTAssertTrue(waitUntil(timeoutMs: 30_000) { added.current.count >= 5 })
        _ = try ha.failover()
        let countAtFailover = added.current.count
        XCTAssertTrue(waitUntil(timeoutMs: 60_000) { added.current.count >= countAtFailover + 10 }, "producer stalled after the failover")
        stop.withLock { $0 = true }
        while !producer.isFinished { usleep(10_000) }
        try q.add(name: "t", dataJSON: "{}", options: JobOptions(jobId: "after"))

        let expected = Set(added.current + ["before", "after"])
        XCTAssertTrue(waitUntil(timeoutMs: 60_000) { expected.isSubset(of: done.current) },
                      "not processed: \(expected.subtracting(done.current).sorted())")
        print("sentinel failover: \(added.current.count) jobs added, \(producerErrors.current) add(s) failed and were retried")
        XCTAssertLessThanOrEqual(producerErrors.current, 3, "errors beyond the reconnect window")
    }
}

final class RedisURLTests: XCTestCase {
    func testBadSentinelURLsAreRefusedClearly() {
        for bad in ["redis-sentinel://127.0.0.1:26379", "redis-sentinel://127.0.0.1/oops", "redis-sentinel://127.0.0.1:0/oops",
                    "redis-sentinel://127.0.0.1:26379/oops?wait=99", "redis://a:1,b:2", "redis-sentinel://h:1/m?wait_ms=x"] {
            XCTAssertThrowsError(try RedisClient(url: bad), bad) { e in
                XCTAssertEqual((e as? RedisError)?.kind, .badURL, bad)
            }
        }
        XCTAssertNoThrow(try RedisClient(url: "redis-sentinel://:pw@127.0.0.1:26379,[::1]:26380/oops/2?wait=1&wait_ms=500"))
    }
}
