import Foundation
import XCTest
@testable import Runtime

final class ClockTests: XCTestCase {
    func testISO8601KnownInstants() {
        XCTAssertEqual(Clock.iso8601(millis: 0), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(Clock.iso8601(millis: 1_795_735_651_123), "2026-11-26T23:27:31.123Z")
        XCTAssertEqual(Clock.iso8601(millis: 951_782_400_007), "2000-02-29T00:00:00.007Z")
    }

    func testISO8601AgreesWithFoundation() {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let ms = Int64.random(in: 0..<4_102_444_800_000, using: &rng)
            let date = Date(timeIntervalSince1970: Double(ms) / 1000)
            let ours = Clock.iso8601(millis: ms)
            // Foundation rounds the fraction; compare the second and parse our text back.
            XCTAssertEqual(String(ours.prefix(19)), String(f.string(from: date).prefix(19)), "\(ms)")
            XCTAssertEqual(f.date(from: ours).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }, ms, ours)
        }
    }
}
