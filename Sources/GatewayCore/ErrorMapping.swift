import JSON
import RPC
import Runtime

/// An RPC error as the Gateway answers it: the status and default reason come from the one
/// table (`ErrorCode`, docs/design.md "Error codes"); this file only fixes the HTTP body.
enum ErrorMapping {
    static func status(for code: Int) -> Int { ErrorCode.status(of: code) }

    /// The status of one error: by its code, except a request too large for an RPC line, which is
    /// 413 like a body over the HTTP limit.
    static func status(for e: RPCError) -> Int {
        e.reason == "payload_too_large" ? 413 : status(for: e.code)
    }

    /// `{"error": {"code": "<reason>", "message", "fields", "requestId"}}`; an internal error
    /// says no more than its title.
    static func body(_ e: RPCError, requestId: String) -> JSON {
        let internalError = e.code == ErrorCode.internalError.rawValue
        var o: [String: JSON] = [
            "code": .string(e.reason ?? ErrorCode.reason(of: e.code)),
            "message": .string(internalError ? ErrorCode.internalError.title : e.message),
            "requestId": .string(requestId),
        ]
        if let f = e.data?["fields"] { o["fields"] = f }
        if let ra = e.data?["retryAfter"] { o["retryAfter"] = ra }
        return ["error": .object(o)]
    }
}
