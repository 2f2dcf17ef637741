import RPC

/// The one rule for an integer a request carries (query string, path, header, cookie, form or
/// JSON field) before the Gateway does any arithmetic with it: plain decimal digits with an
/// optional leading `-` (no `+`, spaces, hex or exponent), and a value inside the parameter's
/// range. Anything else is refused with a 400 `validation_failed` naming the parameter and its
/// range; nothing is silently clamped. Each caller's range is small enough that what it then
/// computes with the value cannot overflow.
enum RequestInt {
    /// The value of `text` (nil when the parameter is absent), or a 400 for `name`.
    static func parse(_ text: String?, name: String, in range: ClosedRange<Int64>) throws(RPCError) -> Int64? {
        guard let text else { return nil }
        guard let v = value(text), range.contains(v) else {
            let m = "must be an integer from \(range.lowerBound) to \(range.upperBound)"
            throw RPCError.invalidParams([FieldError(path: name, message: m)], message: "\(name) \(m)")
        }
        return v
    }

    /// Like `parse`, with `fallback` when the parameter is absent.
    static func parse(_ text: String?, name: String, in range: ClosedRange<Int64>, default fallback: Int64) throws(RPCError) -> Int64 {
        try parse(text, name: name, in: range) ?? fallback
    }

    /// Decimal digits, optionally negative, that fit an Int64; nil for anything else.
    private static func value(_ text: String) -> Int64? {
        let u = Array(text.utf8)
        let digits = u.first == UInt8(ascii: "-") ? u.dropFirst() : u[...]
        guard !digits.isEmpty, digits.count <= 19, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int64(text)
    }
}
