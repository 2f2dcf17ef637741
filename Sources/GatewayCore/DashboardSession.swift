import Foundation
import JSON
import RPC
import Runtime
import Crypto
import HTTPServer
import Redis

/// Who may use the dashboard and how they proved it: an admin bearer token (scripts) or the
/// session cookie set by `/admin/login` (browsers). Also the cross-site request checks.
enum DashboardSession {
    static let cookieName = "oops_admin_session"

    /// The outcome of looking at a request's credentials.
    enum Verdict {
        /// `token` is the bearer token, or the session id of a cookie session.
        case admin(Actor, token: String, viaCookie: Bool)
        /// A valid token of another role: the user is known but not allowed.
        case forbidden
        case anonymous
        /// The session store (Redis) could not be asked: neither signed in nor signed out.
        case unavailable
    }

    static func verdict(_ g: Gateway, _ req: HTTPRequest) -> Verdict {
        // A bearer header wins: a script that sends one means it, whatever cookies it carries.
        guard let token = Gateway.bearerToken(req) else {
            guard let id = cookie(req, cookieName), !id.isEmpty else { return .anonymous }
            do {
                guard let uid = try g.sessions.user(of: id) else { return .anonymous }
                return .admin(Actor(userId: uid, role: .admin), token: id, viaCookie: true)
            } catch {
                g.log.warn("dashboard session store unavailable", ["error": .string(String(describing: error))])
                return .unavailable
            }
        }
        guard case .success(let a) = g.verifyAccessToken(token) else { return .anonymous }
        guard a.role == .admin else { return .forbidden }
        return .admin(a, token: String(decoding: token, as: UTF8.self), viaCookie: false)
    }

    /// One cookie's value from the `Cookie` header (the HTTP server joins repeats with "; ").
    static func cookie(_ req: HTTPRequest, _ name: String) -> String? {
        guard let h = req.header("cookie") else { return nil }
        for part in h.split(separator: ";") {
            let kv = part.trimmingCharacters(in: .whitespaces)
            guard let eq = kv.firstIndex(of: "=") else { continue }
            if kv[..<eq] == name { return String(kv[kv.index(after: eq)...]) }
        }
        return nil
    }

    /// `Set-Cookie` for a new session: unreadable by scripts, never sent cross-site, only under
    /// /admin, and dropped by the browser when the server-side session ends anyway.
    static func setCookie(_ sessionId: String, maxAge: Int, secure: Bool) -> (String, String) {
        ("Set-Cookie", "\(cookieName)=\(sessionId); Path=/admin; Max-Age=\(max(maxAge, 0)); HttpOnly; SameSite=Strict\(secure ? "; Secure" : "")")
    }

    static func clearCookie(secure: Bool) -> (String, String) {
        ("Set-Cookie", "\(cookieName)=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict\(secure ? "; Secure" : "")")
    }

    /// Secure cookies only when the browser reached us over TLS (through a proxy) or the operator
    /// says so: a Secure cookie set over plain http on a LAN address would be dropped.
    static func secureCookies(_ g: Gateway, _ req: HTTPRequest) -> Bool {
        req.header("x-forwarded-proto")?.lowercased() == "https" || g.config.string("OOPS_DASHBOARD_SECURE_COOKIE", default: "0") == "1"
    }

    // MARK: - CSRF

    private static let csrfKeyCache = Locked<[UInt8]?>(nil)

    /// A key for CSRF tokens derived from the token-signing key, so that every Gateway behind a
    /// load balancer computes the same token for a session without sharing state.
    private static func csrfKey(_ g: Gateway) -> [UInt8] {
        if let k = csrfKeyCache.current { return k }
        let signing = (try? g.config.secret(envKey: "OOPS_TOKEN_SECRET", file: "token-signing.key", bytes: 32)) ?? Sodium.randomBytes(32)
        let k = Sodium.hmacSHA256(key: signing, Array("oops-dashboard-csrf-v1".utf8))
        csrfKeyCache.withLock { $0 = k }
        return k
    }

    /// The CSRF token of a session: bound to its token, so it changes with every login.
    static func csrfToken(_ g: Gateway, sessionToken: String) -> String {
        Base64URL.encode(Sodium.hmacSHA256(key: csrfKey(g), Array("csrf|\(sessionToken)".utf8)))
    }

