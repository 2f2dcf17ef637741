import XCTest
import Queue
import Redis
import Runtime

/// What a caller sees of the queue's refusals and of Redis failing: a refusal keeps its meaning
/// (it was all "Redis unavailable" in the queue administration), only a connection failure is an outage.
final class QueueErrorConversionTests: XCTestCase {
    func testRefusalsKeepTheirMeaning() {
        XCTAssertEqual(QueueError("held", kind: .jobActive).errorCode, .conflict)
        XCTAssertEqual(QueueError("held", kind: .jobActive).publicReason, "job_active")
        XCTAssertEqual(QueueError("sched", kind: .schedulerJob).publicReason, "scheduler_job")
        XCTAssertEqual(QueueError("gone", kind: .notFound).errorCode, .notFound)
        XCTAssertEqual(QueueError("bad id", kind: .invalid).errorCode, .invalidParams)
        XCTAssertEqual(QueueError("bad id", kind: .invalid).publicMessage, "bad id")
        XCTAssertEqual(QueueError("odd reply", kind: .unexpected).errorCode, .internalError)
        XCTAssertEqual(QueueError("odd reply", kind: .unexpected).publicMessage, "Internal error")
    }

    func testOnlyAConnectionFailureIsAnOutage() {
        for k: RedisError.Kind in [.connect, .io, .unavailable] { XCTAssertEqual(RedisError(k, "x").errorCode, .unavailable) }
        for k: RedisError.Kind in [.server, .protocolViolation, .badURL] { XCTAssertEqual(RedisError(k, "x").errorCode, .internalError) }
    }
}
