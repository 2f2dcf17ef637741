import Foundation

/// Process configuration, read once from environment variables with working defaults.
/// Every variable is listed in the README; nothing here is a secret's only copy in a log.
public struct Config: Sendable {
    public var runDir: String
    public var dataDir: String
    public var redisURL: String
    public var mongoURI: String?
    public var httpAddress: String
    public var sandboxAddress: String
    public var parcelxBaseURL: String
    public var parcelxAccessKey: String
    public var parcelxSecretKey: String
    public var logLevel: LogLevel
    public var instance: Int
    /// The Gateway's request body limit (`OOPS_HTTP_MAX_BODY`).
    public var httpMaxBodyBytes: Int
    /// The RPC line limit, derived from the body limit (see `rpcMaxLineBytes(httpMaxBodyBytes:)`).
    public var rpcMaxLineBytes: Int { Config.rpcMaxLineBytes(httpMaxBodyBytes: httpMaxBodyBytes) }
    public var rpcIdleTimeoutMs: Int
    public var env: [String: String]

    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Config {
        func v(_ k: String, _ d: String) -> String {
            if let s = env[k], !s.isEmpty { return s }
            return d
        }
        return Config(
            runDir: v("OOPS_RUN_DIR", "var/run"),
            dataDir: v("OOPS_DATA_DIR", "var/data"),
            redisURL: redisURL(env),
            mongoURI: env["OOPS_MONGODB_URI"].flatMap { $0.isEmpty ? nil : $0 },
            httpAddress: v("OOPS_HTTP_ADDR", "127.0.0.1:8080"),
            sandboxAddress: v("OOPS_SANDBOX_ADDR", "127.0.0.1:8090"),
            parcelxBaseURL: v("PARCELX_BASE_URL", "http://127.0.0.1:8090"),
            parcelxAccessKey: v("PARCELX_ACCESS_KEY", "sandbox-access"),
            parcelxSecretKey: v("PARCELX_SECRET_KEY", "sandbox-secret"),
            logLevel: LogLevel(rawValue: v("OOPS_LOG_LEVEL", "info")) ?? .info,
            instance: min(max(Int(v("OOPS_INSTANCE", "0")) ?? 0, 0), 9999),
            httpMaxBodyBytes: min(max(Int(v("OOPS_HTTP_MAX_BODY", "")) ?? defaultHTTPMaxBodyBytes, 0), maxHTTPMaxBodyBytes),
            rpcIdleTimeoutMs: min(max(Int(v("OOPS_RPC_IDLE_MS", "300000")) ?? 300_000, 1000), 86_400_000),
            env: env)
    }

    /// The one place the Redis settings become the URL every Redis user connects with (see
    /// `RedisClient`): `OOPS_REDIS_URL` alone names one server; with `OOPS_REDIS_SENTINELS`
    /// (`host:port,…`) the master named `OOPS_REDIS_MASTER_NAME` (default `oops`) is found through
    /// the sentinels, with the password and db of `OOPS_REDIS_URL` if it is set. Adds wait for
    /// `OOPS_REDIS_WAIT_REPLICAS` replicas (default 1 with sentinels, 0 otherwise) for at most
    /// `OOPS_REDIS_WAIT_MS` (default 1000).
    public static func redisURL(_ env: [String: String]) -> String {
        func v(_ k: String) -> String? { env[k].flatMap { $0.isEmpty ? nil : $0 } }
        let url = v("OOPS_REDIS_URL") ?? "redis://127.0.0.1:6379"
        let sentinels = v("OOPS_REDIS_SENTINELS")?.replacingOccurrences(of: " ", with: "")
        let wait = min(max(Int(v("OOPS_REDIS_WAIT_REPLICAS") ?? "") ?? (sentinels == nil ? 0 : 1), 0), 16)
        let waitMs = min(max(Int(v("OOPS_REDIS_WAIT_MS") ?? "") ?? 1000, 1), 60_000)
        var base = url
        if let sentinels {
            // Keep the credentials and db of OOPS_REDIS_URL; replace its host by the sentinels.
            let afterScheme = url.hasPrefix("redis://") ? url.dropFirst("redis://".count) : Substring(url)
            let noQuery = afterScheme.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
            let hostAndPath = noQuery.split(separator: "@", omittingEmptySubsequences: false)
            let userinfo = hostAndPath.count > 1 ? hostAndPath.dropLast().joined(separator: "@") + "@" : ""
            let path = hostAndPath.last!.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            let db = path.count > 1 && !path[1].isEmpty ? "/" + path[1] : ""
            base = "redis-sentinel://\(userinfo)\(sentinels)/\(v("OOPS_REDIS_MASTER_NAME") ?? "oops")\(db)"
        }
        guard wait > 0 else { return base }
        return base + (base.contains("?") ? "&" : "?") + "wait=\(wait)&wait_ms=\(waitMs)"
    }

    public static let defaultHTTPMaxBodyBytes = 1 << 20
    /// The largest body limit that may be configured (a larger setting is lowered to it).
    public static let maxHTTPMaxBodyBytes = 1 << 30
    /// Room in an RPC line for everything around a request body: the JSON-RPC envelope, `ctx`
    /// (request id of at most 128 bytes, actor, deadline), and what the Gateway adds from the
    /// path, query and client address, all bounded far below this by the HTTP header limit.
    public static let rpcEnvelopeHeadroomBytes = 64 << 10

