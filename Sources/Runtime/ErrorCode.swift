/// The one table of error codes (docs/design.md, "Error codes"): each code with the HTTP status
/// the Gateway answers, the reason it carries when the error names none, and its title (the
/// OpenRPC `errors` entry, the message of an error that may not say more).
public enum ErrorCode: Int, CaseIterable, Sendable {
    // Reserved by JSON-RPC 2.0.
    case parseError = -32700
    case invalidRequest = -32600
    case methodNotFound = -32601
    case invalidParams = -32602
    case internalError = -32603
    // The project's.
    case unauthenticated = -32001
    case forbidden = -32003
    case notFound = -32004
    case conflict = -32009
    case businessRule = -32022
    case rateLimited = -32029
    case unavailable = -32050
    case deadlineExceeded = -32054

    /// The HTTP status; a code outside the table is answered 500 (`ErrorCode.status(of:)`).
    public var httpStatus: Int {
        switch self {
        case .parseError, .invalidRequest, .invalidParams: return 400
        case .methodNotFound, .notFound: return 404
        case .internalError: return 500
        case .unauthenticated: return 401
        case .forbidden: return 403
        case .conflict: return 409
        case .businessRule: return 422
        case .rateLimited: return 429
        case .unavailable: return 503
        case .deadlineExceeded: return 504
        }
    }

    /// `error.data.reason` (the HTTP body's `error.code`) when the error carries none.
    public var reason: String {
        switch self {
        case .parseError: return "parse_error"
        case .invalidRequest: return "invalid_request"
        case .methodNotFound: return "method_not_found"
        case .invalidParams: return "validation_failed"
        case .internalError: return "internal_error"
        case .unauthenticated: return "unauthenticated"
        case .forbidden: return "forbidden"
        case .notFound: return "not_found"
        case .conflict: return "conflict"
        case .businessRule: return "business_rule"
        case .rateLimited: return "rate_limited"
        case .unavailable: return "unavailable"
        case .deadlineExceeded: return "deadline_exceeded"
        }
    }

    public var title: String {
        switch self {
        case .parseError: return "Parse error"
        case .invalidRequest: return "Invalid Request"
        case .methodNotFound: return "Method not found"
        case .invalidParams: return "Invalid params"
        case .internalError: return "Internal error"
        case .unauthenticated: return "Unauthenticated"
        case .forbidden: return "Forbidden"
        case .notFound: return "Not found"
        case .conflict: return "Conflict"
        case .businessRule: return "Business rule refused"
        case .rateLimited: return "Rate limited"
        case .unavailable: return "Unavailable"
        case .deadlineExceeded: return "Deadline exceeded"
        }
    }

    /// The HTTP status of any code, including one outside the table (500).
    public static func status(of code: Int) -> Int { ErrorCode(rawValue: code)?.httpStatus ?? 500 }
    /// The default reason of any code, including one outside the table (`internal_error`).
    public static func reason(of code: Int) -> String { ErrorCode(rawValue: code)?.reason ?? ErrorCode.internalError.reason }
}

/// An error that knows what a caller may see of it: a code from the table, a message safe to
/// show a client, and optionally a reason. The store's, Redis's, the queue's and the provider
/// client's errors adopt it; the RPC dispatcher converts any of them once, where a handler's
/// error leaves the service, and logs the full error there. Code that can say something more
/// precise about a failure still throws an `RPCError` itself.
public protocol RPCErrorConvertible: Error {
    var errorCode: ErrorCode { get }
    /// Shown to the client: no paths, queries, driver messages or secrets.
    var publicMessage: String { get }
    /// `data.reason`; nil means the code's reason.
    var publicReason: String? { get }
}

extension RPCErrorConvertible {
    public var publicReason: String? { nil }
}
