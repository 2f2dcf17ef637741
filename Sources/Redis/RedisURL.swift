import Foundation

public struct RedisAddress: Sendable, Equatable {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) { self.host = host; self.port = port }
}

/// Where the master is: at one fixed address, or wherever the sentinels say.
enum RedisTarget: Sendable {
    case direct(RedisAddress)
    case sentinel(masterName: String, sentinels: [RedisAddress])
}

/// A parsed `redis://` or `redis-sentinel://` URL (see `RedisClient`). Every number is checked:
/// ports 1–65535, db 0–1_000_000, wait 0–16 replicas, wait_ms 1–60_000.
struct RedisURL {
    var target: RedisTarget
    var db = 0
    var username: String?
    var password: String?
    var waitReplicas = 0
    var waitTimeoutMs = 1000

    static let usage = "expected redis://[:password@]host[:port][/db] or redis-sentinel://[:password@]host:port,host:port/<master name>[/db], optionally ?wait=<replicas>&wait_ms=<ms>"

    init(_ url: String) throws {
        func bad(_ why: String) -> RedisError { RedisError(.badURL, "\(why); \(Self.usage)") }
        let sentinel: Bool
        var rest: Substring
        if url.hasPrefix("redis://") { sentinel = false; rest = url.dropFirst("redis://".count) }
        else if url.hasPrefix("redis-sentinel://") { sentinel = true; rest = url.dropFirst("redis-sentinel://".count) }
        else { throw bad("unknown scheme") }

        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") { query = rest[rest.index(after: q)...]; rest = rest[..<q] }
        if let at = rest.lastIndex(of: "@") {
            let info = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let parts = info.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let user = parts[0].removingPercentEncoding ?? String(parts[0])
            username = user.isEmpty ? nil : user
            if parts.count == 2 {
                let p = parts[1].removingPercentEncoding ?? String(parts[1])
                password = p.isEmpty ? nil : p
            }
        }
        let path = rest.split(separator: "/", omittingEmptySubsequences: false)
        let hosts = try path[0].split(separator: ",").map { try Self.address(String($0), defaultPort: sentinel ? nil : 6379, bad) }
        guard !hosts.isEmpty else { throw bad("no host") }
        var dbPart: Substring?
        if sentinel {
            guard path.count >= 2, !path[1].isEmpty else { throw bad("no master name") }
            target = .sentinel(masterName: String(path[1]), sentinels: hosts)
            guard path.count <= 3 else { throw bad("too many path segments") }
            if path.count == 3 { dbPart = path[2] }
        } else {
            guard hosts.count == 1 else { throw bad("one host only (several are for redis-sentinel://)") }
            target = .direct(hosts[0])
            guard path.count <= 2 else { throw bad("too many path segments") }
            if path.count == 2 { dbPart = path[1] }
        }
        if let d = dbPart, !d.isEmpty {
            guard let n = Int(d), (0...1_000_000).contains(n) else { throw bad("db must be a number") }
            db = n
        }
        for item in query.split(separator: "&") {
            let kv = item.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let n = Int(kv[1]) else { throw bad("query item '\(item)' needs a number") }
            switch kv[0] {
            case "wait":
                guard (0...16).contains(n) else { throw bad("wait must be 0…16 replicas") }
                waitReplicas = n
            case "wait_ms":
                guard (1...60_000).contains(n) else { throw bad("wait_ms must be 1…60000") }
                waitTimeoutMs = n
            default: throw bad("unknown query item '\(kv[0])'")
            }
        }
    }

    private static func address(_ s: String, defaultPort: Int?, _ bad: (String) -> RedisError) throws -> RedisAddress {
        var host = s
        var port = defaultPort
        if s.hasPrefix("[") {  // [IPv6]:port
            guard let close = s.firstIndex(of: "]") else { throw bad("unclosed '[' in '\(s)'") }
            host = String(s[s.index(after: s.startIndex)..<close])
            let after = s[s.index(after: close)...]
            if after.hasPrefix(":") { port = Int(after.dropFirst()) ?? -1 } else if !after.isEmpty { throw bad("bad address '\(s)'") }
        } else if let colon = s.lastIndex(of: ":") {
            host = String(s[..<colon])
            port = Int(s[s.index(after: colon)...]) ?? -1
        }
        guard !host.isEmpty else { throw bad("empty host in '\(s)'") }
        guard let p = port else { throw bad("'\(s)' needs a port") }
        guard (1...65535).contains(p) else { throw bad("port of '\(s)' must be 1…65535") }
        return RedisAddress(host: host, port: p)
    }
}
