import JSON

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

    // Reserved JSON-RPC codes.
    public static let parseErrorCode = -32700
    public static let invalidRequestCode = -32600
    public static let methodNotFoundCode = -32601
    public static let invalidParamsCode = -32602
    public static let internalErrorCode = -32603
    // Project codes (docs/design.md, "Error codes").
    public static let unauthenticatedCode = -32001
    public static let forbiddenCode = -32003
    public static let notFoundCode = -32004
    public static let conflictCode = -32009
    public static let businessRuleCode = -32022
    public static let rateLimitedCode = -32029
    public static let unavailableCode = -32050
    public static let deadlineExceededCode = -32054

    public static func parseError(_ m: String = "Parse error") -> RPCError { RPCError(code: parseErrorCode, message: m, reason: "parse_error") }
    public static func invalidRequest(_ m: String = "Invalid Request") -> RPCError { RPCError(code: invalidRequestCode, message: m, reason: "invalid_request") }
    public static func methodNotFound(_ name: String) -> RPCError { RPCError(code: methodNotFoundCode, message: "Method not found", reason: "method_not_found") }
    public static func invalidParams(_ fields: [FieldError], message: String = "Invalid params") -> RPCError {
        RPCError(code: invalidParamsCode, message: message, reason: "validation_failed", fields: fields)
    }
    public static func invalidParams(path: String, _ m: String) -> RPCError { invalidParams([FieldError(path: path, message: m)]) }
    public static func internalError() -> RPCError { RPCError(code: internalErrorCode, message: "Internal error", reason: "internal_error") }
    public static func unauthenticated(_ m: String = "Authentication required") -> RPCError { RPCError(code: unauthenticatedCode, message: m, reason: "unauthenticated") }
    public static func forbidden(_ m: String = "Forbidden") -> RPCError { RPCError(code: forbiddenCode, message: m, reason: "forbidden") }
    public static func notFound(_ m: String = "Not found") -> RPCError { RPCError(code: notFoundCode, message: m, reason: "not_found") }
    public static func conflict(_ reason: String, _ m: String) -> RPCError { RPCError(code: conflictCode, message: m, reason: reason) }
    public static func business(_ reason: String, _ m: String) -> RPCError { RPCError(code: businessRuleCode, message: m, reason: reason) }
    public static func rateLimited(_ m: String = "Too many requests", retryAfterSeconds: Int) -> RPCError {
        RPCError(code: rateLimitedCode, message: m, data: ["reason": "rate_limited", "retryAfter": .int(Int64(retryAfterSeconds))])
    }
    public static func unavailable(_ m: String = "Service unavailable") -> RPCError { RPCError(code: unavailableCode, message: m, reason: "unavailable") }
    /// A request whose JSON-RPC line would exceed the line limit (refused by the client before
    /// sending, or skipped by the server). The Gateway answers it 413, like a body over its limit.
    public static func lineTooLong(limit: Int) -> RPCError {
        RPCError(code: invalidRequestCode, message: "Request too large: its RPC line exceeds \(limit) bytes", reason: "payload_too_large")
    }
    public static func deadlineExceeded() -> RPCError { RPCError(code: deadlineExceededCode, message: "Deadline exceeded", reason: "deadline_exceeded") }
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
