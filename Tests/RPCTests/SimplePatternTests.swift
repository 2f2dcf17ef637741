import Foundation
import XCTest
@testable import RPC
import TestSupport

/// SimplePattern must say exactly what NSRegularExpression says for every pattern it accepts.
final class SimplePatternTests: XCTestCase {
    /// The schemas' own patterns, and more of the same subset.
    static let patterns = [
        "^[A-Za-z0-9_-]+$", "^[6-9][0-9]{9}$", "^[1-9][0-9]{5}$", "^[0-9+ -]*$", "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$",
        "^[0-9]*$", "^[A-Za-z0-9_./-]+$", "^txn_[0-9A-Z]{26}$",
        "^a?b{2,3}c*$", "^[^a-c]{1,}$", "^\\d{2}-\\d{2}$", "^[\\s\\d]+x?$", "^$", "^[\\.\\-]+\\+$", "^[a-c]{0,2}[b-d]{2,}$",
        "^[A-Z]{5}[0-9]{4}[A-Z]$", "^é+[^é]$",
    ]

    func testAgreesWithFoundationOnRandomAndEdgeInputs() throws {
        let alphabet: [String] = ["a", "b", "c", "d", "x", "A", "Z", "0", "1", "5", "9", "_", "-", ".", "/", "+", " ", "\t", "\n", "@",
                                  "é", "\u{00A0}", "\u{2003}", "\u{000B}", "\u{0085}", "\u{2028}", "\u{000C}", "\r", "日", "😀", "t", "n", "T", "X"]
        // Seeded, so a failure names an input that fails again.
        var rng = SplitMix64(seed: 0x5EED_0F_00B5)
        for pattern in Self.patterns {
            let simple = try XCTUnwrap(SimplePattern.compile(pattern), pattern)
            let re = try NSRegularExpression(pattern: pattern)
            // ICU's `$` also matches before a final line break; JSON Schema's does not, so only a
            // match that ends at the end of the input counts.
            func foundation(_ s: String) -> Bool {
                let n = (s as NSString).length
                return re.matches(in: s, range: NSRange(location: 0, length: n)).contains { NSMaxRange($0.range) == n }
            }
            var inputs = ["", "txn_01M8B4Q9WXFH0VKZH7WRJNP62A", "9876543210", "560001", "a@b.co", "a@b", "@b.c", "a b@c.d", "ord_01M8-x.y/z",
                          "+91 98765-43210", "bbb", "abbc", "12-34", "ABCDE1234F", "éx", "éé", "..-+", "ab", "abbbbd", "dd"]
            for _ in 0..<6000 {
                inputs.append((0..<Int.random(in: 0...12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }.joined())
            }
            for s in inputs {
                XCTAssertEqual(simple.matches(s), foundation(s), "\(pattern) on \(s.debugDescription) \(s.unicodeScalars.map { String($0.value, radix: 16) })")
            }
        }
    }

    func testALineBreakAtTheEndIsNotAllowedByDollar() {
        for s in ["ord_1\n", "ord_1\r\n", "ord_1\u{2028}"] {
            XCTAssertEqual(SimplePattern.compile("^[A-Za-z0-9_-]+$")?.matches(s), false, s.debugDescription)
            XCTAssertEqual(Schema.id.validate(.string(s)).count, 1, s.debugDescription)
            XCTAssertEqual(Schema.string(pattern: "^(ord)_1$").validate(.string(s)).count, 1, "the Foundation path: \(s.debugDescription)")
        }
        XCTAssertEqual(Schema.id.validate("ord_1"), [])
    }

    func testPatternsOutsideTheSubsetAreLeftToFoundation() {
        for p in ["a+", "^a+", "a+$", "^(ab)+$", "^a|b$", "^.+$", "^a*?$", "^a++$", "^\\w+$", "^[[:alpha:]]$", "^[]a]$", "^[a$", "^a{3,1}$",
                  "^a{x}$", "^\\bfoo$", "^a\\$"] {
            XCTAssertNil(SimplePattern.compile(p), p)
        }
    }

    func testSchemaChecksUseIt() {
        let errs = Schema.object([("id", .id), ("pin", .string(pattern: "^[1-9][0-9]{5}$"))]).validate(["id": "ord_1", "pin": "012345"])
        XCTAssertEqual(errs.map(\.path), ["pin"])
        // A pattern only Foundation understands still works.
        XCTAssertEqual(Schema.string(pattern: "^(ab)+$").validate("abab"), [])
        XCTAssertEqual(Schema.string(pattern: "^(ab)+$").validate("aba").count, 1)
    }
}
