/// The kind of regular expression the schemas use — anchored at both ends, a sequence of literal
/// characters and character classes, each with an optional quantifier (`^[1-9][0-9]{5}$`,
/// `^[^@\s]+@[^@\s]+\.[^@\s]+$`) — matched in one pass without Foundation.
///
/// `$` is the end of the input, as in JSON Schema (ECMA-262): unlike ICU's, it does not also match
/// before a final line break, so `ord_1\n` is not an id.
///
/// `compile` returns nil for anything outside that subset (groups, alternation, `.`, lazy
/// quantifiers, unknown escapes), and the schema falls back to NSRegularExpression. Matching
/// walks the input's Unicode scalars once, keeping the set of positions in the pattern that can
/// be reached, so its time is linear in the input whatever the pattern.
struct SimplePattern: Sendable {
    /// A set of Unicode scalars: ranges, optionally `\s`, optionally negated.
    struct CharClass: Sendable, Equatable {
        var ranges: [ClosedRange<UInt32>] = []
        var whitespace = false
        var negated = false

        func contains(_ c: Unicode.Scalar) -> Bool {
            // ICU's `\s`, and so NSRegularExpression's, is Unicode's White_Space (VT and NEL
            // included), which is what `isWhitespace` reads.
            var hit = whitespace && c.properties.isWhitespace
            if !hit { for r in ranges where r.contains(c.value) { hit = true; break } }
            return hit != negated
        }
    }

    /// One step of the expanded pattern: a class taken exactly once, optionally, or any number of times.
    enum Step: Sendable, Equatable {
        case one(CharClass), optional(CharClass), many(CharClass)
        var charClass: CharClass {
            switch self { case .one(let c), .optional(let c), .many(let c): return c }
        }
    }

    let steps: [Step]

    /// Counted repetitions are written out; a pattern that would need more steps than this is left to Foundation.
    static let maxSteps = 512

    static func compile(_ pattern: String) -> SimplePattern? {
        let p = Array(pattern.unicodeScalars)
        guard p.count >= 2, p.first == "^", p.last == "$", p[p.count - 2] != "\\" else { return nil }
        var i = 1
        let end = p.count - 1
        var steps: [Step] = []
        while i < end {
            var cls: CharClass
            switch p[i] {
            case "[":
                guard let (c, next) = parseClass(p, from: i + 1, end: end) else { return nil }
                cls = c
                i = next
            case "\\":
                guard i + 1 < end, let c = escape(p[i + 1]) else { return nil }
                cls = c
                i += 2
            case "(", ")", "|", "{", "}", "*", "+", "?", ".", "^", "$", "]":
                return nil
            default:
                cls = CharClass(ranges: [p[i].value...p[i].value])
                i += 1
            }
            var lo = 1, hi: Int? = 1
            if i < end {
                switch p[i] {
                case "*": lo = 0; hi = nil; i += 1
                case "+": lo = 1; hi = nil; i += 1
                case "?": lo = 0; hi = 1; i += 1
                case "{":
                    guard let (a, b, next) = parseCount(p, from: i + 1, end: end) else { return nil }
                    lo = a; hi = b; i = next
                default: break
                }
                // Lazy or possessive forms (`*?`, `++`, `{2}?`) are not in the subset.
                if i < end, lo != 1 || hi != 1, p[i] == "?" || p[i] == "+" { return nil }
            }
            for _ in 0..<lo { steps.append(.one(cls)) }
            if let hi {
                for _ in lo..<hi { steps.append(.optional(cls)) }
            } else {
                steps.append(.many(cls))
            }
            if steps.count > maxSteps { return nil }
        }
        return SimplePattern(steps: steps)
    }

