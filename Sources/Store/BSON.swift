import CMongoC
import JSON

/// A BSON value under construction. Documents keep their field order (sort and index keys
/// depend on it); JSON objects are written with sorted keys.
indirect enum BSONValue {
    case json(JSON)
    case int32(Int32)
    case document([(String, BSONValue)])
    case array([BSONValue])
}

/// Maps JSON values to BSON and back through libbson: integers as int64, doubles, nested
/// documents, arrays, booleans, null, and `{"$date": millis}` as a BSON datetime.
enum BSONCodec {
    /// A new `bson_t` holding `fields`; the caller owns it (`bson_destroy`).
    static func make(_ fields: [(String, BSONValue)]) throws -> OpaquePointer {
        guard let b = bson_new() else { throw StoreError(.internal, "out of memory building BSON") }
        do {
            for (k, v) in fields { try append(b, k, v) }
        } catch {
            bson_destroy(b)
            throw error
        }
        return b
    }

    static func make(object: [String: JSON]) throws -> OpaquePointer {
        try make(object.sorted { $0.key < $1.key }.map { ($0.key, .json($0.value)) })
    }

    /// Builds a document, lends it to `body`, and destroys it.
    static func with<R>(_ fields: [(String, BSONValue)], _ body: (OpaquePointer) throws -> R) throws -> R {
        let b = try make(fields)
        defer { bson_destroy(b) }
        return try body(b)
    }

    private static func append(_ b: OpaquePointer, _ key: String, _ v: BSONValue) throws {
        guard !key.utf8.contains(0) else { throw StoreError(.invalid, "a field name contains a NUL byte") }
        let klen = Int32(key.utf8.count)
        let ok: Bool
        switch v {
        case .int32(let n):
            ok = bson_append_int32(b, key, klen, n)
        case .document(let fields):
            let child = try make(fields)
            defer { bson_destroy(child) }
            ok = bson_append_document(b, key, klen, child)
        case .array(let items):
            let child = try make(items.enumerated().map { (String($0.offset), $0.element) })
            defer { bson_destroy(child) }
            ok = bson_append_array(b, key, klen, child)
        case .json(let j):
            switch j {
            case .null: ok = bson_append_null(b, key, klen)
            case .bool(let x): ok = bson_append_bool(b, key, klen, x)
            case .int(let n): ok = bson_append_int64(b, key, klen, n)
            case .double(let d): ok = bson_append_double(b, key, klen, d)
            case .string(let s):
                var s = s
                ok = s.withUTF8 { u in
                    u.withMemoryRebound(to: CChar.self) { c in
                        // A non-NULL pointer even for "", which libbson requires.
                        withUnsafePointer(to: CChar(0)) { empty in
                            bson_append_utf8(b, key, klen, c.baseAddress ?? empty, Int32(u.count))
                        }
                    }
                }
            case .array(let items):
                try append(b, key, .array(items.map { .json($0) }))
                return
            case .object(let o):
                if let ms = DocumentPath.dateMillis(j) {
                    ok = bson_append_date_time(b, key, klen, ms)
                } else {
                    try append(b, key, .document(o.sorted { $0.key < $1.key }.map { ($0.key, .json($0.value)) }))
                    return
                }
            }
        }
        guard ok else { throw StoreError(.invalid, "value too large for a BSON document (field \(key))") }
    }

    /// The JSON form of a whole BSON document.
    static func decode(_ b: OpaquePointer) throws -> JSON {
        let it = CMongoC_iter_new()!
        defer { CMongoC_iter_free(it) }
        guard bson_iter_init(it, b) else { throw StoreError(.internal, "malformed BSON document") }
        return try decodeFields(it, asArray: false)
    }

    /// The document stored under `key` in `b` (e.g. `value` in a findAndModify reply), or nil
    /// when absent or null.
    static func decodeSubdocument(_ b: OpaquePointer, key: String) throws -> JSON? {
        let it = CMongoC_iter_new()!
        defer { CMongoC_iter_free(it) }
        guard bson_iter_init_find(it, b, key) else { return nil }
        guard bson_iter_type(it) == BSON_TYPE_DOCUMENT else { return nil }
        return try decodeValue(it)
    }

    /// An integer field of a reply (`matchedCount`, `deletedCount`), stored as int32 or int64.
    static func intField(_ b: OpaquePointer, _ key: String) -> Int64? {
        let it = CMongoC_iter_new()!
        defer { CMongoC_iter_free(it) }
        guard bson_iter_init_find(it, b, key) else { return nil }
        switch bson_iter_type(it) {
        case BSON_TYPE_INT32: return Int64(bson_iter_int32(it))
        case BSON_TYPE_INT64: return bson_iter_int64(it)
        case BSON_TYPE_DOUBLE: return Int64(bson_iter_double(it))
        default: return nil
        }
    }

    private static func decodeFields(_ it: OpaquePointer, asArray: Bool) throws -> JSON {
        var o: [String: JSON] = [:]
        var a: [JSON] = []
        while bson_iter_next(it) {
            let v = try decodeValue(it)
            if asArray { a.append(v) } else { o[String(cString: bson_iter_key(it))] = v }
        }
        return asArray ? .array(a) : .object(o)
    }

    private static func decodeValue(_ it: OpaquePointer) throws -> JSON {
        let t = bson_iter_type(it)
        switch t {
        case BSON_TYPE_UTF8:
            var len: UInt32 = 0
            guard let p = bson_iter_utf8(it, &len) else { return .string("") }
            return .string(String(decoding: UnsafeRawBufferPointer(start: p, count: Int(len)), as: UTF8.self))
        case BSON_TYPE_INT32: return .int(Int64(bson_iter_int32(it)))
        case BSON_TYPE_INT64: return .int(bson_iter_int64(it))
        case BSON_TYPE_DOUBLE: return .double(bson_iter_double(it))
        case BSON_TYPE_BOOL: return .bool(bson_iter_bool(it))
        case BSON_TYPE_NULL, BSON_TYPE_UNDEFINED: return .null
        case BSON_TYPE_DATE_TIME: return .object(["$date": .int(bson_iter_date_time(it))])
        case BSON_TYPE_OID:
            // Documents written by other tools may carry ObjectIds; their hex form is the id.
            var buf = [CChar](repeating: 0, count: 25)
            bson_oid_to_string(bson_iter_oid(it), &buf)
            return .string(String(decoding: buf.prefix(24).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        case BSON_TYPE_DOCUMENT, BSON_TYPE_ARRAY:
            let child = CMongoC_iter_new()!
            defer { CMongoC_iter_free(child) }
            guard bson_iter_recurse(it, child) else { throw StoreError(.internal, "malformed nested BSON") }
            return try decodeFields(child, asArray: t == BSON_TYPE_ARRAY)
        default:
            throw StoreError(.internal, "unsupported BSON type \(t.rawValue) in a stored document")
        }
    }

    /// libbson's canonical extended JSON text of `b` (for tests and debug logs).
    static func canonicalExtendedJSON(_ b: OpaquePointer) -> String {
        guard let p = bson_as_canonical_extended_json(b, nil) else { return "" }
        defer { bson_free(p) }
        return String(cString: p)
    }
}
