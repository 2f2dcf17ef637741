/// A string field as the provider may send it: a string, or a number or boolean that a client
/// must read as text (ids such as `order_number` or `pickup_id` arrive either way).
public struct ParcelXLenientString: Codable, Sendable, Hashable {
    public var value: String

    public init(_ value: String) { self.value = value }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { value = s }
        else if let i = try? c.decode(Int64.self) { value = String(i) }
        else if let d = try? c.decode(Double.self) { value = d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) : String(d) }
        else if let b = try? c.decode(Bool.self) { value = b ? "true" : "false" }
        else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected a string or a number") }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(value)
    }
}

extension KeyedDecodingContainer {
    /// A string, number or boolean as text; nil when absent or null.
    func lenientString(_ key: Key) throws -> String? {
        try decodeIfPresent(ParcelXLenientString.self, forKey: key)?.value
    }

    /// An integer, also from its decimal text.
    func lenientInt(_ key: Key) throws -> Int? {
        guard let s = try lenientString(key) else { return nil }
        if let i = Int(s) { return i }
        throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "expected an integer")
    }

    /// A boolean, also from `"true"`/`"false"`/`"1"`/`"0"`/`1`/`0`.
    func lenientBool(_ key: Key) throws -> Bool? {
        guard let s = try lenientString(key) else { return nil }
        switch s.lowercased() {
        case "true", "1": return true
        case "false", "0", "": return false
        default: throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "expected a boolean")
        }
    }

    /// An array of strings; a lone scalar counts as a one-element array.
    func lenientStrings(_ key: Key) throws -> [String]? {
        if let a = try? decodeIfPresent([ParcelXLenientString].self, forKey: key) { return a.map(\.value) }
        return try lenientString(key).map { [$0] }
    }
}
