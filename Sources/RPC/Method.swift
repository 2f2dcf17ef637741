import Foundation
import JSON
import Runtime

/// One RPC method, declared once: its name, who may call it, the schema of its params and
/// result, the error codes it may return, and its handler. `rpc.discover` is generated from
/// these declarations.
public struct Method: Sendable {
    public var name: String
    public var summary: String
    /// Roles allowed to call; empty means anyone who can reach the socket (e.g. `auth.login`,
    /// which the Gateway calls before anyone is authenticated).
    public var roles: Set<Role>
    public var params: Schema
    public var result: Schema
    public var errors: [ErrorCode]
    public var handler: @Sendable (JSON, RPCContext) throws -> JSON
    /// A method that never blocks and takes microseconds (no I/O, no locks held long) may run on
    /// the connection's reader thread, saving the hop to the handler pool. Everything else runs
    /// on the pool, so one slow call never holds up the others on its connection.
    public var inline: Bool
    /// A method whose calls may wait long for a resource it bounds and admits itself (AuthSvc's
    /// password hashing) runs each call on a thread of its own. On the shared handler pool, which
    /// on Linux grows only slowly past the number of cores, its waiting calls would take every
    /// thread, and calls it would admit or refuse at once would queue unseen behind them.
    public var ownThread = false

    public init(_ name: String, summary: String, roles: Set<Role>, params: Schema, result: Schema, errors: [ErrorCode] = [],
                inline: Bool = false, handler: @escaping @Sendable (JSON, RPCContext) throws -> JSON) {
        self.inline = inline
        self.name = name
        self.summary = summary
        self.roles = roles
        self.params = params
        self.result = result
        self.errors = errors
        self.handler = handler
    }

    /// A method with typed params and result: params are validated against `params` first, then
    /// decoded into `P`; the result is encoded from `R`.
    public static func typed<P: Decodable & Sendable, R: Encodable & Sendable>(
        _ name: String, summary: String, roles: Set<Role>, params: Schema, result: Schema, errors: [ErrorCode] = [], ownThread: Bool = false,
        _ body: @escaping @Sendable (P, RPCContext) throws -> R
    ) -> Method {
        var m = Method(name, summary: summary, roles: roles, params: params, result: result, errors: errors) { p, ctx in
            let decoded: P
            do {
                decoded = try JSONDecoder().decode(P.self, from: Data(p.serializedBytes()))
            } catch let e as DecodingError {
                throw RPCError.invalidParams([FieldError(path: Method.path(of: e), message: "has the wrong type or is missing")])
            }
            let r = try body(decoded, ctx)
            if let j = r as? JSON { return j }
            return try JSON(encoding: r)
        }
        m.ownThread = ownThread
        return m
    }

    static func path(of e: DecodingError) -> String {
        let ctx: DecodingError.Context
        switch e {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): ctx = c
        case .keyNotFound(let k, let c):
            return (c.codingPath + [k]).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        @unknown default: return "$"
        }
        let p = ctx.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        return p.isEmpty ? "$" : p
    }
}

/// An empty result `{}` for methods that only acknowledge.
public struct Empty: Codable, Sendable { public init() {} }
