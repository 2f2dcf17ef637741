import JSON
import RPC
import HTTPServer

/// Who may call a route.
enum Access: String {
    case anyone, user, merchant, admin
}

/// What a route handler gets: the request, its path variables, the verified actor, the request
/// id and a deadline for the RPC calls it makes.
struct RouteContext {
    let request: HTTPRequest
    let pathParams: [String: String]
    let actor: Actor?
    let requestId: String
    let ctx: RPCContext
    let body: JSON

    func query(_ k: String) -> String? { request.query[k] }
}

/// What a route answers: a status and a JSON body (nil for 204), plus extra headers.
struct RouteResult {
    var status: Int
    var body: JSON?
    var headers: [(String, String)] = []
    var raw: HTTPResponse?

    static func json(_ status: Int, _ body: JSON) -> RouteResult { RouteResult(status: status, body: body) }
    static func noContent() -> RouteResult { RouteResult(status: 204, body: nil) }
}

/// What the OpenAPI document says about a route beyond JSON in and out: handlers that answer
/// HTML, assets or redirects, and check the caller themselves (the queue dashboard).
struct RouteDoc {
    /// Media type of the success answer.
    var media = "application/json"
    /// Media type of error answers the handler renders itself, besides the Gateway's JSON errors.
    var errorMedia: String?
    /// The role the handler checks itself when the route is `.anyone` at the Gateway.
    var guardedAs: Access?
    /// The handler may answer 303 See Other.
    var redirects = false
}

/// One route, declared once: the router matches it, the OpenAPI document describes it.
struct Route {
    let method: String
    let path: String  // template, e.g. /orders/{id}
    let access: Access
    let summary: String
    /// The RPC method whose params schema documents the request body (read from `rpc.discover`).
    let rpc: (service: String, method: String)?
    let requestBody: Bool
    let successStatus: Int
    let queryParams: [String]
    let handler: (RouteContext) throws(RPCError) -> RouteResult
    let segments: [String]
    var doc = RouteDoc()

    init(_ method: String, _ path: String, _ access: Access, _ summary: String, rpc: (String, String)? = nil,
         body: Bool = false, status: Int = 200, query: [String] = [],
         _ handler: @escaping (RouteContext) throws(RPCError) -> RouteResult) {
        self.method = method
        self.path = path
        self.access = access
        self.summary = summary
        self.rpc = rpc.map { (service: $0.0, method: $0.1) }
        self.requestBody = body
        self.successStatus = status
        self.queryParams = query
        self.handler = handler
        self.segments = path.split(separator: "/").map(String.init)
    }

    func match(_ parts: [Substring]) -> [String: String]? {
        guard parts.count == segments.count else { return nil }
        var vars: [String: String] = [:]
        for (s, p) in zip(segments, parts) {
            if s.hasPrefix("{") && s.hasSuffix("}") {
                guard !p.isEmpty, p.count <= 64, p.utf8.allSatisfy({ Router.idChar($0) }) else { return nil }
                vars[String(s.dropFirst().dropLast())] = String(p)
            } else if s != p {
                return nil
            }
        }
        return vars
    }
}

/// Finds the route for a method and path: 404 when no path matches, 405 with `Allow` when the
/// path exists under other methods.
struct Router {
    let routes: [Route]

    enum Match {
        case found(Route, [String: String])
        case methodNotAllowed([String])
        case notFound
    }

    static func idChar(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D || c == 0x2E
    }

    func match(method: String, path: String) -> Match {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let p = Array(parts.last == "" && parts.count > 1 ? parts.dropLast() : parts)
        // A literal segment beats a variable one, leftmost first: `/orders/create` belongs to
        // its own route, not to `/orders/{id}` with id "create", so `GET /orders/create` is a
        // 405 whose `Allow` lists what the document says for that path.
        var best: [Bool]?
        var candidates: [(Route, [String: String])] = []
        for r in routes {
            guard let vars = r.match(p) else { continue }
            let shape = r.segments.map { !$0.hasPrefix("{") }
            if let b = best {
                if Router.moreSpecific(shape, than: b) {
                    best = shape
                    candidates = [(r, vars)]
                } else if shape == b {
                    candidates.append((r, vars))
                }
            } else {
                best = shape
                candidates = [(r, vars)]
            }
        }
        var allowed: [String] = []
        for (r, vars) in candidates {
            if r.method == method || (method == "HEAD" && r.method == "GET") { return .found(r, vars) }
            if !allowed.contains(r.method) { allowed.append(r.method) }
        }
        return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed)
    }

    /// Shapes of equal length (true = literal segment): the first difference decides.
    static func moreSpecific(_ a: [Bool], than b: [Bool]) -> Bool {
        for (x, y) in zip(a, b) where x != y { return x }
        return false
    }
}
