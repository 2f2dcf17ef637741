import XCTest
import Foundation
import JSON
import Runtime
import Store
import OrderCore
import ParcelXAPI
@testable import ParcelXCore

/// The provider → OOPS tracking table and the poll schedule.
final class ParcelXTrackingTests: XCTestCase {
    func testEveryProviderStatusMapsOrIsLeftOutOnPurpose() {
        let expected: [ParcelXStatusCode: TrackingStatus?] = [
            .pending: .placed, .booked: .placed, .manifested: .placed, .pickupPending: .placed, .outForPickup: .placed,
            .pickedUp: .pickedUp, .inTransit: .inTransit, .delivered: .delivered, .cancelled: .cancelled,
            .returnToOrigin: .rtoInTransit, .rtoInTransit: .rtoInTransit, .rtoPending: .rtoInTransit, .rtoOutForDelivery: .rtoInTransit,
            .readyToShip: nil,  // ambiguous in the public record: kept raw
            .sandboxOutForDelivery: .outForDelivery, .sandboxUndelivered: .deliveryFailed, .sandboxRTODelivered: .rtoDelivered, .sandboxLost: .lost,
        ]
        XCTAssertEqual(Set(expected.keys), Set(ParcelXStatusCode.allCases), "every code the contract lists is decided here")
        for (code, status) in expected {
            XCTAssertEqual(ParcelXTrackingMap.status(forProviderCode: code.rawValue), status, "\(code)")
        }
        for unknown in [0, 228, 299, 999, -1] { XCTAssertNil(ParcelXTrackingMap.status(forProviderCode: unknown), "\(unknown) is not guessed") }
        // Every OOPS tracking state is reachable from some provider status.
        XCTAssertEqual(Set(ParcelXTrackingMap.table.values), Set(TrackingStatus.allCases))
    }

    func testPollsBackOffWithTheShipmentsAge() {
        let s = TrackingSchedule(baseMs: 1000, maxMs: 8000, ageStepMs: 10_000, maxAgeMs: 100_000)
        XCTAssertEqual(s.delayMs(ageMs: 0), 1000)
        XCTAssertEqual(s.delayMs(ageMs: 9_999), 1000)
        XCTAssertEqual(s.delayMs(ageMs: 10_000), 2000)
        XCTAssertEqual(s.delayMs(ageMs: 25_000), 4000)
        XCTAssertEqual(s.delayMs(ageMs: 35_000), 8000)
        XCTAssertEqual(s.delayMs(ageMs: 1_000_000_000), 8000, "capped")
        XCTAssertEqual(s.delayMs(ageMs: -5), 1000, "a clock step back is age 0")
        XCTAssertTrue(s.polls(ageMs: 100_000))
        XCTAssertFalse(s.polls(ageMs: 100_001))

        let d = TrackingSchedule(Config.fromEnvironment([:]))
        XCTAssertEqual(d, .standard)
        let c = TrackingSchedule(Config.fromEnvironment(["OOPS_TRACK_POLL_MS": "5", "OOPS_TRACK_MAX_POLL_MS": "1", "OOPS_TRACK_AGE_STEP_S": "99999999999999",
                                              "OOPS_TRACK_MAX_AGE_S": "-3"]))
        XCTAssertEqual(c.baseMs, 50, "brought to the range")
        XCTAssertEqual(c.maxMs, 50, "never below the base")
        XCTAssertEqual(c.ageStepMs, 31_536_000_000)
        XCTAssertEqual(c.maxAgeMs, 60_000)
    }
}

/// The audit log's retention: the sweep removes request and response logs written before the
/// cutoff and keeps the rest (a real SQLite file).
final class ProviderLogRetentionTests: XCTestCase {
    func testTheSweepRemovesOnlyLogsPastTheCutoff() throws {
        let dir = NSTemporaryDirectory() + "oops-retention-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try SQLiteStore(path: dir + "/parcelx.sqlite", log: Logger(service: "test", instance: 0, level: .error))
        defer { store.close() }
        let logs = ProviderLogRepository(store: store)
        try logs.prepare()
        let now = Clock.wallMillis()
        for (id, ageDays) in [("old", 40), ("edge", 31), ("new", 1)] {
            let at = JSON.string(Clock.iso8601(millis: now - Int64(ageDays) * 86_400_000))
            _ = try store.insert(ProviderLogRepository.requests, ["_id": .string("rq-\(id)"), "orderId": "ord_1", "createdAt": at])
            _ = try store.insert(ProviderLogRepository.responses, ["_id": .string("rs-\(id)"), "orderId": "ord_1", "requestLogId": .string("rq-\(id)"), "createdAt": at])
        }
        XCTAssertEqual(try logs.removeOlder(thanMs: now - 30 * 86_400_000), 4)
        XCTAssertEqual(try store.find(ProviderLogRepository.requests, where: .all).compactMap { $0["_id"]?.stringValue }, ["rq-new"])
        XCTAssertEqual(try store.find(ProviderLogRepository.responses, where: .all).compactMap { $0["_id"]?.stringValue }, ["rs-new"])
        XCTAssertEqual(try logs.removeOlder(thanMs: now - 30 * 86_400_000), 0, "a second sweep finds nothing")
    }
}