    /// The one rule tying the limits together: a body the Gateway accepts fits an RPC line with
    /// its envelope. The services skip longer lines; clients refuse to send them (a body whose
    /// JSON grows when written back, such as `1e14` becoming fifteen digits, is refused there,
    /// as 413, without reaching a service).
    public static func rpcMaxLineBytes(httpMaxBodyBytes: Int) -> Int {
        min(max(httpMaxBodyBytes, 0), maxHTTPMaxBodyBytes) + rpcEnvelopeHeadroomBytes
    }

    public func string(_ key: String, default d: String) -> String {
        if let s = env[key], !s.isEmpty { return s }
        return d
    }

    /// An integer setting, kept within `range`: a setting is a number from outside like any
    /// other, and the code multiplies some of them (seconds into milliseconds), so an absurd one
    /// is brought to the nearest bound instead of overflowing. By default 0 to 2^40 (about 35
    /// years in milliseconds), far above any sensible setting and far below Int64's overflow.
    public func int(_ key: String, default d: Int, range: ClosedRange<Int> = Config.intSettingRange) -> Int {
        let v = env[key].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? d
        return min(max(v, range.lowerBound), range.upperBound)
    }

    public static let intSettingRange = 0...(1 << 40)

    /// `<run dir>/<service>-<n>.sock`
    public func socketPath(service: String, instance: Int) -> String {
        "\(runDir)/\(service)-\(instance).sock"
    }

    /// Splits `host:port`.
    public static func hostPort(_ s: String) -> (String, UInt16) {
        guard let idx = s.lastIndex(of: ":"), let port = UInt16(s[s.index(after: idx)...]) else { return (s, 80) }
        return (String(s[..<idx]), port)
    }

    /// Creates a directory (and parents) with the given mode.
    public static func makeDirectory(_ path: String, mode: Int) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: nil)
        _ = chmod(path, mode_t(mode))
    }

    /// Reads a secret from the environment, or from `<data dir>/<file>`, generating and storing
    /// one (mode 0600) on first start. Returns raw bytes.
    /// The access-token keys, the same in AuthSvc and every Gateway: new tokens are signed with
    /// `OOPS_TOKEN_SECRET` (or the generated key file) under kid `OOPS_TOKEN_KID` (default `k1`);
    /// tokens whose kid names one of `OOPS_TOKEN_PREVIOUS_KEYS` (`kid:base64,…`, verification
    /// only) are still accepted, which is how a key is rotated without signing everybody out.
    public func tokenKeys() throws -> (kid: String, keys: [String: [UInt8]]) {
        let kid = string("OOPS_TOKEN_KID", default: "k1")
        var keys: [String: [UInt8]] = [:]
        for item in string("OOPS_TOKEN_PREVIOUS_KEYS", default: "").split(separator: ",") {
            let kv = item.trimmingCharacters(in: .whitespaces).split(separator: ":", maxSplits: 1)
            guard kv.count == 2, !kv[0].isEmpty, let d = Data(base64Encoded: String(kv[1])), d.count >= 16 else {
                // The value is a secret: the message names the item by its position only.
                throw RuntimeError("OOPS_TOKEN_PREVIOUS_KEYS: each item must be <kid>:<base64 key of at least 16 bytes>")
            }
            keys[String(kv[0])] = [UInt8](d)
        }
        keys[kid] = try secret(envKey: "OOPS_TOKEN_SECRET", file: "token-signing.key", bytes: 32)
        return (kid, keys)
    }

    public func secret(envKey: String, file: String, bytes: Int) throws -> [UInt8] {
        if let s = env[envKey], !s.isEmpty {
            if let d = Data(base64Encoded: s), d.count >= 16 { return [UInt8](d) }
            return Array(s.utf8)
        }
        try Config.makeDirectory(dataDir, mode: 0o750)
        let path = "\(dataDir)/\(file)"
        if let d = FileManager.default.contents(atPath: path), let dec = Data(base64Encoded: String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) {
            return [UInt8](dec)
        }
        var key = [UInt8](repeating: 0, count: bytes)
        for i in 0..<bytes { key[i] = UInt8.random(in: 0...255) }  // SystemRandomNumberGenerator: getrandom(2)
        let tmp = path + ".tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw RuntimeError("cannot create \(path): \(String(cString: strerror(errno)))") }
        let text = Array((Data(key).base64EncodedString() + "\n").utf8)
        _ = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        fsync(fd)
        close(fd)
        // link() fails if another process created it first: then everyone uses the winner's key.
        if link(tmp, path) != 0 {
            unlink(tmp)
            return try secret(envKey: envKey, file: file, bytes: bytes)
        }
        unlink(tmp)
        return key
    }
}

/// A plain error with a message meant for an operator.
public struct RuntimeError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// An error a process may meet at start because a dependency (MongoDB, Redis) is not reachable
/// yet. A service meeting one keeps running, reports itself not ready, and retries, instead of
/// exiting into a restart loop.
public protocol TransientStartError: Error {
    var isTransient: Bool { get }
}
