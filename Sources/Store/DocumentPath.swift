import JSON

/// Checks dotted field paths and collection names before they reach SQL text or a MongoDB
/// command; values never go into SQL text, but paths have to (expression indexes need literals).
enum DocumentPath {
    static func validate(_ path: String) throws {
        let segments = path.split(separator: ".", omittingEmptySubsequences: false)
        guard !path.isEmpty, segments.count <= 32 else { throw StoreError(.invalid, "invalid field path") }
        for s in segments {
            guard !s.isEmpty, s.utf8.count <= 64, s.utf8.allSatisfy(isWordByte) else {
                throw StoreError(.invalid, "invalid field path \(path)")
            }
            // An all-digit segment means an array index in MongoDB but a key in SQLite; refusing
            // it keeps both backends answering alike.
            guard !s.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw StoreError(.invalid, "array positions are not supported in field paths: \(path)")
            }
        }
    }

    static func validateName(_ name: String, what: String) throws {
        guard !name.isEmpty, name.utf8.count <= 64, name.utf8.allSatisfy(isWordByte) else {
            throw StoreError(.invalid, "invalid \(what) name \(name)")
        }
    }

    private static func isWordByte(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
    }

    /// The `_id` of a document about to be stored.
    static func id(of doc: JSON) throws -> String {
        guard case .object(let o) = doc else { throw StoreError(.invalid, "a document must be a JSON object") }
        guard case .string(let id)? = o["_id"], !id.isEmpty else { throw StoreError(.invalid, "a document needs a non-empty string _id") }
        return id
    }

    /// `{"$date": millis}`, the JSON form of a BSON datetime.
    static func dateMillis(_ v: JSON) -> Int64? {
        guard case .object(let o) = v, o.count == 1, case .int(let ms)? = o["$date"] else { return nil }
        return ms
    }

    /// Walks a dotted path inside a document.
    static func value(at path: String, in doc: JSON) -> JSON? {
        var cur: JSON? = doc
        for s in path.split(separator: ".") { cur = cur?[String(s)] }
        return cur
    }
}
