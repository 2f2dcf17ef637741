import JSON

extension JSON {
    /// A string param that the method's schema declared required. The dispatcher validated the
    /// params before the handler runs, so a miss here is a schema that does not say `required`:
    /// it answers invalid params rather than crashing the process.
    public func requiredString(_ key: String) throws(RPCError) -> String {
        guard let s = self[key]?.stringValue else { throw RPCError.invalidParams(path: key, "is required") }
        return s
    }
}

extension JSON {
    /// An integer param that the method's schema declared required (see `requiredString`).
    public func requiredInt(_ key: String) throws(RPCError) -> Int64 {
        guard let n = self[key]?.intValue else { throw RPCError.invalidParams(path: key, "is required") }
        return n
    }
}
