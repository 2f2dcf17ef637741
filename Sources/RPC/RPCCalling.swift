import JSON

/// One call to another service by method name: what a service needs of its callee. `RPCClient`
/// makes it over the callee's sockets; a `Dispatcher` makes it in-process, so a unit test can
/// wire one service's logic to another's handlers (with every check a call gets: roles,
/// params, deadline) without sockets or processes.
public protocol RPCCalling: Sendable {
    func call(_ method: String, _ params: JSON, ctx: RPCContext) throws(RPCError) -> JSON
}

extension RPCClient: RPCCalling {}

extension Dispatcher: RPCCalling {
    public func call(_ method: String, _ params: JSON, ctx: RPCContext) throws(RPCError) -> JSON {
        switch call(method, params: params, ctx: ctx) {
        case .success(let result): return result
        case .failure(let error): throw error
        }
    }
}
