import JSON
import Runtime
import TestSupport
import XCTest
@testable import ParcelXCore

/// The failed-job spike alert as the clock moves: it fires at the threshold within the window and
/// clears by itself once old failures leave the window.
final class FailureSpikeMonitorTests: XCTestCase {
    func testFiresAtTheThresholdAndClearsWhenTheWindowMovesOn() {
        let clock = ManualClock()
        let m = FailureSpikeMonitor(windowMs: 60_000, threshold: 3, webhook: nil, log: Logger(service: "ParcelXSvc", instance: 0, level: .error),
                                    clock: clock)
        m.recordFailure(queue: "q")
        clock.advance(ms: 20_000)
        m.recordFailure(queue: "q")
        XCTAssertFalse(m.firing)
        clock.advance(ms: 20_000)
        m.recordFailure(queue: "q")
        XCTAssertTrue(m.firing)
        XCTAssertEqual(m.state["failuresInWindow"], 3)
        XCTAssertEqual(m.state["since"], .string(Clock.iso8601(millis: clock.nowMillis())))

        // 60 s after the first failure it has left the window: two remain, below the threshold.
        clock.advance(ms: 20_001)
        m.evaluate()
        XCTAssertFalse(m.firing)
        XCTAssertEqual(m.state["failuresInWindow"], 2)
        XCTAssertNil(m.state["since"])
    }
}
