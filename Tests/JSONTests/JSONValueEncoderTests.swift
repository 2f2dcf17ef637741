import Foundation
import XCTest
@testable import JSON

/// JSONValueEncoder must give what Foundation's JSONEncoder followed by the parser gives.
final class JSONValueEncoderTests: XCTestCase {
    enum Mode: String, Codable { case cod, prepaid }

    struct Inner: Codable, Equatable {
        var sku: String
        var qty: Int
        var tags: [String]
    }

    struct Custom: Codable {
        var a: Int
        var b: [Int?]
        // Nested containers and a super encoder, written by hand.
        func encode(to encoder: Encoder) throws {
            enum K: String, CodingKey { case a, nested, list, parent }
            var c = encoder.container(keyedBy: K.self)
            try c.encode(a, forKey: .a)
            var n = c.nestedContainer(keyedBy: K.self, forKey: .nested)
            try n.encode("x", forKey: .a)
            var l = c.nestedUnkeyedContainer(forKey: .list)
            for x in b { try l.encode(x) }
            var ll = l.nestedUnkeyedContainer()
            try ll.encode(true)
            try ll.encodeNil()
            var lk = l.nestedContainer(keyedBy: K.self)
            try lk.encode(1.5, forKey: .a)
            try "sup".encode(to: c.superEncoder())
            try 7.encode(to: c.superEncoder(forKey: .parent))
        }
        init(a: Int, b: [Int?]) { self.a = a; self.b = b }
        init(from decoder: Decoder) throws { fatalError("not used") }
    }

    struct Everything: Codable {
        var s = "héllo \"quoted\" \n ✓"
        var i = -42
        var i8: Int8 = -8, i16: Int16 = 16, i32: Int32 = -32, i64 = Int64.min
        var u = UInt.max, u8: UInt8 = 255, u16: UInt16 = 65535, u32 = UInt32.max, u64 = UInt64.max
        var d = 3.0, d2 = 0.1, d3 = -2.5e-8, d4 = 1e21, d5 = 123456789012345.0
        var f: Float = 0.1
        var b = true
        var none: String? = nil
        var some: String? = "here"
        var mode = Mode.cod
        var inner = Inner(sku: "T-1", qty: 2, tags: ["a", "b"])
        var inners = [Inner(sku: "x", qty: 0, tags: [])]
        var dict = ["k": 1, "j": 2]
        var intKeys = [1: "one", 2: "two"]
        var nested = [[1, 2], [], [3]]
        var json: JSON = ["raw": [1, "two", nil, 3.5, ["deep": true]]]
        var empty: [String: Int] = [:]
    }

    struct Nothing: Encodable {
        func encode(to encoder: Encoder) throws {}
    }

    func foundation<T: Encodable>(_ v: T) throws -> JSON {
        try JSONParser.parse([UInt8](try JSONEncoder().encode(v)))
    }

    func testMatchesFoundationForEveryShape() throws {
        XCTAssertEqual(try JSONValueEncoder.encode(Everything()), try foundation(Everything()))
        XCTAssertEqual(try JSONValueEncoder.encode(Custom(a: 1, b: [1, nil, 3])), try foundation(Custom(a: 1, b: [1, nil, 3])))
        XCTAssertEqual(try JSONValueEncoder.encode([Everything(), Everything()]), try foundation([Everything(), Everything()]))
        for top in [JSON.null, 1, "s", [1, 2], ["a": ["b": nil]]] as [JSON] {
            XCTAssertEqual(try JSONValueEncoder.encode(top), try foundation(top))
        }
        XCTAssertEqual(try JSONValueEncoder.encode(Optional<Int>.none), .null)
        XCTAssertEqual(try JSONValueEncoder.encode(5), 5)
        XCTAssertEqual(try JSONValueEncoder.encode(["x": Inner(sku: "s", qty: 1, tags: ["t"])]), try foundation(["x": Inner(sku: "s", qty: 1, tags: ["t"])]))
    }

    func testRefusesWhatFoundationRefuses() {
        XCTAssertThrowsError(try JSONValueEncoder.encode(Nothing()))
        XCTAssertThrowsError(try JSONEncoder().encode(Nothing()))
        for bad in [Double.nan, .infinity, -.infinity] {
            XCTAssertThrowsError(try JSONValueEncoder.encode(["v": bad]))
            XCTAssertThrowsError(try JSONEncoder().encode(["v": bad]))
        }
    }

    func testInitEncodingUsesIt() throws {
        XCTAssertEqual(try JSON(encoding: Inner(sku: "a", qty: 3, tags: [])), ["sku": "a", "qty": 3, "tags": []])
    }
}
