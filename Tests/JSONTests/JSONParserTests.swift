import XCTest
import JSON

final class JSONParserTests: XCTestCase {
    func testParsesEveryKindOfValueAndRoundTrips() throws {
        let text = #"{"a":[1,-2,3.5,1e3,true,false,null],"b":{"c":"d\n\u00e9\ud83d\ude00"},"big":9007199254740993}"#
        let v = try JSONParser.parse(text)
        XCTAssertEqual(v["a"]?.arrayValue?.count, 7)
        XCTAssertEqual(v["a"]?.arrayValue?[0], .int(1))
        XCTAssertEqual(v["a"]?.arrayValue?[2], .double(3.5))
        XCTAssertEqual(v["b"]?["c"]?.stringValue, "d\né😀")
        XCTAssertEqual(v["big"], .int(9007199254740993), "64-bit integers must not pass through Double")
        // 1e3 is a double that serialises as 1000; a second round trip is stable to the byte.
        XCTAssertEqual(try JSONParser.parse(v.serialized()).serialized(), v.serialized())
        XCTAssertEqual(try JSONParser.parse(v.serialized())["big"], .int(9007199254740993))
    }

    func testRejectsMalformedInputWithPosition() {
        for bad in ["", "{", "[1,]", "{\"a\":1,}", "tru", "01", "1.", "\"abc", "{\"a\" 1}", "[1 2]", "nul", "\"\\x\"", "-", "1e", "{} {}"] {
            XCTAssertThrowsError(try JSONParser.parse(bad), bad)
        }
        do {
            _ = try JSONParser.parse("{\"a\": x}")
            XCTFail("should fail")
        } catch {
            XCTAssertEqual(error.offset, 6)
        }
    }

    func testRejectsInvalidUTF8AndLoneSurrogates() {
        XCTAssertThrowsError(try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]))
        XCTAssertThrowsError(try JSONParser.parse([0x22, 0xFF, 0x22]))
        XCTAssertThrowsError(try JSONParser.parse(#""\ud800""#))
        XCTAssertThrowsError(try JSONParser.parse([0x22, 0x01, 0x22]), "raw control characters are not allowed in strings")
    }

    func testDeepNestingIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try JSONParser.parse(deep)) { e in
            XCTAssertTrue(String(describing: e).contains("nesting"))
        }
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        XCTAssertNoThrow(try JSONParser.parse(ok))
    }

    func testSerializerEscapesAndSortsKeys() {
        let v: JSON = ["b": "x\"y\\z\u{01}", "a": 1]
        XCTAssertEqual(v.serialized(), #"{"a":1,"b":"x\"y\\z\u0001"}"#)
    }
}
