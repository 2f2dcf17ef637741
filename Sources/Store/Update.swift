import JSON

/// Changes applied to a document in one atomic step. Paths are dotted and may not overlap
/// (neither equal nor one inside another), and `_id` cannot change.
public struct Update: Sendable, Hashable {
    /// Sets fields (creating parent objects as needed).
    public var set: [String: JSON]
    /// Removes fields.
    public var unset: [String]
    /// Adds to integer fields; an absent field counts as 0.
    public var inc: [String: Int64]
    /// Appends one element to an array field, creating the array when absent.
    public var push: [String: JSON]

    public init(set: [String: JSON] = [:], unset: [String] = [], inc: [String: Int64] = [:], push: [String: JSON] = [:]) {
        self.set = set
        self.unset = unset
        self.inc = inc
        self.push = push
    }

    public static func set(_ fields: [String: JSON]) -> Update { Update(set: fields) }
    public static func inc(_ path: String, by n: Int64) -> Update { Update(inc: [path: n]) }

    public var isEmpty: Bool { self.set.isEmpty && unset.isEmpty && inc.isEmpty && push.isEmpty }

    /// Rejects what MongoDB would reject, so both backends refuse the same updates.
    func validate() throws {
        let paths = Array(set.keys) + unset + Array(inc.keys) + Array(push.keys)
        for p in paths {
            try DocumentPath.validate(p)
            if p == "_id" || p.hasPrefix("_id.") { throw StoreError(.invalid, "an update cannot change _id") }
        }
        let sorted = paths.sorted()
        for (a, b) in zip(sorted, sorted.dropFirst()) where a == b || b.hasPrefix(a + ".") {
            throw StoreError(.invalid, "update paths overlap: \(a) and \(b)")
        }
    }
}
