/// Encodes an `Encodable` value straight into a `JSON` value, with no text in between: the same
/// result as Foundation's `JSONEncoder` (default strategies) followed by `JSONParser.parse`, for
/// a fraction of the work. DTOs are turned into JSON on every provider call and every typed RPC
/// answer, where the text round trip showed in profiles.
///
/// As after the round trip, a floating-point number with an integral value below 10^15 becomes
/// `.int` (JSONEncoder writes `3.0` as `3`), and a non-finite one is refused.
public enum JSONValueEncoder {
    public static func encode<T: Encodable>(_ value: T) throws -> JSON {
        let root = Node()
        try root.store(value, codingPath: [])
        guard let v = root.finish(topLevel: true) else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "Top-level \(T.self) did not encode any values."))
        }
        return v
    }

    /// One value under construction. Containers hand out child nodes and keep them, so a nested
    /// container can be filled after its parent's `encode` call has returned.
    final class Node {
        enum Kind {
            case unset
            case value(JSON)
            case object([String: Node])
            case array([Node])
        }
        var kind = Kind.unset

        func finish(topLevel: Bool = false) -> JSON? {
            switch kind {
            case .unset: return topLevel ? nil : .object([:])
            case .value(let v): return v
            case .object(let children):
                var o: [String: JSON] = [:]
                o.reserveCapacity(children.count)
                for (k, n) in children { o[k] = n.finish() }
                return .object(o)
            case .array(let items): return .array(items.map { $0.finish() ?? .object([:]) })
            }
        }

        func store<T: Encodable>(_ value: T, codingPath: [any CodingKey]) throws {
            if let j = value as? JSON {
                kind = .value(j)
                return
            }
            try value.encode(to: ValueEncoder(node: self, codingPath: codingPath))
        }

        func child(_ key: String) -> Node {
            if case .object(var children) = kind {
                if let n = children[key] { return n }
                kind = .unset  // let go of the enum's reference, so the insert below does not copy the dictionary
                let n = Node()
                children[key] = n
                kind = .object(children)
                return n
            }
            let n = Node()
            kind = .object([key: n])
            return n
        }

        func append() -> Node {
            let n = Node()
            if case .array(var items) = kind {
                kind = .unset  // as in `child`: append in place
                items.append(n)
                kind = .array(items)
            } else {
                kind = .array([n])
            }
            return n
        }

        var count: Int {
            if case .array(let items) = kind { return items.count }
            return 0
        }
    }

    static func number(_ d: Double, _ codingPath: [any CodingKey]) throws -> JSON {
        guard d.isFinite else {
            throw EncodingError.invalidValue(d, .init(codingPath: codingPath, debugDescription: "\(d) is not a valid JSON number."))
        }
        if d.rounded() == d && abs(d) < 1e15 { return .int(Int64(d)) }
        return .double(d)
    }

    /// A Float as JSONEncoder writes it: its shortest decimal form, read back as a Double.
    static func float(_ f: Float) -> Double { f.isFinite ? Double(f.description) ?? Double(f) : Double(f) }

    static func integer<I: BinaryInteger>(_ i: I) -> JSON {
        if let v = Int64(exactly: i) { return .int(v) }
        return .double(Double(i))
    }

    struct PlainKey: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(stringValue: String) { self.stringValue = stringValue }
        init(intValue: Int) { stringValue = "\(intValue)"; self.intValue = intValue }
    }

    struct ValueEncoder: Encoder {
        let node: Node
        let codingPath: [any CodingKey]
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func container<K: CodingKey>(keyedBy type: K.Type) -> KeyedEncodingContainer<K> {
            if case .object = node.kind {} else { node.kind = .object([:]) }
            return KeyedEncodingContainer(Keyed<K>(node: node, codingPath: codingPath))
        }

        func unkeyedContainer() -> any UnkeyedEncodingContainer {
            if case .array = node.kind {} else { node.kind = .array([]) }
            return Unkeyed(node: node, codingPath: codingPath)
        }

        func singleValueContainer() -> any SingleValueEncodingContainer {
            Single(node: node, codingPath: codingPath)
        }
    }

    struct Keyed<K: CodingKey>: KeyedEncodingContainerProtocol {
        let node: Node
        let codingPath: [any CodingKey]

        private func set(_ v: JSON, _ key: K) { node.child(key.stringValue).kind = .value(v) }

        mutating func encodeNil(forKey key: K) throws { set(.null, key) }
        mutating func encode(_ value: Bool, forKey key: K) throws { set(.bool(value), key) }
        mutating func encode(_ value: String, forKey key: K) throws { set(.string(value), key) }
        mutating func encode(_ value: Double, forKey key: K) throws { set(try number(value, codingPath + [key]), key) }
        mutating func encode(_ value: Float, forKey key: K) throws { set(try number(float(value), codingPath + [key]), key) }
        mutating func encode(_ value: Int, forKey key: K) throws { set(integer(value), key) }
        mutating func encode(_ value: Int8, forKey key: K) throws { set(integer(value), key) }
        mutating func encode(_ value: Int16, forKey key: K) throws { set(integer(value), key) }
        mutating func encode(_ value: Int32, forKey key: K) throws { set(integer(value), key) }
        mutating func encode(_ value: Int64, forKey key: K) throws { set(integer(value), key) }
        mutating func encode(_ value: UInt, forKey key: K) throws { set(integer(value), key) }
        mutating func encode(_ value: UInt8, forKey key: K) throws { set(integer(value), key) }
        mutating func encode(_ value: UInt16, forKey key: K) throws { set(integer(value), key) }
        mutating func encode(_ value: UInt32, forKey key: K) throws { set(integer(value), key) }
        mutating func encode(_ value: UInt64, forKey key: K) throws { set(integer(value), key) }
        mutating func encode<T: Encodable>(_ value: T, forKey key: K) throws {
            let n = node.child(key.stringValue)
            n.kind = .unset
            try n.store(value, codingPath: codingPath + [key])
        }

        mutating func nestedContainer<NK: CodingKey>(keyedBy keyType: NK.Type, forKey key: K) -> KeyedEncodingContainer<NK> {
            ValueEncoder(node: node.child(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer(forKey key: K) -> any UnkeyedEncodingContainer {
            ValueEncoder(node: node.child(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder {
            ValueEncoder(node: node.child("super"), codingPath: codingPath + [PlainKey(stringValue: "super")])
        }

        mutating func superEncoder(forKey key: K) -> any Encoder {
            ValueEncoder(node: node.child(key.stringValue), codingPath: codingPath + [key])
        }
    }

    struct Unkeyed: UnkeyedEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]
        var count: Int { node.count }

        private func add(_ v: JSON) { node.append().kind = .value(v) }
        private var nextPath: [any CodingKey] { codingPath + [PlainKey(intValue: count)] }

        mutating func encodeNil() throws { add(.null) }
        mutating func encode(_ value: Bool) throws { add(.bool(value)) }
        mutating func encode(_ value: String) throws { add(.string(value)) }
        mutating func encode(_ value: Double) throws { add(try number(value, nextPath)) }
        mutating func encode(_ value: Float) throws { add(try number(float(value), nextPath)) }
        mutating func encode(_ value: Int) throws { add(integer(value)) }
        mutating func encode(_ value: Int8) throws { add(integer(value)) }
        mutating func encode(_ value: Int16) throws { add(integer(value)) }
        mutating func encode(_ value: Int32) throws { add(integer(value)) }
        mutating func encode(_ value: Int64) throws { add(integer(value)) }
        mutating func encode(_ value: UInt) throws { add(integer(value)) }
        mutating func encode(_ value: UInt8) throws { add(integer(value)) }
        mutating func encode(_ value: UInt16) throws { add(integer(value)) }
        mutating func encode(_ value: UInt32) throws { add(integer(value)) }
        mutating func encode(_ value: UInt64) throws { add(integer(value)) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            let path = nextPath
            try node.append().store(value, codingPath: path)
        }

        mutating func nestedContainer<NK: CodingKey>(keyedBy keyType: NK.Type) -> KeyedEncodingContainer<NK> {
            let path = nextPath
            return ValueEncoder(node: node.append(), codingPath: path).container(keyedBy: keyType)
        }

        mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
            let path = nextPath
            return ValueEncoder(node: node.append(), codingPath: path).unkeyedContainer()
        }

        mutating func superEncoder() -> any Encoder {
            let path = nextPath
            return ValueEncoder(node: node.append(), codingPath: path)
        }
    }

    struct Single: SingleValueEncodingContainer {
        let node: Node
        let codingPath: [any CodingKey]

        mutating func encodeNil() throws { node.kind = .value(.null) }
        mutating func encode(_ value: Bool) throws { node.kind = .value(.bool(value)) }
        mutating func encode(_ value: String) throws { node.kind = .value(.string(value)) }
        mutating func encode(_ value: Double) throws { node.kind = .value(try number(value, codingPath)) }
        mutating func encode(_ value: Float) throws { node.kind = .value(try number(float(value), codingPath)) }
        mutating func encode(_ value: Int) throws { node.kind = .value(integer(value)) }
        mutating func encode(_ value: Int8) throws { node.kind = .value(integer(value)) }
        mutating func encode(_ value: Int16) throws { node.kind = .value(integer(value)) }
        mutating func encode(_ value: Int32) throws { node.kind = .value(integer(value)) }
        mutating func encode(_ value: Int64) throws { node.kind = .value(integer(value)) }
        mutating func encode(_ value: UInt) throws { node.kind = .value(integer(value)) }
        mutating func encode(_ value: UInt8) throws { node.kind = .value(integer(value)) }
        mutating func encode(_ value: UInt16) throws { node.kind = .value(integer(value)) }
        mutating func encode(_ value: UInt32) throws { node.kind = .value(integer(value)) }
        mutating func encode(_ value: UInt64) throws { node.kind = .value(integer(value)) }
        mutating func encode<T: Encodable>(_ value: T) throws {
            node.kind = .unset
            try node.store(value, codingPath: codingPath)
        }
    }
}
