import XCTest
@testable import JSON

/// JSONValueDecoder reads what JSONValueEncoder writes, and what Foundation's decoder would read.
final class JSONValueDecoderTests: XCTestCase {
    enum Colour: String, Codable, Equatable { case red, blue }
    struct Inner: Codable, Equatable {
        var n: Int64
        var note: String?
    }
    struct Record: Codable, Equatable {
        var name: String
        var count: Int
        var ratio: Double
        var flag: Bool
        var colour: Colour
        var tags: [String]
        var inner: Inner
        var list: [Inner]
        var optional: String?
        var raw: JSON
    }

    let value = Record(name: "a", count: 3, ratio: 2.5, flag: true, colour: .blue, tags: ["x", "y"], inner: Inner(n: 7, note: nil),
                       list: [Inner(n: 1, note: "one")], optional: nil, raw: ["k": [1, "two", .null]])

    func testRoundTripAndAgreementWithFoundation() throws {
        let json = try JSON(encoding: value)
        XCTAssertEqual(try JSONValueDecoder.decode(Record.self, from: json), value)
        XCTAssertEqual(try JSONValueDecoder.decode(Record.self, from: json), try json.decode(Record.self))
    }

    func testNumbersConvertOnlyWhenExact() throws {
        XCTAssertEqual(try JSONValueDecoder.decode(Inner.self, from: ["n": .double(4.0)]).n, 4)
        XCTAssertThrowsError(try JSONValueDecoder.decode(Inner.self, from: ["n": .double(4.5)]))
        XCTAssertThrowsError(try JSONValueDecoder.decode(Inner.self, from: ["n": "4"]))
        XCTAssertThrowsError(try JSONValueDecoder.decode(Inner.self, from: ["n": .null]))
        XCTAssertThrowsError(try JSONValueDecoder.decode(Inner.self, from: ["note": "no n"]))
        XCTAssertThrowsError(try JSONValueDecoder.decode(Inner.self, from: ["n": 1, "note": 5]))
        XCTAssertEqual(try JSONValueDecoder.decode(Inner.self, from: ["n": 1, "note": .null]), Inner(n: 1, note: nil))
        XCTAssertThrowsError(try JSONValueDecoder.decode(Colour.self, from: "green"))
    }
}
