import JSON

/// A one-way copy of a service's store into another (SQLite into MongoDB): afterwards every
/// collection of the target holds exactly the source's documents. Resumable: a second run
/// inserts what is missing, rewrites what differs and removes what the source no longer has, so
/// running it again after the source stopped changing gives an exact copy. It never writes to
/// the source. Unique keys held in the target by a document of another `_id` stop the copy with
/// `.conflict` (the target was not empty).
public enum StoreMigration {
    /// What happened to one collection.
    public struct Report: Sendable, Hashable {
        public var collection: String
        public var sourceCount = 0
        public var targetCount = 0
        public var inserted = 0
        public var rewritten = 0
        public var removed = 0
        public var unchanged = 0
        /// True when the target now holds as many documents as the source.
        public var countsMatch: Bool { sourceCount == targetCount }
    }

    /// Copies `collections` from `source` to `target` in pages of `batch` documents by `_id`.
    public static func copy(_ collections: [String], from source: any DocumentStore, to target: any DocumentStore,
                            batch: Int = 500) throws -> [Report] {
        let batch = min(max(batch, 1), 10_000)
        var reports: [Report] = []
        for c in collections {
            var r = Report(collection: c)
            var cursor: String?
            while true {
                let page = try source.find(c, where: cursor.map { .gt("_id", .string($0)) } ?? .all, sort: [.asc("_id")], limit: batch)
                guard let last = page.last?["_id"]?.stringValue else { break }
                let ids = page.compactMap { $0["_id"] }
                let existing = Dictionary(try target.find(c, where: .in("_id", ids)).map { ($0["_id"]?.stringValue ?? "", $0) },
                                          uniquingKeysWith: { a, _ in a })
                for doc in page {
                    let id = try DocumentPath.id(of: doc)
                    guard let old = existing[id] else {
                        if case .duplicate(let holder) = try target.insert(c, doc) {
                            throw StoreError(.conflict, "\(c) \(id): the target already holds its unique key in \(holder["_id"]?.stringValue ?? "?")")
                        }
                        r.inserted += 1
                        continue
                    }
                    if old == doc {
                        r.unchanged += 1
                        continue
                    }
                    guard case .object(let fields) = doc, case .object(let oldFields) = old else { throw StoreError(.invalid, "\(c) \(id) is not an object") }
                    var set = fields
                    set["_id"] = nil
                    let unset = oldFields.keys.filter { $0 != "_id" && fields[$0] == nil }
                    _ = try target.update(c, where: .id(id), Update(set: set, unset: Array(unset)))
                    r.rewritten += 1
                }
                cursor = last
            }
            r.sourceCount = try source.count(c)
            r.targetCount = try target.count(c)
            if r.targetCount > r.sourceCount {
                // Documents the source no longer has (deleted since an earlier run): remove them.
                var after: String?
                while true {
                    let page = try target.find(c, where: after.map { .gt("_id", .string($0)) } ?? .all, sort: [.asc("_id")], limit: batch)
                    guard let last = page.last?["_id"]?.stringValue else { break }
                    let present = Set(try source.find(c, where: .in("_id", page.compactMap { $0["_id"] })).compactMap { $0["_id"]?.stringValue })
                    for id in page.compactMap({ $0["_id"]?.stringValue }) where !present.contains(id) {
                        r.removed += try target.delete(c, where: .id(id))
                    }
                    after = last
                }
                r.targetCount = try target.count(c)
            }
            reports.append(r)
        }
        return reports
    }
}
