extension JSON {
    /// Compact JSON text, keys sorted so that equal values serialise to equal bytes (payload
    /// fingerprints and tests rely on that).
    public func serialized() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        write(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public func serializedBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        write(to: &out)
        return out
    }

    public func write(to out: inout [UInt8]) { write(to: &out, sortKeys: true) }

    /// `sortKeys: false` skips sorting object keys: for wire messages, where only the content
    /// matters and sorting would cost an allocation per object.
    public func write(to out: inout [UInt8], sortKeys: Bool) {
        switch self {
        case .null: out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
        case .bool(let b):
            if b { out.append(contentsOf: [0x74, 0x72, 0x75, 0x65]) } else { out.append(contentsOf: [0x66, 0x61, 0x6C, 0x73, 0x65]) }
        case .int(let i): JSON.writeInt(i, to: &out)
        case .double(let d):
            if d.isFinite {
                if d.rounded() == d && abs(d) < 1e15 { out.append(contentsOf: String(Int64(d)).utf8) } else { out.append(contentsOf: "\(d)".utf8) }
            } else {
                out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
            }
        case .string(let s): JSON.writeString(s, to: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (n, v) in a.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                v.write(to: &out, sortKeys: sortKeys)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            var first = true
            if sortKeys {
                for k in o.keys.sorted() {
                    if !first { out.append(UInt8(ascii: ",")) }
                    first = false
                    JSON.writeString(k, to: &out)
                    out.append(UInt8(ascii: ":"))
                    o[k]!.write(to: &out, sortKeys: true)
                }
            } else {
                for (k, v) in o {
                    if !first { out.append(UInt8(ascii: ",")) }
                    first = false
                    JSON.writeString(k, to: &out)
                    out.append(UInt8(ascii: ":"))
                    v.write(to: &out, sortKeys: false)
                }
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Decimal digits of `v`, written in place.
    public static func writeInt(_ v: Int64, to out: inout [UInt8]) {
        if v < 0 { out.append(UInt8(ascii: "-")) }
        var m = v.magnitude
        if m < 10 {
            out.append(0x30 &+ UInt8(m))
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { d in
            var n = 20
            while m > 0 {
                n -= 1
                d[n] = 0x30 &+ UInt8(m % 10)
                m /= 10
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: d[n..<20]))
        }
    }

    public static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        // Most strings need no escaping: copied whole.
        let copied: Bool? = s.utf8.withContiguousStorageIfAvailable { b in
            for c in b where c < 0x20 || c == 0x22 || c == 0x5C { return false }
            out.append(contentsOf: b)
            return true
        }
        if copied == true {
            out.append(UInt8(ascii: "\""))
            return
        }
        for c in s.utf8 {
            switch c {
            case 0x22: out.append(0x5C); out.append(0x22)
            case 0x5C: out.append(0x5C); out.append(0x5C)
            case 0x0A: out.append(0x5C); out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(0x5C); out.append(UInt8(ascii: "r"))
            case 0x09: out.append(0x5C); out.append(UInt8(ascii: "t"))
            case 0..<0x20:
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30])
                out.append(hexDigits[Int(c >> 4)])
                out.append(hexDigits[Int(c & 0xF)])
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSON: CustomStringConvertible {
    public var description: String { serialized() }
}

extension JSON {
    /// Indented JSON text for people (the operator tool), keys sorted.
    public func prettyPrinted(indent: String = "  ") -> String {
        var out = ""
        pretty(into: &out, level: 0, indent: indent)
        return out
    }

    private func pretty(into out: inout String, level: Int, indent: String) {
        let pad = String(repeating: indent, count: level)
        let inner = String(repeating: indent, count: level + 1)
        switch self {
        case .array(let a) where !a.isEmpty:
            out += "[\n"
            for (i, v) in a.enumerated() {
                out += inner
                v.pretty(into: &out, level: level + 1, indent: indent)
                out += i < a.count - 1 ? ",\n" : "\n"
            }
            out += pad + "]"
        case .object(let o) where !o.isEmpty:
            out += "{\n"
            let keys = o.keys.sorted()
            for (i, k) in keys.enumerated() {
                out += inner + JSON.string(k).serialized() + ": "
                o[k]!.pretty(into: &out, level: level + 1, indent: indent)
                out += i < keys.count - 1 ? ",\n" : "\n"
            }
            out += pad + "}"
        default:
            out += serialized()
        }
    }
}

extension Array where Element == UInt8 {
    /// Appends the bytes of a literal, without going through `String`.
    @inlinable
    public mutating func append(literal s: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }
}
