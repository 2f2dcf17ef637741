import XCTest
@testable import GatewayCore

/// Token buckets: the burst is served, then a refusal says how long to wait; settings out of
/// range give finite waits. Rates are slow enough that no refill can happen during a test.
final class RateLimiterTests: XCTestCase {
    func testBurstThenRetryAfter() {
        let l = RateLimiter(rate: 0.001, burst: 3)  // one token per 1000 s
        for _ in 0..<3 { XCTAssertNil(l.take("a")) }
        let wait = l.take("a")
        XCTAssertNotNil(wait)
        XCTAssertTrue((990...1000).contains(wait ?? 0), "\(String(describing: wait))")
        XCTAssertNil(l.take("b"), "keys have buckets of their own")
    }

    func testOutOfRangeSettingsGiveFiniteWaits() {
        for rate in [0, -5, Double.nan, Double.infinity * -1] {
            let l = RateLimiter(rate: rate, burst: 0)
            XCTAssertNil(l.take("k"), "a burst below one is one")
            XCTAssertEqual(l.take("k"), RateLimiter.maxWaitSeconds, "rate \(rate)")
        }
    }
}
