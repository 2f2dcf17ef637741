import JSON

/// Which documents an operation applies to. Paths are dotted (`payment.mode`); comparisons follow
/// MongoDB's rules on both backends: `ne` and `eq(_, .null)` also match an absent field, range
/// operators only compare numbers with numbers and strings with strings, and a `{"$date": ms}`
/// value compares as a date.
public indirect enum Filter: Sendable, Hashable {
    case all
    case eq(String, JSON)
    case ne(String, JSON)
    case gt(String, JSON)
    case gte(String, JSON)
    case lt(String, JSON)
    case lte(String, JSON)
    case `in`(String, [JSON])
    case exists(String, Bool)
    case and([Filter])
    case or([Filter])

    /// Shorthand for the most common filter.
    public static func id(_ id: String) -> Filter { .eq("_id", .string(id)) }
}

/// One key of a sort order. Both backends break ties by `_id` ascending, so paging is stable.
public struct SortKey: Sendable, Hashable {
    public var path: String
    public var descending: Bool

    public init(_ path: String, descending: Bool = false) {
        self.path = path
        self.descending = descending
    }

    public static func asc(_ path: String) -> SortKey { SortKey(path) }
    public static func desc(_ path: String) -> SortKey { SortKey(path, descending: true) }
}
