import JSON

/// Translates filters, sorts and updates into MongoDB query documents, refusing exactly what the
/// SQLite translation refuses so a repository behaves the same on both backends.
enum MongoQuery {
    static func filter(_ f: Filter) throws -> [(String, BSONValue)] {
        switch f {
        case .all:
            return []
        case .and(let fs):
            if fs.isEmpty { return [] }
            return [("$and", .array(try fs.map { .document(try filter($0)) }))]
        case .or(let fs):
            // MongoDB refuses an empty $or; every stored document has an _id, so this matches none.
            if fs.isEmpty { return [("_id", .document([("$exists", .json(false))]))] }
            return [("$or", .array(try fs.map { .document(try filter($0)) }))]
        case .eq(let p, let v): return try op(p, "$eq", v, range: false)
        case .ne(let p, let v): return try op(p, "$ne", v, range: false)
        case .gt(let p, let v): return try op(p, "$gt", v, range: true)
        case .gte(let p, let v): return try op(p, "$gte", v, range: true)
        case .lt(let p, let v): return try op(p, "$lt", v, range: true)
        case .lte(let p, let v): return try op(p, "$lte", v, range: true)
        case .in(let p, let vs):
            try DocumentPath.validate(p)
            for v in vs { try checkScalar(p, v, range: false) }
            return [(p, .document([("$in", .array(vs.map { .json($0) }))]))]
        case .exists(let p, let present):
            try DocumentPath.validate(p)
            return [(p, .document([("$exists", .json(.bool(present)))]))]
        }
    }

    private static func op(_ p: String, _ name: String, _ v: JSON, range: Bool) throws -> [(String, BSONValue)] {
        try DocumentPath.validate(p)
        try checkScalar(p, v, range: range)
        return [(p, .document([(name, .json(v))]))]
    }

    private static func checkScalar(_ p: String, _ v: JSON, range: Bool) throws {
        switch v {
        case .int, .double, .string: return
        case .null, .bool:
            if range { throw StoreError(.invalid, "range filters compare numbers, strings or dates (path \(p))") }
        case .object, .array:
            if DocumentPath.dateMillis(v) == nil {
                throw StoreError(.invalid, "filters compare scalar values and dates, not objects or arrays (path \(p))")
            }
        }
    }

    static func sort(_ keys: [SortKey]) throws -> BSONValue {
        var fields: [(String, BSONValue)] = []
        for k in keys {
            try DocumentPath.validate(k.path)
            fields.append((k.path, .int32(k.descending ? -1 : 1)))
        }
        if !keys.contains(where: { $0.path == "_id" }) { fields.append(("_id", .int32(1))) }
        return .document(fields)
    }

    static func update(_ u: Update) throws -> [(String, BSONValue)] {
        try u.validate()
        var out: [(String, BSONValue)] = []
        if !u.set.isEmpty {
            out.append(("$set", .document(u.set.sorted { $0.key < $1.key }.map { ($0.key, .json($0.value)) })))
        }
        if !u.unset.isEmpty {
            out.append(("$unset", .document(u.unset.sorted().map { ($0, .json("")) })))
        }
        if !u.inc.isEmpty {
            out.append(("$inc", .document(u.inc.sorted { $0.key < $1.key }.map { ($0.key, .json(.int($0.value))) })))
        }
        if !u.push.isEmpty {
            out.append(("$push", .document(u.push.sorted { $0.key < $1.key }.map { ($0.key, .json($0.value)) })))
        }
        return out
    }
}
