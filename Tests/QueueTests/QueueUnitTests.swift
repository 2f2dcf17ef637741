import JSON
import XCTest
@testable import Queue

final class QueueUnitTests: XCTestCase {
    func testExponentialBackoffDoublesFromTheBaseDelay() {
        let b = Backoff.exponential(delayMs: 1000)
        XCTAssertEqual((1...5).map { b.delayMs(afterAttempts: $0) }, [1000, 2000, 4000, 8000, 16000])
        XCTAssertEqual(b.delayMs(afterAttempts: 200), Int(Int32.max), "huge attempt numbers are capped, not overflowed")
    }

    func testFixedBackoffIsConstant() {
        XCTAssertEqual((1...3).map { Backoff.fixed(delayMs: 250).delayMs(afterAttempts: $0) }, [250, 250, 250])
    }

    func testBackoffReadsBullMQForms() {
        XCTAssertEqual(Backoff(json: 500), .fixed(delayMs: 500), "an integer backoff means fixed")
        XCTAssertEqual(Backoff(json: ["type": "exponential", "delay": 100]), .exponential(delayMs: 100))
        XCTAssertNil(Backoff(json: ["type": "custom-thing", "delay": 100]))
        XCTAssertNil(Backoff(json: nil))
    }

    func testDefaultsLiveInOnePlace() {
        let d = QueueDefaults.standard
        XCTAssertEqual(d.attempts, 5)
        XCTAssertEqual(d.backoff, .exponential(delayMs: 1000))
        XCTAssertEqual(d.removeOnComplete, .count(1000))
        XCTAssertEqual(d.removeOnFail, .count(5000))
    }

    func testOptionsJSONUsesBullMQKeysAndFillsDefaults() throws {
        let o = JobOptions().json(defaults: .standard)
        XCTAssertEqual(o, ["attempts": 5, "delay": 0, "backoff": ["type": "exponential", "delay": 1000],
                           "removeOnComplete": 1000, "removeOnFail": 5000])
        let custom = JobOptions(jobId: "ord_1", attempts: 3, backoff: .fixed(delayMs: 50), delayMs: 2000, priority: 4, lifo: true,
                                removeOnComplete: .removeImmediately, removeOnFail: .age(seconds: 3600, count: 5), keepLogs: 10)
            .json(defaults: .standard)
        XCTAssertEqual(custom["jobId"], "ord_1")
        XCTAssertEqual(custom["attempts"], 3)
        XCTAssertEqual(custom["backoff"], ["type": "fixed", "delay": 50])
        XCTAssertEqual(custom["delay"], 2000)
        XCTAssertEqual(custom["priority"], 4)
        XCTAssertEqual(custom["lifo"], true)
        XCTAssertEqual(custom["removeOnComplete"], true, "remove at once is written as true, as BullMQ does")
        XCTAssertEqual(custom["removeOnFail"], ["age": 3600, "count": 5])
        XCTAssertEqual(custom["kl"], 10, "keepLogs is stored under its short alias")
    }

    func testKeepJobsRoundTripsThroughBullMQForms() {
        XCTAssertEqual(KeepJobs(json: true), KeepJobs.removeImmediately)
        XCTAssertEqual(KeepJobs(json: false), KeepJobs.all)
        XCTAssertEqual(KeepJobs(json: 7), .count(7))
        XCTAssertEqual(KeepJobs(json: ["age": 10, "limit": 3]), KeepJobs(count: nil, ageSeconds: 10, limit: 3))
        XCTAssertEqual(KeepJobs.all.json, false)
        XCTAssertEqual(KeepJobs.all.scriptCount, -1)
        XCTAssertEqual(KeepJobs.removeImmediately.scriptCount, 0)
    }

    func testJobDecodingFollowsBullMQReaderRules() {
        let j = Job(id: "9", fields: ["name": "create-order", "data": "{\"orderId\":\"o1\"}", "opts": "{\"attempts\":0}",
                                      "timestamp": "1795645059298", "atm": "2", "attemptsMade": "4", "ats": "3",
                                      "stacktrace": "[\"a\",\"b\"]", "failedReason": "boom", "defa": "stalled"],
                    context: nil)
        XCTAssertEqual(j.attemptsMade, 4, "a legacy attemptsMade field wins over atm")
        XCTAssertEqual(j.attemptsStarted, 3)
        XCTAssertEqual(j.maxAttempts, 1, "attempts 0 behaves as one try")
        XCTAssertEqual(j.stacktrace, ["a", "b"])
        XCTAssertEqual(j.data["orderId"], "o1")
        XCTAssertEqual(j.progress, 0)
        XCTAssertEqual(j.deferredFailure, "stalled")
        XCTAssertEqual(j.timestamp, 1_795_645_059_298)
    }

    func testProcessorResultsAreStoredAsJSON() {
        XCTAssertEqual(Worker.normalizedJSON(""), "null")
        XCTAssertEqual(Worker.normalizedJSON("{\"a\":1}"), "{\"a\":1}")
        XCTAssertEqual(Worker.normalizedJSON("plain text"), "\"plain text\"")
    }

    func testProducerRejectsIdsBullMQRejects() throws {
        let q = try JobQueue(name: "q", redisURL: "redis://127.0.0.1:1")
        XCTAssertThrowsError(try q.addArgs(name: "n", dataJSON: "{}", options: JobOptions(jobId: "123")))
        XCTAssertThrowsError(try q.addArgs(name: "n", dataJSON: "{}", options: JobOptions(jobId: "a:b")))
        XCTAssertThrowsError(try q.addArgs(name: "n", dataJSON: "{}", options: JobOptions(priority: 3_000_000)))
        XCTAssertThrowsError(try q.addArgs(name: "n", dataJSON: "not json", options: JobOptions()))
        XCTAssertNoThrow(try q.addArgs(name: "n", dataJSON: "{}", options: JobOptions(jobId: "ord_01J")))
    }
}
