/// One parsed HTTP request as the server hands it to a handler; the body is complete.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The path without the query string, percent-decoded (never with a control character).
    public var path: String
    /// Query arguments; a repeated name keeps its last value, a name without `=` maps to "".
    public var query: [String: String]
    /// Header names are lower-cased; repeated headers are joined with ", " ("; " for cookie).
    public var headers: [String: String]
    public var body: [UInt8]
    /// The peer's numeric address, e.g. `127.0.0.1`.
    public var remoteAddress: String

    public init(method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:],
                body: [UInt8] = [], remoteAddress: String = "") {
        self.method = method
        self.path = path
        self.query = query
        var lowered: [String: String] = [:]
        for (k, v) in headers { lowered[k.lowercased()] = v }
        self.headers = lowered
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// The server's own: header names arrive lower-cased already.
    init(method: String, path: String, query: [String: String], lowercasedHeaders: [String: String], body: [UInt8], remoteAddress: String) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = lowercasedHeaders
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// A header by case-insensitive name.
    public func header(_ name: String) -> String? {
        name.utf8.contains(where: { $0 >= 65 && $0 <= 90 }) ? headers[name.lowercased()] : headers[name]
    }

    /// The body as UTF-8 text (invalid sequences replaced).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}
