import JSON
import RPC

/// RPC error code → HTTP status, as docs/design.md ("Error codes") fixes it.
enum ErrorMapping {
    static func status(for code: Int) -> Int {
        switch code {
        case -32700, -32600, -32602: return 400
        case -32601: return 404
        case -32001: return 401
        case -32003: return 403
        case -32004: return 404
        case -32009: return 409
        case -32022: return 422
        case -32029: return 429
        case -32050: return 503
        case -32054: return 504
        default: return 500
        }
    }

    /// The status of one error: by its code, except a request too large for an RPC line, which is
    /// 413 like a body over the HTTP limit.
    static func status(for e: RPCError) -> Int {
        e.reason == "payload_too_large" ? 413 : status(for: e.code)
    }

    /// `{"error": {"code": "<reason>", "message", "fields", "requestId"}}`
    static func body(_ e: RPCError, requestId: String) -> JSON {
        var o: [String: JSON] = [
            "code": .string(e.reason ?? defaultReason(e.code)),
            "message": .string(e.code == -32603 ? "Internal error" : e.message),
            "requestId": .string(requestId),
        ]
        if let f = e.data?["fields"] { o["fields"] = f }
        if let ra = e.data?["retryAfter"] { o["retryAfter"] = ra }
        return ["error": .object(o)]
    }

    static func defaultReason(_ code: Int) -> String {
        switch code {
        case -32700: return "parse_error"
        case -32600: return "invalid_request"
        case -32601: return "not_found"
        case -32602: return "validation_failed"
        case -32001: return "unauthenticated"
        case -32003: return "forbidden"
        case -32004: return "not_found"
        case -32009: return "conflict"
        case -32022: return "business_rule"
        case -32029: return "rate_limited"
        case -32050: return "unavailable"
        case -32054: return "deadline_exceeded"
        default: return "internal_error"
        }
    }
}
