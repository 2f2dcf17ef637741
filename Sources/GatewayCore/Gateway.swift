import Foundation
import JSON
import RPC
import Runtime
import Crypto
import HTTPServer
import Domain
import Redis

/// The HTTP edge: request ids, token checks, rate limits, routing to RPC, error mapping.
final class Gateway: Sendable {
    let config: Config
    let log: Logger
    let clients: [String: RPCClient]
    let signer: JWTSigner
    let ipLimiter: RateLimiter
    let userLimiter: RateLimiter
    let loginLimiter: RateLimiter
    let registerLimiter: RateLimiter
    let redisURL: String
    let sessions: DashboardSessionStore
    let rpcTimeoutMs: Int
    let metrics = HTTPMetrics()
    /// The public listener's routes, and the operator listener's (`OOPS_ADMIN_ADDR`).
    nonisolated(unsafe) var router = Router(routes: [])
    nonisolated(unsafe) var adminRouter = Router(routes: [])

    init(config: Config, log: Logger) throws {
        self.config = config
        self.log = log
        var c: [String: RPCClient] = [:]
        for s in ServiceName.all { c[s] = RPCClient(runDir: config.runDir, service: s, poolSize: 4, maxLineBytes: config.rpcMaxLineBytes) }
        clients = c
        let tokenKeys = try config.tokenKeys()
        signer = JWTSigner(kid: tokenKeys.kid, keys: tokenKeys.keys)
        ipLimiter = RateLimiter(rate: Double(config.int("OOPS_RATE_IP_PER_S", default: 200)), burst: Double(config.int("OOPS_RATE_IP_BURST", default: 400)))
        userLimiter = RateLimiter(rate: Double(config.int("OOPS_RATE_USER_PER_S", default: 100)), burst: Double(config.int("OOPS_RATE_USER_BURST", default: 200)))
        loginLimiter = RateLimiter(rate: Double(config.int("OOPS_RATE_LOGIN_PER_MIN", default: 20)) / 60, burst: Double(config.int("OOPS_RATE_LOGIN_BURST", default: 10)))
        registerLimiter = RateLimiter(rate: Double(config.int("OOPS_RATE_REGISTER_PER_MIN", default: 10)) / 60, burst: Double(config.int("OOPS_RATE_REGISTER_BURST", default: 5)))
        redisURL = config.redisURL
        sessions = try DashboardSessionStore(redisURL: config.redisURL)
        rpcTimeoutMs = config.int("OOPS_RPC_TIMEOUT_MS", default: 5000)
        router = Router(routes: Routes.all(self))
        adminRouter = Router(routes: Routes.admin(self))
    }

    func client(_ s: String) -> RPCClient { clients[s]! }

    /// Answers at once what needs no service (refusals, inline routes); hands the rest to a
    /// worker thread, as its handler calls services. `admin` selects the operator listener's
    /// route table instead of the public one.
    func handle(_ req: HTTPRequest, admin: Bool = false) -> HTTPReply {
        let t0 = Clock.monotonicNanos()
        let requestId = RequestID.accept(req.header("x-request-id"))
        switch prepare(req, requestId: requestId, router: admin ? adminRouter : router) {
        case .answered(let resp, let name):
            return .now(finish(resp, req, routeName: name, requestId: requestId, since: t0))
        case .ready(let r):
            if r.route.inline { return .now(finish(run(r), req, routeName: r.route.name, requestId: requestId, since: t0)) }
            let rid = requestId
            return .later { self.finish(self.run(r), req, routeName: r.route.name, requestId: rid, since: t0) }
        }
    }

    private func finish(_ response: HTTPResponse, _ req: HTTPRequest, routeName: String, requestId: String, since t0: UInt64) -> HTTPResponse {
        var resp = response
        resp.headers.append(("X-Request-Id", requestId))
        metrics.record(route: routeName, method: req.method, status: resp.status, nanos: Clock.monotonicNanos() - t0)
        if resp.status >= 500 {
            log.warn("request failed", requestId: requestId, ["method": .string(req.method), "route": .string(routeName), "status": .int(Int64(resp.status))])
        }
        return resp
    }

