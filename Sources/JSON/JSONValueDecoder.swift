/// Decodes a `Decodable` value straight from a `JSON` value, with no text in between: the
/// counterpart of JSONValueEncoder, for the records this project stores and reads on every
/// request (the typed order). Numbers convert only when exact (an integral `.double` reads as an
/// integer, an `.int` reads as a floating-point number); anything else is a type mismatch.
public enum JSONValueDecoder {
    public static func decode<T: Decodable>(_ type: T.Type, from value: JSON) throws -> T {
        try T(from: ValueDecoder(value: value, codingPath: []))
    }

    struct ValueDecoder: Decoder {
        let value: JSON
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            guard case .object(let o) = value else { throw mismatch([String: JSON].self, value, codingPath) }
            return KeyedDecodingContainer(Keyed<Key>(object: o, codingPath: codingPath))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            guard case .array(let a) = value else { throw mismatch([JSON].self, value, codingPath) }
            return Unkeyed(items: a, codingPath: codingPath)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(value: value, codingPath: codingPath) }
    }

    static func mismatch(_ type: Any.Type, _ value: JSON, _ path: [any CodingKey]) -> DecodingError {
        .typeMismatch(type, .init(codingPath: path, debugDescription: "Expected \(type), found \(value.serialized())"))
    }

    /// One scalar read, shared by the three container kinds.
    static func scalar<T: Decodable>(_ type: T.Type, _ v: JSON, _ path: [any CodingKey]) throws -> T {
        switch type {
        case is String.Type:
            if case .string(let s) = v { return s as! T }
        case is Bool.Type:
            if case .bool(let b) = v { return b as! T }
        case is Double.Type:
            if case .double(let d) = v { return d as! T }
            if case .int(let i) = v { return Double(i) as! T }
        case is Float.Type:
            if case .double(let d) = v { return Float(d) as! T }
            if case .int(let i) = v { return Float(i) as! T }
        case is Int64.Type: if let i = integer(v) { return i as! T }
        case is Int.Type: if let i = integer(v).flatMap({ Int(exactly: $0) }) { return i as! T }
        case is Int32.Type: if let i = integer(v).flatMap({ Int32(exactly: $0) }) { return i as! T }
        case is UInt64.Type: if let i = integer(v).flatMap({ UInt64(exactly: $0) }) { return i as! T }
        case is UInt.Type: if let i = integer(v).flatMap({ UInt(exactly: $0) }) { return i as! T }
        case is JSON.Type: return v as! T
        default:
            return try T(from: ValueDecoder(value: v, codingPath: path))
        }
        throw mismatch(type, v, path)
    }

    static func integer(_ v: JSON) -> Int64? {
        switch v {
        case .int(let i): return i
        case .double(let d): return d.rounded() == d ? Int64(exactly: d) : nil
        default: return nil
        }
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let object: [String: JSON]
        let codingPath: [any CodingKey]
        var allKeys: [Key] { object.keys.compactMap { Key(stringValue: $0) } }

        func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }

        func value(_ key: Key) throws -> JSON {
            guard let v = object[key.stringValue] else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "No value for \(key.stringValue)"))
            }
            return v
        }

        func decodeNil(forKey key: Key) throws -> Bool { (object[key.stringValue] ?? .null).isNull }

        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            let v = try value(key)
            if v.isNull && !(T.self is JSON.Type) {
                throw DecodingError.valueNotFound(type, .init(codingPath: codingPath + [key], debugDescription: "\(key.stringValue) is null"))
            }
            return try JSONValueDecoder.scalar(type, v, codingPath + [key])
        }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try ValueDecoder(value: value(key), codingPath: codingPath + [key]).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try ValueDecoder(value: value(key), codingPath: codingPath + [key]).unkeyedContainer()
        }

        func superDecoder() throws -> any Decoder { ValueDecoder(value: object["super"] ?? .null, codingPath: codingPath) }
        func superDecoder(forKey key: Key) throws -> any Decoder { ValueDecoder(value: object[key.stringValue] ?? .null, codingPath: codingPath + [key]) }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let items: [JSON]
        let codingPath: [any CodingKey]
        var currentIndex = 0
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }

        init(items: [JSON], codingPath: [any CodingKey]) {
            self.items = items
            self.codingPath = codingPath
        }

        struct Index: CodingKey {
            var stringValue: String { "\(intValue ?? 0)" }
            var intValue: Int?
            init(intValue: Int) { self.intValue = intValue }
            init?(stringValue: String) { nil }
        }

        mutating func next() throws -> (JSON, [any CodingKey]) {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(JSON.self, .init(codingPath: codingPath, debugDescription: "Unkeyed container is at end"))
            }
            defer { currentIndex += 1 }
            return (items[currentIndex], codingPath + [Index(intValue: currentIndex)])
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, items[currentIndex].isNull else { return false }
            currentIndex += 1
            return true
        }

        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            let (v, path) = try next()
            return try JSONValueDecoder.scalar(type, v, path)
        }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            let (v, path) = try next()
            return try ValueDecoder(value: v, codingPath: path).container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
            let (v, path) = try next()
            return try ValueDecoder(value: v, codingPath: path).unkeyedContainer()
        }

        mutating func superDecoder() throws -> any Decoder {
            let (v, path) = try next()
            return ValueDecoder(value: v, codingPath: path)
        }
    }

    struct Single: SingleValueDecodingContainer {
        let value: JSON
        let codingPath: [any CodingKey]
        func decodeNil() -> Bool { value.isNull }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONValueDecoder.scalar(type, value, codingPath) }
    }
}
