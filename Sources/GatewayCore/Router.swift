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
    /// The success body is the RPC method's result as it is: the document shows its declared schema.
    var resultOfRPC = false
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
    /// Per segment: literal (true) or variable (false); decides between routes that both match.
    let shape: [Bool]
    /// "METHOD /template", as metrics and logs name the route.
    let name: String
    var doc = RouteDoc()
    /// The handler never blocks (no call to a service): it runs on the HTTP event thread.
    /// Every other handler runs on a worker thread.
    let inline: Bool

    init(_ method: String, _ path: String, _ access: Access, _ summary: String, rpc: (String, String)? = nil,
         body: Bool = false, status: Int = 200, query: [String] = [], inline: Bool = false,
         _ handler: @escaping (RouteContext) throws(RPCError) -> RouteResult) {
        self.inline = inline
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
        self.shape = segments.map { !($0.hasPrefix("{") && $0.hasSuffix("}")) }
        self.name = "\(method) \(path)"
    }

    /// Whether the path's segments fit this route's template (a variable takes one id-like segment).
    func matches(_ parts: [Substring]) -> Bool {
        guard parts.count == segments.count else { return false }
        for (i, p) in parts.enumerated() {
            if shape[i] {
                if segments[i] != p { return false }
            } else if p.isEmpty || p.utf8.count > 64 || !p.utf8.allSatisfy({ Router.idChar($0) }) {
                return false
            }
        }
        return true
    }

    /// The path variables, for a path that `matches`.
    func variables(_ parts: [Substring]) -> [String: String] {
        var vars: [String: String] = [:]
        for (i, p) in parts.enumerated() where !shape[i] {
            vars[String(segments[i].dropFirst().dropLast())] = String(p)
        }
        return vars
    }
}

/// Finds the route for a method and path: 404 when no path matches, 405 with `Allow` when the
/// path exists under other methods.
struct Router {
    let routes: [Route]
    /// Route indices by number of path segments: a request is only compared with routes that
    /// could fit it.
    private let byLength: [Int: [Int]]
    /// Routes without variables, by their exact path: a path found here needs no splitting, and
    /// no route with a variable could be more specific.
    private let literal: [String: [Int]]

    init(routes: [Route]) {
        self.routes = routes
        var m: [Int: [Int]] = [:]
        var l: [String: [Int]] = [:]
        for (i, r) in routes.enumerated() {
            m[r.segments.count, default: []].append(i)
            if r.shape.allSatisfy({ $0 }) { l[r.path, default: []].append(i) }
        }
        byLength = m
        literal = l
    }

    enum Match {
        case found(Route, [String: String])
        case methodNotAllowed([String])
        case notFound
    }

    static func idChar(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D || c == 0x2E
    }

    func match(method: String, path: String) -> Match {
        if let exact = literal[path] {
            var allowed: [String] = []
            for i in exact {
                let r = routes[i]
                if r.method == method || (method == "HEAD" && r.method == "GET") { return .found(r, [:]) }
                if !allowed.contains(r.method) { allowed.append(r.method) }
            }
            return .methodNotAllowed(allowed)
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let p = Array(parts.last == "" && parts.count > 1 ? parts.dropLast() : parts)
        // A literal segment beats a variable one, leftmost first: `/orders/create` belongs to
        // its own route, not to `/orders/{id}` with id "create", so `GET /orders/create` is a
        // 405 whose `Allow` lists what the document says for that path.
        var best: [Bool]?
        var candidates: [Int] = []
        for i in byLength[p.count] ?? [] where routes[i].matches(p) {
            let shape = routes[i].shape
            if let b = best {
                if Router.moreSpecific(shape, than: b) {
                    best = shape
                    candidates = [i]
                } else if shape == b {
                    candidates.append(i)
                }
            } else {
                best = shape
                candidates = [i]
            }
        }
        var allowed: [String] = []
        for i in candidates {
            let r = routes[i]
            if r.method == method || (method == "HEAD" && r.method == "GET") { return .found(r, r.variables(p)) }
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
