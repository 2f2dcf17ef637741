import JSON
import Runtime

/// A JSON-RPC error as it travels: one code (docs/design.md, "Error codes"), a message that is safe to
/// show a client, and `data` with `{reason, fields?, requestId?}`. Internal details never go in
/// here; they are logged where the error is handled.
public struct RPCError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var message: String
    public var data: JSON?

    public init(code: Int, message: String, data: JSON? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public init(code: Int, message: String, reason: String, fields: [FieldError] = []) {
        var d: [String: JSON] = ["reason": .string(reason)]
        if !fields.isEmpty { d["fields"] = .array(fields.map { $0.json }) }
        self.init(code: code, message: message, data: .object(d))
    }

    public var reason: String? { data?["reason"]?.stringValue }
    public var description: String { "RPCError(\(code), \(message)\(reason.map { ", " + $0 } ?? ""))" }

    public var json: JSON {
        var o: [String: JSON] = ["code": .int(Int64(code)), "message": .string(message)]
        if let d = data { o["data"] = d }
        return .object(o)
    }

    public init?(json: JSON) {
        guard let c = json["code"]?.intValue, let m = json["message"]?.stringValue else { return nil }
        self.init(code: Int(c), message: m, data: json["data"])
    }

    /// An error of the table: its reason unless `reason` names a more precise one.
    public init(_ code: ErrorCode, _ message: String? = nil, reason: String? = nil, fields: [FieldError] = []) {
        self.init(code: code.rawValue, message: message ?? code.title, reason: reason ?? code.reason, fields: fields)
    }

    /// What a caller may see of an error that knows it (the one conversion; see `RPCErrorConvertible`).
    public init(_ e: any RPCErrorConvertible) {
        self.init(e.errorCode, e.publicMessage, reason: e.publicReason)
    }

    /// This error's row of the table, when its code has one.
    public var errorCode: ErrorCode? { ErrorCode(rawValue: code) }

    public static func parseError(_ m: String = "Parse error") -> RPCError { RPCError(.parseError, m) }
    public static func invalidRequest(_ m: String = "Invalid Request") -> RPCError { RPCError(.invalidRequest, m) }
    public static func methodNotFound(_ name: String) -> RPCError { RPCError(.methodNotFound) }
    public static func invalidParams(_ fields: [FieldError], message: String = "Invalid params") -> RPCError {
        RPCError(.invalidParams, message, fields: fields)
    }
    public static func invalidParams(path: String, _ m: String) -> RPCError { invalidParams([FieldError(path: path, message: m)]) }
    public static func internalError() -> RPCError { RPCError(.internalError) }
    public static func unauthenticated(_ m: String = "Authentication required", reason: String? = nil) -> RPCError { RPCError(.unauthenticated, m, reason: reason) }
    public static func forbidden(_ m: String = "Forbidden") -> RPCError { RPCError(.forbidden, m) }
    public static func notFound(_ m: String = "Not found", reason: String? = nil) -> RPCError { RPCError(.notFound, m, reason: reason) }
    public static func conflict(_ reason: String, _ m: String) -> RPCError { RPCError(.conflict, m, reason: reason) }
    public static func business(_ reason: String, _ m: String) -> RPCError { RPCError(.businessRule, m, reason: reason) }
    public static func rateLimited(_ m: String = "Too many requests", retryAfterSeconds: Int) -> RPCError {
        RPCError(code: ErrorCode.rateLimited.rawValue, message: m, data: ["reason": .string(ErrorCode.rateLimited.reason), "retryAfter": .int(Int64(retryAfterSeconds))])
    }
    public static func unavailable(_ m: String = "Service unavailable") -> RPCError { RPCError(.unavailable, m) }
    /// A request whose JSON-RPC line would exceed the line limit (refused by the client before
    /// sending, or skipped by the server). The Gateway answers it 413, like a body over its limit.
    public static func lineTooLong(limit: Int) -> RPCError {
        RPCError(.invalidRequest, "Request too large: its RPC line exceeds \(limit) bytes", reason: "payload_too_large")
    }
    public static func deadlineExceeded() -> RPCError { RPCError(.deadlineExceeded) }
}

/// One invalid field: a path like `consignee.mobile` or `items[2].quantity`, and what is wrong.
public struct FieldError: Sendable, Equatable {
    public var path: String
    public var message: String
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
    public var json: JSON { ["path": .string(path), "message": .string(message)] }
}
