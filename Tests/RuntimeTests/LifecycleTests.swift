import XCTest
@testable import Runtime

/// Stop steps run last registered first; a group keeps the place it was added at, however late
/// its steps arrive; waits end on a change, not a poll.
final class LifecycleTests: XCTestCase {
    func testStepsStopInReverseOrderAndAGroupKeepsItsPlace() {
        let events = Locked<[String]>([])
        let process = StopGroup("process")
        process.onStop("a") { events.withLock { $0.append("a") } }
        let service = StopGroup("service")
        process.add(service)
        process.onStop("server") { events.withLock { $0.append("server") } }
        // Registered after "server", but inside the group added before it.
        service.onStop("store") { events.withLock { $0.append("store") } }
        service.onStop("queue") { events.withLock { $0.append("queue") } }
        process.stop()
        process.stop()
        XCTAssertEqual(events.current, ["server", "queue", "store", "a"])
        // Something opened after the stop is released at once.
        service.onStop("late") { events.withLock { $0.append("late") } }
        XCTAssertEqual(events.current.last, "late")
    }

    func testPeriodicTaskStopWaitsForTheRunInProgress() {
        let inside = Locked(false)
        let release = Locked(false)
        let finished = Locked(false)
        let task = PeriodicTask(name: "t", intervalMs: 1) {
            inside.withLock { $0 = true }
            release.wait(until: { $0 })
            finished.withLock { $0 = true }
        }
        XCTAssertTrue(inside.wait(until: { $0 }, deadline: .after(ms: 60_000)))
        let stopped = Locked(false)
        Thread.detachNewThread {
            task.stop()
            stopped.withLock { $0 = true }
        }
        XCTAssertFalse(stopped.wait(until: { $0 }, deadline: .after(ms: 100)), "stop returned while a run was in progress")
        release.withLock { $0 = true }
        XCTAssertTrue(stopped.wait(until: { $0 }, deadline: .after(ms: 60_000)))
        XCTAssertTrue(finished.current)
    }

    func testLockedWaitEndsOnAChangeOrAtTheDeadline() {
        let v = Locked(0)
        XCTAssertFalse(v.wait(until: { $0 > 0 }, deadline: .after(ms: 10)))
        Thread.detachNewThread { v.withLock { $0 = 5 } }
        XCTAssertTrue(v.wait(until: { $0 == 5 }, deadline: .after(ms: 60_000)))
    }
}
