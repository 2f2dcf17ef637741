import XCTest
import Foundation
import JSON
import Runtime
import Store
import Queue
import HTTPClient
@testable import OrderCore

/// The webhook address rules and the signature, without a network.
final class WebhookTargetTests: XCTestCase {
    func testOnlyPublicAddressesPass() {
        let refused: [[UInt8]] = [
            [127, 0, 0, 1], [127, 9, 9, 9], [10, 0, 0, 1], [172, 16, 0, 1], [172, 31, 255, 255], [192, 168, 1, 1], [169, 254, 169, 254],
            [100, 64, 0, 1], [100, 127, 255, 255], [0, 0, 0, 0], [224, 0, 0, 1], [255, 255, 255, 255], [192, 0, 2, 1], [198, 18, 0, 1],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],  // ::1
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  // ::
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 127, 0, 0, 1],  // ::ffff:127.0.0.1
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 169, 254, 169, 254],
            [0x00, 0x64, 0xFF, 0x9B, 0, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1],  // NAT64 of 10.0.0.1
            [0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xFF, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [1, 2, 3],
        ]
        for a in refused { XCTAssertFalse(WebhookTarget.isPublic(a), "\(a)") }
        let allowed: [[UInt8]] = [[8, 8, 8, 8], [172, 32, 0, 1], [100, 128, 0, 1], [1, 1, 1, 1],
                                  [0x26, 0x06, 0x47, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x11],
                                  [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 8, 8, 4, 4]]
        for a in allowed { XCTAssertTrue(WebhookTarget.isPublic(a), "\(a)") }
    }

    func testURLsAreCheckedBeforeAnyAddress() {
        func refusal(_ u: String, allowed: Set<String> = []) -> WebhookTarget.Refusal? {
            if case .failure(let r) = WebhookTarget.check(u, allowed: allowed) { return r }
            return nil
        }
        XCTAssertEqual(refusal("http://example.com/h"), .malformed("the scheme must be https"))
        XCTAssertEqual(refusal("https://u:p@example.com/h"), .malformed("credentials in the URL are not allowed"))
        XCTAssertEqual(refusal("https://localhost/h"), .forbiddenAddress("127.0.0.1"))
        XCTAssertEqual(refusal("https://127.1/h"), .forbiddenAddress("127.0.0.1"))
        XCTAssertEqual(refusal("https://[::1]:8443/h"), .forbiddenAddress("::1"))
        XCTAssertNotNil(refusal("https://" + String(repeating: "a", count: 2100) + ".com/"))
        // An allowed test receiver: no address check, http accepted, no pin.
        guard case .success(let t) = WebhookTarget.check("http://127.0.0.1:9999/x", allowed: ["127.0.0.1:9999"]) else { return XCTFail() }
        XCTAssertEqual(t.pin, [])
        XCTAssertNotNil(refusal("http://127.0.0.1:9998/x", allowed: ["127.0.0.1:9999"]), "only the named port")
    }

    func testTheSignatureIsHMACOverTimestampAndBody() {
        // HMAC-SHA256("key", "1700000000.{}") computed independently (python3 hmac).
        XCTAssertEqual(WebhookSignature.value(secret: "key", timestamp: 1_700_000_000, body: Array("{}".utf8)),
                       "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae")
    }
}

/// Webhook events past retention are removed by the sweep; younger ones stay (a real SQLite file).
final class WebhookRetentionTests: XCTestCase {
    func testTheSweepRemovesOnlyEventsPastRetention() throws {
        let dir = NSTemporaryDirectory() + "oops-whret-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = Logger(service: "test", instance: 0, level: .error)
        let store = try SQLiteStore(path: dir + "/order.sqlite", log: log)
        defer { store.close() }
        let queue = try JobQueue(name: "wh-test", redisURL: "redis://127.0.0.1:1")  // never used: Redis is connected lazily
        defer { queue.close() }
        let http = try CurlHTTPClient(options: CurlClientOptions(), name: "wh-test")
        defer { http.close() }
        let w = WebhookService(store: store, queue: queue, http: http, settings: WebhookSettings(Config.fromEnvironment([:])), log: log)
        try w.prepare()
        let now = Clock.wallMillis()
        for (id, ageDays) in [("old", 31), ("new", 1)] {
            _ = try store.insert(WebhookService.events, ["_id": .string("evt_\(id)_1"), "userId": "u", "orderId": "o", "seq": 1,
                                                         "createdAtMs": .int(now - Int64(ageDays) * 86_400_000)])
        }
        XCTAssertEqual(try w.removeEvents(olderThanMs: now - 30 * 86_400_000), 1)
        XCTAssertEqual(try store.find(WebhookService.events, where: .all).compactMap { $0["_id"]?.stringValue }, ["evt_new_1"])
    }
}