    /// A matched, admitted request and its context: what a route handler needs. The handler
    /// closure is only ever run by one thread at a time.
    struct Ready: @unchecked Sendable {
        let route: Route
        let rc: RouteContext
    }

    enum Prepared {
        case answered(HTTPResponse, routeName: String)
        case ready(Ready)
    }

    private func error(_ e: RPCError, _ requestId: String, headers: [(String, String)] = []) -> HTTPResponse {
        let status = ErrorMapping.status(for: e)
        var h = headers
        // A service unavailable or past its deadline is worth retrying shortly: say when.
        if status == 503 || status == 504 { h.append(("Retry-After", "1")) }
        // RFC 9110: every 401 names the scheme to use, also when a service refused the caller.
        if status == 401 && !h.contains(where: { $0.0 == "WWW-Authenticate" }) { h.append(("WWW-Authenticate", "Bearer")) }
        if status == 429, let ra = e.data?["retryAfter"]?.intValue { h.append(("Retry-After", String(ra))) }
        return .json(status, ErrorMapping.body(e, requestId: requestId).serializedBytes(), headers: h)
    }

    /// Everything before the route's handler: routing, rate limits, authentication, roles and
    /// the body. None of it blocks.
    private func prepare(_ req: HTTPRequest, requestId: String, router: Router) -> Prepared {
        let route: Route
        let vars: [String: String]
        switch router.match(method: req.method, path: req.path) {
        case .notFound:
            return .answered(error(RPCError(.notFound, "No such route", reason: "route_not_found"), requestId), routeName: "unmatched")
        case .methodNotAllowed(let allowed):
            let e = RPCError(.invalidRequest, "Method not allowed", reason: "method_not_allowed")
            var r = error(e, requestId, headers: [("Allow", allowed.joined(separator: ", "))])
            r.status = 405
            return .answered(r, routeName: "unmatched")
        case .found(let r, let v):
            route = r
            vars = v
        }
        let name = route.name
        // Rate limits per client address, and stricter on login and sign-up (each costs a password hash).
        if let wait = ipLimiter.take(req.remoteAddress) {
            return .answered(error(.rateLimited(retryAfterSeconds: wait), requestId), routeName: name)
        }
        if route.path == "/auth/login", let wait = loginLimiter.take(req.remoteAddress) {
            return .answered(error(.rateLimited(retryAfterSeconds: wait), requestId), routeName: name)
        }
        if route.path == "/auth/register", let wait = registerLimiter.take(req.remoteAddress) {
            return .answered(error(.rateLimited(retryAfterSeconds: wait), requestId), routeName: name)
        }
        // Authentication and roles.
        var actor: Actor?
        if route.access != .anyone {
            switch authenticate(req) {
            case .success(let a): actor = a
            case .failure(let e): return .answered(error(e, requestId), routeName: name)
            }
            let a = actor!
            switch route.access {
            case .admin where a.role != .admin, .merchant where a.role != .merchant:
                return .answered(error(.forbidden("This route is not available to your role"), requestId), routeName: name)
            default: break
            }
            if let wait = userLimiter.take(a.userId) {
                return .answered(error(.rateLimited(retryAfterSeconds: wait), requestId), routeName: name)
            }
        }
        // Body: JSON only, bounded by the HTTP server.
        // A route that takes no body ignores one: otherwise `GET /wallet` with `{"userId": ...}`
        // would reach the service as params the route never meant to accept.
        var body: JSON = .object([:])
        if !req.body.isEmpty && route.requestBody {
            let ct = (req.header("content-type") ?? "").lowercased()
            guard ct.hasPrefix("application/json") else {
                var r = error(RPCError(.invalidRequest, "Content-Type must be application/json", reason: "unsupported_media_type"), requestId)
                r.status = 415
                return .answered(r, routeName: name)
            }
            do {
                body = try JSONParser.parse(req.body, maxDepth: 64)
            } catch {
                return .answered(self.error(RPCError(code: ErrorCode.parseError.rawValue, message: "Malformed JSON: \(error.message) at byte \(error.offset)", data: ["reason": "malformed_json", "position": .int(Int64(error.offset))]), requestId), routeName: name)
            }
            // Every body is a by-name object (RPC params are); an array or a scalar would be
            // silently ignored by handlers that only read fields.
            guard body.objectValue != nil else {
                return .answered(error(.invalidParams(path: "", "the request body must be a JSON object"), requestId), routeName: name)
            }
        } else if route.requestBody {
            body = .object([:])
        }
        let ctx = RPCContext(requestId: requestId, actor: actor ?? .system, deadline: .after(ms: rpcTimeoutMs))
        return .ready(Ready(route: route, rc: RouteContext(request: req, pathParams: vars, actor: actor, requestId: requestId, ctx: ctx, body: body)))
    }