    /// Whether the whole of `s` matches.
    func matches(_ s: String) -> Bool {
        let n = steps.count
        var states = [Bool](repeating: false, count: n + 1)
        var next = states
        states[0] = true
        close(&states)
        for c in s.unicodeScalars {
            for k in 0...n { next[k] = false }
            var any = false
            for k in 0..<n where states[k] {
                let step = steps[k]
                guard step.charClass.contains(c) else { continue }
                if case .many = step { next[k] = true } else { next[k + 1] = true }
                any = true
            }
            if !any { return false }
            close(&next)
            swap(&states, &next)
        }
        return states[n]
    }

    /// Adds the positions reachable by skipping optional and repeated steps.
    private func close(_ states: inout [Bool]) {
        for k in 0..<steps.count where states[k] {
            switch steps[k] {
            case .optional, .many: states[k + 1] = true
            case .one: break
            }
        }
    }

    private static func escape(_ c: Unicode.Scalar) -> CharClass? {
        switch c {
        case "s": return CharClass(whitespace: true)
        case "S": return CharClass(whitespace: true, negated: true)
        case "d": return CharClass(ranges: [48...57])
        case "D": return CharClass(ranges: [48...57], negated: true)
        default: return literal(escaped: c).map { CharClass(ranges: [$0...$0]) }
        }
    }

    /// An escaped ASCII punctuation character stands for itself; an escaped letter or digit names
    /// a class or an anchor, which (beyond `\s` and `\d`) this subset does not know.
    private static func literal(escaped c: Unicode.Scalar) -> UInt32? {
        guard c.isASCII, !c.properties.isAlphabetic, !(48...57).contains(c.value) else { return nil }
        return c.value
    }

    /// `[...]` from just after the `[`; returns the class and the index after the `]`.
    private static func parseClass(_ p: [Unicode.Scalar], from start: Int, end: Int) -> (CharClass, Int)? {
        var i = start
        var c = CharClass()
        if i < end && p[i] == "^" { c.negated = true; i += 1 }
        while i < end {
            if p[i] == "]" {
                // `[]` and `[^]` mean different things to different engines: not in the subset.
                return c.ranges.isEmpty && !c.whitespace ? nil : (c, i + 1)
            }
            var lo: UInt32
            if p[i] == "\\" {
                guard i + 1 < end else { return nil }
                let e = p[i + 1]
                i += 2
                if e == "s" { c.whitespace = true; continue }
                if e == "d" { c.ranges.append(48...57); continue }
                guard let v = literal(escaped: e) else { return nil }
                lo = v
            } else if p[i] == "[" {
                return nil  // POSIX classes and nested sets
            } else {
                lo = p[i].value
                i += 1
            }
            // A range `a-z`; a `-` just before the closing `]` is itself.
            if i + 1 < end, p[i] == "-", p[i + 1] != "]" {
                var hi: UInt32
                if p[i + 1] == "\\" {
                    guard i + 2 < end, let v = literal(escaped: p[i + 2]) else { return nil }
                    hi = v
                    i += 3
                } else {
                    hi = p[i + 1].value
                    i += 2
                }
                guard lo <= hi else { return nil }
                c.ranges.append(lo...hi)
            } else {
                c.ranges.append(lo...lo)
            }
        }
        return nil  // no closing `]`
    }

    /// `{n}`, `{n,}` or `{n,m}` from just after the `{`; returns the bounds and the index after the `}`.
    private static func parseCount(_ p: [Unicode.Scalar], from start: Int, end: Int) -> (Int, Int?, Int)? {
        var i = start
        func number() -> Int? {
            var v = 0, digits = 0
            while i < end, (48...57).contains(p[i].value), digits < 4 {
                v = v * 10 + Int(p[i].value - 48)
                digits += 1
                i += 1
            }
            return digits == 0 ? nil : v
        }
        guard let a = number() else { return nil }
        var b: Int? = a
        if i < end && p[i] == "," {
            i += 1
            b = number()
        }
        guard i < end, p[i] == "}" else { return nil }
        if let b, b < a { return nil }
        return (a, b, i + 1)
    }
}
