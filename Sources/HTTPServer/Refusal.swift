import Runtime

// The request-id rule is `RequestID` in Runtime, shared with the RPC context.

/// A request the server itself refuses before any handler sees it (malformed framing, limits).
/// It is answered like every other error: the JSON error body with `X-Request-Id`, and the
/// connection is closed after it.
public struct HTTPRefusal: Sendable, Equatable {
    public let status: Int
    /// The machine-readable reason, e.g. `payload_too_large`.
    public let code: String
    public let message: String

    public init(_ status: Int, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    /// `{"error":{"code","message","requestId"}}`, the shape of every error the Gateway sends.
    /// `code` and `message` are the server's own ASCII texts; the id passed `RequestID`'s rule.
    func response(requestId: String) -> HTTPResponse {
        var body = "{\"error\":{\"code\":\"\(code)\",\"message\":\""
        for c in message.unicodeScalars {
            switch c {
            case "\"": body += "\\\""
            case "\\": body += "\\\\"
            default: if c.value >= 0x20 && c.value < 0x7F { body.unicodeScalars.append(c) }
            }
        }
        body += "\",\"requestId\":\"\(requestId)\"}}"
        var headers: [(String, String)] = [("X-Request-Id", requestId)]
        if status == 503 { headers.append(("Retry-After", "1")) }
        return .json(status, body, headers: headers)
    }

    static let malformed = HTTPRefusal(400, "bad_request", "malformed HTTP request")
    static let headersTooLarge = HTTPRefusal(431, "headers_too_large", "request headers too large")
    static let uriTooLong = HTTPRefusal(414, "uri_too_long", "request target too long")
    static let badContentLength = HTTPRefusal(400, "bad_request", "invalid Content-Length")
    static let ambiguousLength = HTTPRefusal(400, "bad_request", "ambiguous message length (repeated Content-Length, or Content-Length with Transfer-Encoding)")
    static let badTransferEncoding = HTTPRefusal(400, "bad_request", "unsupported Transfer-Encoding (only chunked is accepted)")
    static let badHeader = HTTPRefusal(400, "bad_request", "invalid header field")
    static let badHost = HTTPRefusal(400, "bad_request", "an HTTP/1.1 request needs exactly one valid Host header")
    static let badTarget = HTTPRefusal(400, "bad_request", "invalid request target (control character, bad percent-encoding or invalid UTF-8)")
    static let badVersion = HTTPRefusal(505, "http_version_not_supported", "only HTTP/1.0 and HTTP/1.1 are served")
    static let timeout = HTTPRefusal(408, "request_timeout", "request not completed in time")
    static let busy = HTTPRefusal(503, "unavailable", "too many connections")
    static func tooLarge(_ limit: Int) -> HTTPRefusal { HTTPRefusal(413, "payload_too_large", "request body exceeds \(limit) bytes") }
}