    static func csrfValid(_ g: Gateway, sessionToken: String, presented: String?) -> Bool {
        guard let p = presented, !p.isEmpty, p.utf8.count < 256 else { return false }
        return Sodium.constantTimeEqual(Array(csrfToken(g, sessionToken: sessionToken).utf8), Array(p.utf8))
    }

    /// False when the request says it comes from another site. Browsers send `Origin` on every
    /// POST; `Referer` is the fallback for old ones; a request with neither is a script's.
    static func sameOrigin(_ req: HTTPRequest) -> Bool {
        let hosts = Set([req.header("host"), req.header("x-forwarded-host")].compactMap { $0?.lowercased() })
        func hostOf(_ url: String) -> String? {
            guard let r = url.range(of: "://") else { return nil }
            return String(url[r.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }).lowercased()
        }
        if let o = req.header("origin") {
            // "null" comes from sandboxed frames and privacy redirects: never ours.
            guard let h = hostOf(o) else { return false }
            return hosts.contains(h)
        }
        if let r = req.header("referer"), !r.isEmpty {
            guard let h = hostOf(r) else { return false }
            return hosts.contains(h)
        }
        return true
    }

    // MARK: - form bodies

    /// The submitted fields of a dashboard POST: a classic `application/x-www-form-urlencoded`
    /// body (what a browser form sends) or a JSON object (scripts). Dashboard POST routes are
    /// declared without a JSON body, so the Gateway leaves the raw body to this function.
    static func fields(_ rc: RouteContext) -> [String: String] {
        let ct = (rc.request.header("content-type") ?? "").lowercased()
        if ct.hasPrefix("application/x-www-form-urlencoded") { return urlDecodedForm(rc.request.bodyText) }
        guard ct.hasPrefix("application/json"), !rc.request.body.isEmpty,
              let obj = (try? JSONParser.parse(rc.request.body, maxDepth: 4))?.objectValue
        else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in obj {
            switch v {
            case .string(let s): out[k] = s
            case .int(let i): out[k] = String(i)
            case .bool(let b): out[k] = b ? "true" : "false"
            default: break
            }
        }
        return out
    }

    static func urlDecodedForm(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func dec(_ s: Substring) -> String { String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            out[dec(kv[0])] = kv.count > 1 ? dec(kv[1]) : ""
        }
        return out
    }
}

/// Dashboard sign-ins, kept in the Redis that every Gateway shares. The cookie holds only a
/// random session id (256 bits); Redis holds `oops:dashboard:session:<hex sha256 of the id>` →
/// the admin's user id, expiring with the session. Signing out deletes the key, so the old
/// cookie stops working on every Gateway at once; the id is not a token, so it opens nothing
/// else; and whoever can read Redis learns only hashes.
final class DashboardSessionStore: Sendable {
    static let keyPrefix = "oops:dashboard:session:"
    /// Lifetime of a session (seconds), whatever the access token lifetime says: 1 minute to 1 day.
    static let ttlRange = 60...86_400
    private let redis: RedisClient

    init(redisURL: String) throws {
        redis = try RedisClient(url: redisURL, timeoutMs: 1000)
    }

    private static func key(_ id: String) -> String { keyPrefix + Sodium.hex(Sodium.sha256(Array(id.utf8))) }

    /// A session id as `create` makes it: 43 base64url characters.
    private static func wellFormed(_ id: String) -> Bool {
        id.utf8.count == 43 && id.utf8.allSatisfy { Router.idChar($0) && $0 != 0x2E }
    }

    /// Starts a session for an admin; returns the id for the cookie.
    func create(userId: String, ttlSeconds: Int) throws -> String {
        let id = Base64URL.encode(Sodium.randomBytes(32))
        let ttl = min(max(ttlSeconds, Self.ttlRange.lowerBound), Self.ttlRange.upperBound)
        try redis.run(["SET", Self.key(id), userId, "EX", String(ttl), "NX"])
        return id
    }

    /// The user id of a live session, nil for an unknown, expired or ended one; throws when
    /// Redis cannot answer.
    func user(of id: String) throws -> String? {
        guard Self.wellFormed(id) else { return nil }
        let r = try redis.run(["GET", Self.key(id)])
        return r.isNull ? nil : r.stringValue
    }

    /// Ends a session; throws when Redis cannot confirm it.
    func end(_ id: String) throws {
        guard Self.wellFormed(id) else { return }
        try redis.run(["DEL", Self.key(id)])
    }
}
