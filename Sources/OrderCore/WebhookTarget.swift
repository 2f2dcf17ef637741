import Foundation
import Crypto

/// Where a merchant's webhook may be sent (docs/webhooks.md): an `https` URL whose host resolves
/// only to public addresses. Loopback, private, link-local (169.254.169.254, the cloud metadata
/// address), carrier-grade NAT, multicast, reserved and documentation ranges are refused, for
/// IPv4, IPv6 and IPv4 inside IPv6; a name is resolved and every address checked, and the call
/// is pinned to the checked address so a second DNS answer cannot redirect it. Redirects are
/// never followed. `allowed` (`OOPS_WEBHOOK_ALLOW_HOSTS`, `host:port` entries) names test
/// receivers that skip the check and may use `http`.
struct WebhookTarget: Sendable, Equatable {
    let url: String
    let host: String
    let port: Int
    /// `host:port:address` for libcurl's CURLOPT_RESOLVE; empty for an allowed test receiver.
    let pin: [String]

    static let maxURLLength = 2048

    enum Refusal: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case forbiddenAddress(String)
        case unresolvable(String)
        var description: String {
            switch self {
            case .malformed(let m): m
            case .forbiddenAddress(let a): "the host resolves to \(a), which is not a public address"
            case .unresolvable(let h): "the host \(h) does not resolve"
            }
        }
    }

    /// Checks a URL now (at registration and before every delivery).
    static func check(_ raw: String, allowed: Set<String>) -> Result<WebhookTarget, Refusal> {
        guard raw.utf8.count <= maxURLLength, let c = URLComponents(string: raw), let scheme = c.scheme?.lowercased(),
              let host = c.host?.lowercased(), !host.isEmpty else {
            return .failure(.malformed("not an absolute URL"))
        }
        guard c.user == nil && c.password == nil else { return .failure(.malformed("credentials in the URL are not allowed")) }
        guard c.fragment == nil else { return .failure(.malformed("a fragment is not allowed")) }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let port = c.port ?? (scheme == "https" ? 443 : 80)
        guard (1...65535).contains(port) else { return .failure(.malformed("bad port")) }
        if allowed.contains("\(bare):\(port)") {
            guard scheme == "https" || scheme == "http" else { return .failure(.malformed("the scheme must be https")) }
            return .success(WebhookTarget(url: raw, host: bare, port: port, pin: []))
        }
        guard scheme == "https" else { return .failure(.malformed("the scheme must be https")) }
        let addresses = resolve(bare)
        guard let first = addresses.first else { return .failure(.unresolvable(bare)) }
        if let bad = addresses.first(where: { !isPublic($0) }) { return .failure(.forbiddenAddress(text(bad))) }
        let a = text(first)
        return .success(WebhookTarget(url: raw, host: bare, port: port, pin: ["\(bare):\(port):\(a.contains(":") ? "[\(a)]" : a)"]))
    }

    /// Every address `host` resolves to (numeric forms included: `127.1`, `0x7f000001`), as
    /// 4 or 16 bytes.
    static func resolve(_ host: String) -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &res) == 0, let head = res else { return [] }
        defer { freeaddrinfo(head) }
        var out: [[UInt8]] = []
        var p: UnsafeMutablePointer<addrinfo>? = head
        while let ai = p {
            if ai.pointee.ai_family == AF_INET, let sa = ai.pointee.ai_addr {
                sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { s in
                    var a = s.pointee.sin_addr
                    out.append(withUnsafeBytes(of: &a) { Array($0) })
                }
            } else if ai.pointee.ai_family == AF_INET6, let sa = ai.pointee.ai_addr {
                sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { s in
                    var a = s.pointee.sin6_addr
                    out.append(withUnsafeBytes(of: &a) { Array($0) })
                }
            }
            p = ai.pointee.ai_next
        }
        return out
    }

    /// Whether an address (4 or 16 bytes) is one a webhook may reach.
    static func isPublic(_ a: [UInt8]) -> Bool {
        if a.count == 4 {
            let (x, y) = (a[0], a[1])
            switch x {
            case 0, 10, 127: return false
            case 100 where y & 0xC0 == 64: return false  // 100.64.0.0/10
            case 169 where y == 254: return false  // link-local, cloud metadata
            case 172 where y & 0xF0 == 16: return false
            case 192 where y == 168: return false
            case 192 where y == 0 && (a[2] == 0 || a[2] == 2): return false
            case 198 where y & 0xFE == 18: return false  // 198.18.0.0/15
            case 198 where y == 51 && a[2] == 100, 203 where y == 0 && a[2] == 113: return false
            case 224...255: return false  // multicast, reserved, broadcast
            default: return true
            }
        }
        guard a.count == 16 else { return false }
        if a[0..<10].allSatisfy({ $0 == 0 }) && ((a[10] == 0xFF && a[11] == 0xFF) || (a[10] == 0 && a[11] == 0)) {
            // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d, :: and ::1 included).
            let v4 = Array(a[12..<16])
            return v4 != [0, 0, 0, 0] && v4 != [0, 0, 0, 1] && isPublic(v4)
        }
        if a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xFF && a[3] == 0x9B { return isPublic(Array(a[12..<16])) }  // 64:ff9b::/96
        if a[0] & 0xFE == 0xFC { return false }  // unique local fc00::/7
        if a[0] == 0xFE && a[1] & 0xC0 == 0x80 { return false }  // link-local fe80::/10
        if a[0] == 0xFF { return false }  // multicast
        if a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0D && a[3] == 0xB8 { return false }  // documentation
        return true
    }

    static func text(_ a: [UInt8]) -> String {
        var buf = [CChar](repeating: 0, count: 64)
        let family = a.count == 4 ? AF_INET : AF_INET6
        guard (a.withUnsafeBytes { p in inet_ntop(family, p.baseAddress, &buf, 64) }) != nil else { return "?" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The webhook signature (docs/webhooks.md): `OOPS-Signature: t=<unix seconds>,v1=<hex>`, the
/// HMAC-SHA256 of `<t>.<body>` with the endpoint's secret.
enum WebhookSignature {
    static let header = "OOPS-Signature"

    static func value(secret: String, timestamp: Int64, body: [UInt8]) -> String {
        "t=\(timestamp),v1=" + Sodium.hex(Sodium.hmacSHA256(key: Array(secret.utf8), Array("\(timestamp).".utf8) + body))
    }
}