    /// Runs a route's handler and renders what it answers.
    private func run(_ r: Ready) -> HTTPResponse {
        let requestId = r.rc.requestId
        do {
            let res = try r.route.handler(r.rc)
            if let raw = res.raw { return raw }
            var h = res.headers
            if let b = res.body {
                h.insert(("Content-Type", "application/json"), at: 0)
                return HTTPResponse(status: res.status, headers: h, body: b.serializedBytes())
            }
            return HTTPResponse(status: res.status, headers: h, body: [])
        } catch {
            if error.code == ErrorCode.internalError.rawValue {
                log.error("internal error from a service", requestId: requestId, ["route": .string(r.route.name)])
            }
            return self.error(error, requestId)
        }
    }

    private func authenticate(_ req: HTTPRequest) -> Result<Actor, RPCError> {
        guard let token = Self.bearerToken(req) else { return .failure(.unauthenticated("A bearer token is required")) }
        return verifyAccessToken(token)
    }

    /// The one rule for an access token, for the API routes and the dashboard alike: signed by
    /// AuthSvc's key, not expired, of type `access`, naming a user and a role a user can have.
    func verifyAccessToken(_ token: [UInt8]) -> Result<Actor, RPCError> {
        do {
            let claims = try signer.verify(bytes: token, nowSeconds: Clock.wallMillis() / 1000)
            guard claims["typ"] == "access", let uid = claims["sub"]?.stringValue,
                  let role = claims["role"]?.stringValue.flatMap(Role.init(rawValue:)), role != .system
            else { return .failure(.unauthenticated("Invalid token")) }
            return .success(Actor(userId: uid, role: role))
        } catch .expired {
            return .failure(RPCError(.unauthenticated, "Token expired", reason: "token_expired"))
        } catch {
            return .failure(RPCError(.unauthenticated, "Invalid token", reason: "invalid_token"))
        }
    }

    /// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive, spaces and
    /// tabs around the token ignored), or nil when the value is not of that form.
    static func bearerToken(_ req: HTTPRequest) -> [UInt8]? {
        req.header("authorization").flatMap { bearerToken(Array($0.utf8)) }
    }

    static func bearerToken(_ v: [UInt8]) -> [UInt8]? {
        let scheme = Array("bearer ".utf8)
        guard v.count >= scheme.count else { return nil }
        for i in 0..<scheme.count - 1 where v[i] | 0x20 != scheme[i] { return nil }
        guard v[scheme.count - 1] == 0x20 else { return nil }
        var start = scheme.count, end = v.count
        func blank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 }
        while start < end && blank(v[start]) { start += 1 }
        while end > start && blank(v[end - 1]) { end -= 1 }
        return Array(v[start..<end])
    }

    /// Calls a service method for the current request.
    func call(_ service: String, _ method: String, _ params: JSON, _ rc: RouteContext) throws(RPCError) -> JSON {
        try client(service).call(method, params, ctx: rc.ctx)
    }
}
