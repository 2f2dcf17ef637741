import Foundation
import JSON
import Redis
import Runtime
import TestSupport
import XCTest
@testable import Queue

/// The async worker (fetcher threads, jobs as tasks on a small executor) against a real Redis:
/// jobs in flight are bounded by `maxInFlight`, not by threads or connections, and every BullMQ
/// rule of the threaded worker still holds.
final class AsyncWorkerIntegrationTests: RedisQueueTestCase {
    private func startAsyncWorker(maxInFlight: Int, executorThreads: Int = 2, options: WorkerOptions = .init(),
                                  _ processor: @escaping @Sendable (Job) async throws -> String) throws -> Worker {
        var o = options
        if o.logger == nil { o.logger = Logger(service: "queue-test", instance: 0, level: .error) }
        o.name = "async-test"
        let w = try Worker(queueName: queueName, redisURL: redis.url, fetchers: 1, maxInFlight: maxInFlight,
                           executor: ThreadPoolExecutor(threads: executorThreads, name: "test-exec"), options: o, processor: processor)
        workers.append(w)
        w.start()
        return w
    }

    /// Suspends the calling task (not its thread) until `gate` is open.
    private static func wait(for gate: Locked<Bool>) async throws {
        while !gate.current { try await Task.sleep(nanoseconds: 20_000_000) }
    }

    func testHundredsInFlightOnTwoThreadsWithLocksRenewedInBatches() throws {
        let q = try makeQueue()
        let ids = try q.addBulk((0..<300).map { i in NewJob(name: "n", dataJSON: #"{"i":\#(i)}"#) })
        let gate = Locked(false)
        let running = Locked((now: 0, peak: 0))
        var o = WorkerOptions()
        // Locks that would expire three times over while the jobs wait, unless renewed.
        o.lockDurationMs = 1_000
        o.stalledIntervalMs = 300
        let w = try startAsyncWorker(maxInFlight: 250, options: o) { job in
            running.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) }
            try await Self.wait(for: gate)
            running.withLock { $0.now -= 1 }
            return #"{"done":"\#(job.id)"}"#
        }
        XCTAssertTrue(waitUntil(timeoutMs: 30_000) { running.current.now == 250 }, "in flight: \(running.current)")
        // Two executor threads hold 250 jobs; the worker uses 1 fetching, 1 finishing and 1
        // maintenance connection.
        let c = try raw()
        let clients = try c.run(["CLIENT", "LIST"]).stringValue ?? ""
        let mine = clients.split(separator: "\n").count - 1  // less this test's own connection
        usleep(3_000_000)
        XCTAssertEqual(running.current.now, 250, "no more than maxInFlight, and none lost to a stall")
        XCTAssertEqual(w.activeJobIds.count, 250)
        gate.withLock { $0 = true }
        XCTAssertTrue(waitUntil(timeoutMs: 30_000) { (try? q.counts().completed) == 300 }, "\((try? q.counts().json) ?? .null)")
        XCTAssertEqual(running.current.peak, 250)
        XCTAssertLessThanOrEqual(mine, 3, clients)
        for id in ids.prefix(20) {
            let j = try XCTUnwrap(try q.job(id: id))
            XCTAssertEqual(j.stalledCounter, 0, "lock of \(id) expired")
            XCTAssertEqual(j.attemptsMade, 1)
            XCTAssertEqual(j.returnValue?["done"]?.stringValue, id)
        }
        XCTAssertEqual(w.counters.finishesGivenUpTotal, 0)
    }

    func testRetriesUnrecoverableErrorsPauseAndGracefulStop() throws {
        let q = try makeQueue()
        let gate = Locked(false)
        let w = try startAsyncWorker(maxInFlight: 10) { job in
            switch job.name {
            case "flaky": if job.attemptsMade == 0 { throw TestFailure(description: "first try fails") }
            case "fatal": throw UnrecoverableError("bad data")
            case "slow": try await Self.wait(for: gate)
            default: break
            }
            return "null"
        }
        let flaky = try q.add(name: "flaky", dataJSON: "{}", options: JobOptions(attempts: 3))
        let fatal = try q.add(name: "fatal", dataJSON: "{}", options: JobOptions(attempts: 3))
        XCTAssertTrue(waitUntil(timeoutMs: 30_000) { (try? q.state(id: flaky)) == .completed && (try? q.state(id: fatal)) == .failed })
        XCTAssertEqual(try q.job(id: flaky)?.attemptsMade, 2)
        XCTAssertEqual(try q.job(id: fatal)?.attemptsMade, 1, "an unrecoverable error burns no more attempts")
        XCTAssertEqual(try q.job(id: fatal)?.failedReason, "bad data")

        // Paused locally: nothing is taken; resumed: it runs.
        w.pause()
        usleep(1_200_000)  // a fetcher already waiting on the marker returns within maxBlockMs
        let held = try q.add(name: "quick", dataJSON: "{}")
        usleep(500_000)
        XCTAssertEqual(try q.state(id: held), .waiting)
        w.resume()
        XCTAssertTrue(waitUntil { (try? q.state(id: held)) == .completed })

        // Stop: in-flight work that does not finish within the grace goes back to the queue.
        let slow = try q.add(name: "slow", dataJSON: "{}")
        XCTAssertTrue(waitUntil { w.activeJobIds.contains(slow) })
        w.stop(graceMs: 300)
        XCTAssertEqual(try q.state(id: slow), .waiting)
        gate.withLock { $0 = true }
        XCTAssertTrue(waitUntil { w.counters.finishesGivenUp[.released] == 1 }, "\(w.counters)")
        XCTAssertEqual(try q.state(id: slow), .waiting, "its late result is discarded")
    }

    func testOutOfRangeLimitsAreRefused() {
        XCTAssertThrowsError(try Worker(queueName: queueName, redisURL: redis.url, fetchers: 0, maxInFlight: 10,
                                        executor: ThreadPoolExecutor(threads: 1, name: "x")) { _ in "null" })
        XCTAssertThrowsError(try Worker(queueName: queueName, redisURL: redis.url, fetchers: 1, maxInFlight: 0,
                                        executor: ThreadPoolExecutor(threads: 1, name: "x")) { _ in "null" })
    }
}
