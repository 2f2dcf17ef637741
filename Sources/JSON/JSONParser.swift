import Foundation

/// Why a JSON text was refused, with the byte offset where the parser stopped.
public struct JSONParseError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let offset: Int
    public var description: String { "\(message) at byte \(offset)" }
}

/// A strict RFC 8259 parser over UTF-8 bytes: no trailing commas, no comments, no NaN, validated
/// UTF-8, a bound on nesting depth (iterative bound check, so hostile input cannot overflow the stack).
public struct JSONParser {
    public static let defaultMaxDepth = 256

    public static func parse(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSON {
        try bytes.withUnsafeBufferPointer { buf throws(JSONParseError) in
            try parse(buf, maxDepth: maxDepth)
        }
    }

    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSON {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }

    public static func parse(_ buf: UnsafeBufferPointer<UInt8>, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSON {
        var p = JSONParser(buf: buf, maxDepth: maxDepth)
        p.skipWS()
        let v = try p.value(depth: 0)
        p.skipWS()
        if p.i != buf.count { throw p.fail("unexpected data after the JSON value") }
        return v
    }

    /// A member's key as `readObject` hands it over: compared with a literal without building a
    /// `String` (`switch key { case "id": ... }`), or turned into one when needed. Valid only
    /// during the call that received it.
    public struct Key {
        /// The key's bytes as written (no escapes in it), or nil when `decoded` holds it.
        @usableFromInline let raw: UnsafeBufferPointer<UInt8>?
        @usableFromInline let decoded: String?

        init(raw: UnsafeBufferPointer<UInt8>?, decoded: String?) {
            self.raw = raw
            self.decoded = decoded
        }

        public var string: String { decoded ?? String(decoding: raw!, as: UTF8.self) }

        @inlinable
        public static func == (key: Key, literal: StaticString) -> Bool { literal ~= key }

        @inlinable @inline(__always)
        public static func ~= (pattern: StaticString, key: Key) -> Bool {
            guard let raw = key.raw else { return key.decoded! == pattern.description }
            let n = pattern.utf8CodeUnitCount
            guard raw.count == n else { return false }
            let p = pattern.utf8Start
            var k = 0
            while k < n {
                if raw[k] != p[k] { return false }
                k += 1
            }
            return true
        }
    }

    /// When the next value is a string, reads it and returns it as a `Key` (compared with
    /// literals without building a `String`; valid while the parser's buffer is); otherwise
    /// reads nothing and returns nil.
    public mutating func readStringKey() throws(JSONParseError) -> Key? {
        skipWS()
        guard i < buf.count, buf[i] == UInt8(ascii: "\"") else { return nil }
        return try key()
    }

    /// Reads a text whose top level is an object member by member: `body` gets each key and
    /// must read that member's value (with `readValue()`, `readObject(_:)`). Returns false,
    /// reading nothing, when the top level is not an object. For envelopes of a known shape
    /// (JSON-RPC messages), whose parts go straight into typed fields without a dictionary.
    public static func readObject(_ buf: UnsafeBufferPointer<UInt8>, maxDepth: Int = defaultMaxDepth,
                                  _ body: (Key, inout JSONParser) throws(JSONParseError) -> Void) throws(JSONParseError) -> Bool {
        var p = JSONParser(buf: buf, maxDepth: maxDepth)
        p.skipWS()
        guard try p.readObject(body) else { return false }
        p.skipWS()
        if p.i != buf.count { throw p.fail("unexpected data after the JSON value") }
        return true
    }

    /// Reads the next value, whole.
    public mutating func readValue() throws(JSONParseError) -> JSON {
        skipWS()
        return try value(depth: depth)
    }

    /// When the next value is an object, reads it member by member as `readObject(_:_:_:)` does
    /// and returns true; otherwise reads nothing and returns false.
    public mutating func readObject(_ body: (Key, inout JSONParser) throws(JSONParseError) -> Void) throws(JSONParseError) -> Bool {
        skipWS()
        guard i < buf.count, buf[i] == UInt8(ascii: "{") else { return false }
        if depth >= maxDepth { throw fail("nesting deeper than \(maxDepth)") }
        depth += 1
        defer { depth -= 1 }
        let d = depth
        i += 1
        skipWS()
        if i < buf.count && buf[i] == UInt8(ascii: "}") { i += 1; return true }
        while true {
            skipWS()
            guard i < buf.count, buf[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let k = try key()
            skipWS()
            guard i < buf.count, buf[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            i += 1
            let before = i
            try body(k, &self)
            // A body that read nothing would leave the parser on the value: a programming error.
            precondition(i > before && depth == d, "readObject: the body must read the member's value")
            skipWS()
            guard i < buf.count else { throw fail("unexpected end of input") }
            if buf[i] == UInt8(ascii: ",") { i += 1; continue }
            if buf[i] == UInt8(ascii: "}") { i += 1; return true }
            throw fail("expected ',' or '}'")
        }
    }

    private let buf: UnsafeBufferPointer<UInt8>
    private let maxDepth: Int
    private var i = 0
    /// Objects entered through `readObject`, counted towards `maxDepth`.
    private var depth = 0

    private init(buf: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
        self.buf = buf
        self.maxDepth = maxDepth
    }

    private func fail(_ m: String) -> JSONParseError { JSONParseError(message: m, offset: i) }

    private mutating func skipWS() {
        while i < buf.count {
            let c = buf[i]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { break }
        }
    }

    private mutating func value(depth: Int) throws(JSONParseError) -> JSON {
        guard i < buf.count else { throw fail("unexpected end of input") }
        switch buf[i] {
        case UInt8(ascii: "{"):
            if depth >= maxDepth { throw fail("nesting deeper than \(maxDepth)") }
            return try object(depth: depth + 1)
        case UInt8(ascii: "["):
            if depth >= maxDepth { throw fail("nesting deeper than \(maxDepth)") }
            return try array(depth: depth + 1)
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true"); return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false"); return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try number()
        default:
            throw fail("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let n = word.utf8CodeUnitCount
        guard i + n <= buf.count else { throw fail("unexpected end of input") }
        let w = word.utf8Start
        for k in 0..<n where buf[i + k] != w[k] { throw fail("invalid literal") }
        i += n
    }

    private mutating func object(depth: Int) throws(JSONParseError) -> JSON {
        // Sized once for the usual small object: each regrowth is an allocation.
        var o: [String: JSON]?
        // `readObject` counts the object itself, so it starts from the enclosing depth.
        let saved = self.depth
        self.depth = depth - 1
        defer { self.depth = saved }
        _ = try readObject { k, p throws(JSONParseError) in
            if o == nil { o = [String: JSON](minimumCapacity: 6) }
            o![k.string] = try p.readValue()
        }
        return .object(o ?? [:])
    }

    private mutating func array(depth: Int) throws(JSONParseError) -> JSON {
        i += 1
        var a: [JSON] = []
        skipWS()
        if i < buf.count && buf[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
        while true {
            skipWS()
            a.append(try value(depth: depth))
            skipWS()
            guard i < buf.count else { throw fail("unexpected end of input") }
            if buf[i] == UInt8(ascii: ",") { i += 1; continue }
            if buf[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
            throw fail("expected ',' or ']'")
        }
    }

    private mutating func number() throws(JSONParseError) -> JSON {
        let start = i
        var isInt = true
        if buf[i] == UInt8(ascii: "-") { i += 1 }
        guard i < buf.count else { throw fail("unexpected end of input") }
        if buf[i] == UInt8(ascii: "0") {
            i += 1
        } else if buf[i] >= UInt8(ascii: "1") && buf[i] <= UInt8(ascii: "9") {
            while i < buf.count && buf[i] >= 0x30 && buf[i] <= 0x39 { i += 1 }
        } else {
            throw fail("invalid number")
        }
        if i < buf.count && buf[i] == UInt8(ascii: ".") {
            isInt = false
            i += 1
            let d = i
            while i < buf.count && buf[i] >= 0x30 && buf[i] <= 0x39 { i += 1 }
            if i == d { throw fail("invalid number") }
        }
        if i < buf.count && (buf[i] == UInt8(ascii: "e") || buf[i] == UInt8(ascii: "E")) {
            isInt = false
            i += 1
            if i < buf.count && (buf[i] == UInt8(ascii: "+") || buf[i] == UInt8(ascii: "-")) { i += 1 }
            let d = i
            while i < buf.count && buf[i] >= 0x30 && buf[i] <= 0x39 { i += 1 }
            if i == d { throw fail("invalid number") }
        }
        // Up to 18 digits cannot overflow: read them directly (ids, counts, money, timeouts).
        if isInt {
            let neg = buf[start] == UInt8(ascii: "-")
            let first = neg ? start + 1 : start
            if i - first <= 18 {
                var v: Int64 = 0
                for k in first..<i { v = v &* 10 &+ Int64(buf[k] &- 0x30) }
                return .int(neg ? -v : v)
            }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: buf[start..<i]), as: UTF8.self)
        if isInt, let v = Int64(text) { return .int(v) }
        guard let d = Double(text), d.isFinite else { throw JSONParseError(message: "number out of range", offset: start) }
        return .double(d)
    }

    private mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard i + 4 <= buf.count else { throw fail("unexpected end of input") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = buf[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    /// A key: its bytes where they lie when it has no escapes, else decoded.
    private mutating func key() throws(JSONParseError) -> Key {
        let start = i + 1
        if let end = try plainString() { return Key(raw: UnsafeBufferPointer(rebasing: buf[start..<end]), decoded: nil) }
        return Key(raw: nil, decoded: try string())
    }

    /// With `i` on an opening quote: when the string has no escapes, checks it, moves past it and
    /// returns where its bytes end; returns nil (moving nothing) when it has escapes.
    private mutating func plainString() throws(JSONParseError) -> Int? {
        let start = i + 1
        var j = start
        var high: UInt8 = 0
        // Eight bytes at a time while none of them is a quote, a backslash, a control
        // character or part of a multi-byte character; the byte loop below takes the rest.
        if let base = buf.baseAddress {
            while j + 8 <= buf.count {
                let x = UnsafeRawPointer(base + j).loadUnaligned(as: UInt64.self)
                if JSONParser.mayNeedCare(x) { break }
                j += 8
            }
        }
        while j < buf.count {
            let c = buf[j]
            if c == UInt8(ascii: "\"") { break }
            if c == UInt8(ascii: "\\") { return nil }
            if c < 0x20 { i = j; throw fail("control character in string") }
            high |= c
            j += 1
        }
        guard j < buf.count else { i = j; throw fail("unterminated string") }
        // ASCII needs no further check; anything else must be strict UTF-8.
        if high >= 0x80 && !JSONParser.isValidUTF8(UnsafeBufferPointer(rebasing: buf[start..<j])) {
            i = start
            throw fail("invalid UTF-8 in string")
        }
        i = j + 1
        return j
    }

    private mutating func string() throws(JSONParseError) -> String {
        let start = i + 1
        if let end = try plainString() { return String(decoding: UnsafeBufferPointer(rebasing: buf[start..<end]), as: UTF8.self) }
        i = start
        var j = start
        while buf[j] != UInt8(ascii: "\\") { j += 1 }
        var out: [UInt8] = Array(UnsafeBufferPointer(rebasing: buf[start..<j]))
        i = j
        while true {
            guard i < buf.count else { throw fail("unterminated string") }
            let c = buf[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            i += 1
            guard i < buf.count else { throw fail("unterminated string") }
            let e = buf[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var cp = try hex4()
                if cp >= 0xD800 && cp < 0xDC00 {
                    guard i + 2 <= buf.count, buf[i] == UInt8(ascii: "\\"), buf[i + 1] == UInt8(ascii: "u") else {
                        throw fail("lone surrogate in \\u escape")
                    }
                    i += 2
                    let lo = try hex4()
                    guard lo >= 0xDC00 && lo < 0xE000 else { throw fail("invalid surrogate pair") }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                } else if cp >= 0xDC00 && cp < 0xE000 {
                    throw fail("lone surrogate in \\u escape")
                }
                guard let scalar = Unicode.Scalar(cp) else { throw fail("invalid code point") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw fail("invalid escape")
            }
        }
        guard out.withUnsafeBufferPointer(JSONParser.isValidUTF8) else { throw fail("invalid UTF-8 in string") }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether any of the eight bytes in `x` is `"`, `\`, below 0x20 or above 0x7F (it may say
    /// yes for a word that has none; never no for one that has).
    @inline(__always)
    static func mayNeedCare(_ x: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let q = x ^ (0x22 &* ones)
        let b = x ^ (0x5C &* ones)
        let quote = (q &- ones) & ~q
        let backslash = (b &- ones) & ~b
        let control = (x &- 0x20 &* ones) & ~x
        return ((quote | backslash | control) & highs) | (x & highs) != 0
    }

    /// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
    static func isValidUTF8(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = b.count
        while i < n {
            let c = b[i]
            if c < 0x80 { i += 1; continue }
            let len: Int
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
            switch c {
            case 0xC2...0xDF: len = 2
            case 0xE0: len = 3; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: len = 3
            case 0xED: len = 3; hi = 0x9F
            case 0xF0: len = 4; lo = 0x90
            case 0xF1...0xF3: len = 4
            case 0xF4: len = 4; hi = 0x8F
            default: return false
            }
            guard i + len <= n else { return false }
            let c1 = b[i + 1]
            guard c1 >= lo && c1 <= hi else { return false }
            var k = 2
            while k < len {
                guard b[i + k] & 0xC0 == 0x80 else { return false }
                k += 1
            }
            i += len
        }
        return true
    }
}
