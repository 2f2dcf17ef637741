import XCTest
import JSON

/// The shortcuts taken for speed (integers read digit by digit, strings copied whole, objects
/// read member by member) must give exactly what the general paths give.
final class JSONFastPathTests: XCTestCase {
    func testIntegersAtTheEdgesOfTheDigitShortcut() throws {
        let cases: [(String, JSON)] = [
            ("0", .int(0)), ("-0", .int(0)), ("7", .int(7)), ("-7", .int(-7)),
            ("999999999999999999", .int(999_999_999_999_999_999)),        // 18 digits: the shortcut
            ("-999999999999999999", .int(-999_999_999_999_999_999)),
            ("9223372036854775807", .int(Int64.max)),                     // 19 digits: the general path
            ("-9223372036854775808", .int(Int64.min)),
            ("9223372036854775808", .double(9223372036854775808.0)),      // past Int64: a double
        ]
        for (text, want) in cases {
            XCTAssertEqual(try JSONParser.parse(text), want, text)
            XCTAssertEqual(try JSONParser.parse("[\(text)]"), .array([want]), text)
        }
    }

    func testIntegersAreWrittenAsTheirDecimalDigits() {
        for v: Int64 in [0, 1, 9, 10, -1, -10, 1234567890, Int64.max, Int64.min, -9, 100] {
            XCTAssertEqual(JSON.int(v).serialized(), String(v))
        }
    }

    func testStringsWithAndWithoutEscapesRoundTrip() throws {
        for s in ["", "plain", "é and 😀", "quote \" here", "back\\slash", "tab\tnew\nline", "\u{01}", String(repeating: "x", count: 300)] {
            let text = JSON.string(s).serialized()
            XCTAssertEqual(try JSONParser.parse(text), .string(s), text)
        }
        XCTAssertEqual(JSON.string("a\"b").serialized(), #""a\"b""#)
        XCTAssertEqual(JSON.string("\u{01}").serialized(), #""\u0001""#)
    }

    /// Strings are scanned eight bytes at a time; whatever needs care (a quote, a backslash, a
    /// control character, a multi-byte character) must be found at every offset.
    func testEveryOffsetOfTheWordScanFindsWhatNeedsCare() throws {
        let specials: [String] = ["\"", "\\", "\n", "é", "😀", "\u{7F}", "/"]
        for len in 0..<26 {
            for pos in 0...len {
                for sp in specials {
                    var chars = Array(repeating: "a", count: len)
                    chars.insert(sp, at: pos)
                    let str = chars.joined()
                    XCTAssertEqual(try JSONParser.parse(JSON.string(str).serialized()), .string(str), "\(len) \(pos) \(sp)")
                }
                // A raw control character or invalid UTF-8 at this offset is refused.
                var raw = Array(repeating: UInt8(ascii: "a"), count: len)
                raw.insert(0x01, at: pos)
                XCTAssertThrowsError(try JSONParser.parse([0x22] + raw + [0x22]), "control at \(pos) of \(len)")
                raw[pos] = 0xFF
                XCTAssertThrowsError(try JSONParser.parse([0x22] + raw + [0x22]), "0xFF at \(pos) of \(len)")
            }
            // Unterminated, whatever the length.
            XCTAssertThrowsError(try JSONParser.parse([0x22] + Array(repeating: UInt8(ascii: "a"), count: len)))
        }
    }

    func testReadObjectHandsOverEveryMemberWithItsKey() throws {
        let text = Array(#"{"plain":1,"esc\u0061ped":"x","é":[1,{"in":true}],"n":null}"#.utf8)
        var seen: [String: JSON] = [:]
        var matched: [String] = []
        let isObject = try text.withUnsafeBufferPointer { b throws(JSONParseError) in
            try JSONParser.readObject(b) { key, p throws(JSONParseError) in
                switch key {
                case "plain": matched.append("plain")
                case "escaped": matched.append("escaped")  // matched although written with an escape
                default: break
                }
                seen[key.string] = try p.readValue()
            }
        }
        XCTAssertTrue(isObject)
        XCTAssertEqual(matched, ["plain", "escaped"])
        XCTAssertEqual(seen, ["plain": 1, "escaped": "x", "é": [1, ["in": true]], "n": nil])
    }

    func testReadObjectRefusesWhatParseRefuses() {
        for bad in [#"{"a":1,}"#, #"{"a" 1}"#, #"{"a":1} x"#, "{\"a\":\"\u{01}\"}", #"{"a":[1,]}"#, #"{"a":1"#] {
            let bytes = Array(bad.utf8)
            XCTAssertThrowsError(try bytes.withUnsafeBufferPointer { b throws(JSONParseError) in
                try JSONParser.readObject(b) { _, p throws(JSONParseError) in _ = try p.readValue() }
            }, bad)
            XCTAssertThrowsError(try JSONParser.parse(bytes), bad)
        }
        // Not an object: nothing read, false returned.
        let arr = Array("[1]".utf8)
        XCTAssertEqual(try arr.withUnsafeBufferPointer { b throws(JSONParseError) in
            try JSONParser.readObject(b) { _, p throws(JSONParseError) in _ = try p.readValue() }
        }, false)
    }

    func testReadObjectKeepsTheDepthBound() {
        let deep = Array(("{\"a\":" + String(repeating: "[", count: 300) + String(repeating: "]", count: 300) + "}").utf8)
        XCTAssertThrowsError(try deep.withUnsafeBufferPointer { b throws(JSONParseError) in
            try JSONParser.readObject(b, maxDepth: 256) { _, p throws(JSONParseError) in _ = try p.readValue() }
        })
    }
}
