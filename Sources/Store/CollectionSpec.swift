/// One index of a collection: dotted field paths in order, optionally unique.
///
/// Unique indexes ignore documents where a field of the index is absent or null (SQLite treats
/// NULLs as distinct; the MongoDB index is partial on `$exists`), so leave a field out rather
/// than storing null when it must not take part in uniqueness.
public struct IndexSpec: Sendable, Hashable {
    public var fields: [String]
    public var unique: Bool
    public var name: String

    public init(_ fields: [String], unique: Bool = false, name: String? = nil) {
        self.fields = fields
        self.unique = unique
        self.name = name ?? fields.map { $0.replacingDots() }.joined(separator: "__") + (unique ? "_uniq" : "")
    }
}

/// A collection a service owns, with the indexes `prepare` creates for it.
public struct CollectionSpec: Sendable, Hashable {
    public var name: String
    public var indexes: [IndexSpec]

    public init(_ name: String, indexes: [IndexSpec] = []) {
        self.name = name
        self.indexes = indexes
    }

    /// The checks both stores make in `prepare` before touching anything: valid names, a
    /// reserved `meta`, indexes with valid fields.
    static func validate(_ collections: [CollectionSpec]) throws {
        for c in collections {
            try DocumentPath.validateName(c.name, what: "collection")
            // The MongoDB store keeps its schema record in `<service>_meta`.
            guard c.name != "meta" else { throw StoreError(.invalid, "the collection name meta is reserved") }
            for i in c.indexes {
                try DocumentPath.validateName(i.name, what: "index")
                guard !i.fields.isEmpty else { throw StoreError(.invalid, "index \(i.name) has no fields") }
                for f in i.fields { try DocumentPath.validate(f) }
            }
        }
    }
}

extension String {
    fileprivate func replacingDots() -> String { String(map { $0 == "." ? "_" : $0 }) }
}
