/// The request target split into a decoded path and decoded query arguments (RFC 9112 §3.2).
///
/// Origin form (`/path?query`) and absolute form (`http://host/path?query`) are accepted. The
/// path and each query name and value are percent-decoded (`+` is a space in the query, as in
/// HTML forms); a target whose decoding yields a control character (U+0000–U+001F, U+007F),
/// has a broken `%` escape, or is not UTF-8 is refused, so that nothing downstream ever sees a
/// path cut short at a NUL.
struct RequestTarget: Equatable {
    var path: String
    var query: [String: String]

    init?(_ raw: [UInt8]) {
        var start = 0
        if raw.first != UInt8(ascii: "/") {
            // Absolute form: scheme "://" authority, then the path (or "/" when there is none).
            guard let sep = Self.find(raw, Array("://".utf8)) else { return nil }
            let scheme = raw[0..<sep].map { $0 | 0x20 }
            guard scheme == Array("http".utf8) || scheme == Array("https".utf8) else { return nil }
            var i = sep + 3
            while i < raw.count && raw[i] != UInt8(ascii: "/") && raw[i] != UInt8(ascii: "?") { i += 1 }
            start = i
        }
        let end = raw[start...].firstIndex(of: UInt8(ascii: "?")) ?? raw.count
        if start == end {
            path = "/"
        } else {
            guard let p = Self.decode(raw[start..<end], plusIsSpace: false) else { return nil }
            path = p
        }
        query = [:]
        guard end < raw.count else { return }
        var i = end + 1
        // A fragment never belongs in a request target; it ends the query if a client sends one.
        let qEnd = raw[i...].firstIndex(of: UInt8(ascii: "#")) ?? raw.count
        while i < qEnd {
            let next = raw[i..<qEnd].firstIndex(of: UInt8(ascii: "&")) ?? qEnd
            if next > i {
                let pair = raw[i..<next]
                let eq = pair.firstIndex(of: UInt8(ascii: "="))
                guard let name = Self.decode(pair[pair.startIndex..<(eq ?? pair.endIndex)], plusIsSpace: true),
                      let value = eq.map({ Self.decode(pair[($0 + 1)...], plusIsSpace: true) }) ?? ""
                else { return nil }
                // A repeated name keeps its last value.
                query[name] = value
            }
            i = next + 1
        }
    }

    private static func find(_ hay: [UInt8], _ needle: [UInt8]) -> Int? {
        guard hay.count >= needle.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    /// Percent-decodes; nil for a broken escape, a control character or invalid UTF-8.
    static func decode(_ s: ArraySlice<UInt8>, plusIsSpace: Bool) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = s.startIndex
        while i < s.endIndex {
            var c = s[i]
            if c == UInt8(ascii: "%") {
                guard i + 2 < s.endIndex,
                      let hi = hex(s[i + 1]), let lo = hex(s[i + 2]) else { return nil }
                c = hi << 4 | lo
                i += 3
            } else {
                if plusIsSpace && c == UInt8(ascii: "+") { c = 0x20 }
                i += 1
            }
            if c < 0x20 || c == 0x7F { return nil }
            out.append(c)
        }
        return String(validating: out, as: UTF8.self)
    }
}
