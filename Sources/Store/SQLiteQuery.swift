import JSON

/// Translates filters, sorts and updates into SQL over `json_extract(doc, '$.path')`. Paths are
/// validated to `[A-Za-z0-9_.]` before they enter SQL text (expression indexes only match
/// literal paths); every value is a bound parameter.
struct SQLiteQuery {
    var binds: [SQLValue] = []

    /// `'$.a.b'`, safe because the path was validated.
    static func jsonPath(_ path: String) -> String { "'$.\(path)'" }

    /// The expression indexes are built on, so a filter or sort on the same path can use them.
    static func extract(_ path: String) -> String { "json_extract(doc,\(jsonPath(path)))" }

    private static func type(_ path: String) -> String { "json_type(doc,\(jsonPath(path)))" }

    private static func datePath(_ path: String) -> String { "'$.\(path).\"$date\"'" }

    mutating func bind(_ v: SQLValue) -> String {
        binds.append(v)
        return "?"
    }

    mutating func bindJSON(_ v: JSON) -> String { bind(.text(v.serialized())) }

    mutating func whereClause(_ f: Filter) throws -> String {
        switch f {
        case .all:
            return "1"
        case .and(let fs):
            if fs.isEmpty { return "1" }
            return "(" + (try fs.map { try whereClause($0) }).joined(separator: " AND ") + ")"
        case .or(let fs):
            if fs.isEmpty { return "0" }
            return "(" + (try fs.map { try whereClause($0) }).joined(separator: " OR ") + ")"
        case .eq(let p, let v):
            return try equals(p, v)
        case .ne(let p, let v):
            // An absent field yields NULL in SQL but "not equal" in MongoDB.
            return "NOT COALESCE(\(try equals(p, v)),0)"
        case .gt(let p, let v): return try range(p, ">", v)
        case .gte(let p, let v): return try range(p, ">=", v)
        case .lt(let p, let v): return try range(p, "<", v)
        case .lte(let p, let v): return try range(p, "<=", v)
        case .in(let p, let vs):
            try DocumentPath.validate(p)
            if vs.isEmpty { return "0" }
            if vs.allSatisfy({ $0.stringValue != nil }) {
                let lhs = p == "_id" ? "id" : Self.extract(p)
                return "\(lhs) IN (" + vs.map { bind(.text($0.stringValue!)) }.joined(separator: ",") + ")"
            }
            return try whereClause(.or(vs.map { .eq(p, $0) }))
        case .exists(let p, let present):
            try DocumentPath.validate(p)
            if p == "_id" { return present ? "1" : "0" }
            return "\(Self.type(p)) IS \(present ? "NOT " : "")NULL"
        }
    }

    private mutating func equals(_ p: String, _ v: JSON) throws -> String {
        try DocumentPath.validate(p)
        if p == "_id", case .string(let s) = v { return "id = \(bind(.text(s)))" }
        let e = Self.extract(p)
        switch v {
        case .null:
            return "\(e) IS NULL"
        case .bool(let b):
            // json_extract turns booleans into 0/1, indistinguishable from numbers.
            return "\(Self.type(p)) = '\(b ? "true" : "false")'"
        case .int(let n):
            return "(\(Self.type(p)) IN ('integer','real') AND \(e) = \(bind(.int(n))))"
        case .double(let d):
            return "(\(Self.type(p)) IN ('integer','real') AND \(e) = \(bind(.double(d))))"
        case .string(let s):
            return "(\(e) = \(bind(.text(s))) AND \(Self.type(p)) = 'text')"
        case .object, .array:
            if let ms = DocumentPath.dateMillis(v) {
                return "json_extract(doc,\(Self.datePath(p))) = \(bind(.int(ms)))"
            }
            throw StoreError(.invalid, "filters compare scalar values and dates, not objects or arrays (path \(p))")
        }
    }

    private mutating func range(_ p: String, _ op: String, _ v: JSON) throws -> String {
        try DocumentPath.validate(p)
        if p == "_id", case .string(let s) = v { return "id \(op) \(bind(.text(s)))" }
        let e = Self.extract(p)
        switch v {
        case .int(let n):
            return "(\(Self.type(p)) IN ('integer','real') AND \(e) \(op) \(bind(.int(n))))"
        case .double(let d):
            return "(\(Self.type(p)) IN ('integer','real') AND \(e) \(op) \(bind(.double(d))))"
        case .string(let s):
            return "(\(Self.type(p)) = 'text' AND \(e) \(op) \(bind(.text(s))))"
        default:
            if let ms = DocumentPath.dateMillis(v) {
                return "(json_type(doc,\(Self.datePath(p))) = 'integer' AND json_extract(doc,\(Self.datePath(p))) \(op) \(bind(.int(ms))))"
            }
            throw StoreError(.invalid, "range filters compare numbers, strings or dates (path \(p))")
        }
    }

    static func orderBy(_ sort: [SortKey]) throws -> String {
        var terms: [String] = []
        var hasID = false
        for k in sort {
            try DocumentPath.validate(k.path)
            if k.path == "_id" { hasID = true }
            terms.append((k.path == "_id" ? "id" : extract(k.path)) + (k.descending ? " DESC" : ""))
        }
        if !hasID { terms.append("id") }
        return " ORDER BY " + terms.joined(separator: ", ")
    }

    /// The new value of `doc` after `u`, as one SQL expression over the old `doc`.
    mutating func updatedDoc(_ u: Update) throws -> String {
        try u.validate()
        var expr = "doc"
        if !u.unset.isEmpty {
            expr = "json_remove(\(expr)," + u.unset.sorted().map { Self.jsonPath($0) }.joined(separator: ",") + ")"
        }
        var pairs: [String] = []
        for (p, v) in u.set.sorted(by: { $0.key < $1.key }) {
            // json(?) makes SQLite insert the value as JSON (object, array, true, "text"), not as text.
            pairs.append("\(Self.jsonPath(p)),json(\(bindJSON(v)))")
        }
        for (p, n) in u.inc.sorted(by: { $0.key < $1.key }) {
            pairs.append("\(Self.jsonPath(p)),COALESCE(\(Self.extract(p)),0) + \(bind(.int(n)))")
        }
        for (p, v) in u.push.sorted(by: { $0.key < $1.key }) {
            // '$[#]' appends; json_insert alone would not create a missing array, MongoDB's $push does.
            pairs.append("\(Self.jsonPath(p)),json_insert(COALESCE(\(Self.extract(p)),'[]'),'$[#]',json(\(bindJSON(v))))")
        }
        if !pairs.isEmpty { expr = "json_set(\(expr)," + pairs.joined(separator: ",") + ")" }
        return expr
    }
}
