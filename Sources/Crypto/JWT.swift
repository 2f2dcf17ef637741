import Foundation
import JSON

/// HS256 JSON Web Tokens (RFC 7519) signed with libsodium's HMAC-SHA256. The header carries a
/// `kid` so signing keys can be rotated: verification accepts every key in the key set.
public struct JWTSigner: Sendable {
    public let kid: String
    private let key: [UInt8]
    private let verifyKeys: [String: [UInt8]]

    /// `keys` maps kid → secret; `kid` is the one used to sign new tokens.
    public init(kid: String, keys: [String: [UInt8]]) {
        self.kid = kid
        self.key = keys[kid] ?? []
        self.verifyKeys = keys
    }

    public func sign(_ claims: JSON) -> String {
        let header: JSON = ["alg": "HS256", "typ": "JWT", "kid": .string(kid)]
        let h = Base64URL.encode(header.serializedBytes())
        let p = Base64URL.encode(claims.serializedBytes())
        let sig = Sodium.hmacSHA256(key: key, Array("\(h).\(p)".utf8))
        return "\(h).\(p).\(Base64URL.encode(sig))"
    }

    public enum Failure: Error, Equatable, Sendable {
        case malformed, unknownKey, badSignature, expired, notYetValid
    }

    /// Verifies signature and `exp`/`nbf` against `nowSeconds`; returns the claims.
    public func verify(_ token: String, nowSeconds: Int64) throws(Failure) -> JSON {
        try verify(bytes: Array(token.utf8), nowSeconds: nowSeconds)
    }

    /// The same, on the token's UTF-8 bytes: the Gateway checks one token per request, and
    /// working on bytes keeps String indexing out of that path.
    public func verify(bytes t: [UInt8], nowSeconds: Int64) throws(Failure) -> JSON {
        let dot = UInt8(ascii: ".")
        guard t.count < 4096, let d1 = t.firstIndex(of: dot), let d2 = t[(d1 + 1)...].firstIndex(of: dot),
              !t[(d2 + 1)...].contains(dot),
              let hb = Base64URL.decode(t[..<d1]), let pb = Base64URL.decode(t[(d1 + 1)..<d2]),
              let sb = Base64URL.decode(t[(d2 + 1)...]),
              let header = try? JSONParser.parse(hb, maxDepth: 4), let claims = try? JSONParser.parse(pb, maxDepth: 8)
        else { throw .malformed }
        guard header["alg"] == "HS256", let kid = header["kid"]?.stringValue else { throw .malformed }
        guard let k = verifyKeys[kid] else { throw .unknownKey }
        let expect = Sodium.hmacSHA256(key: k, Array(t[..<d2]))
        guard Sodium.constantTimeEqual(expect, sb) else { throw .badSignature }
        guard let exp = claims["exp"]?.intValue else { throw .malformed }
        if nowSeconds >= exp { throw .expired }
        if let nbf = claims["nbf"]?.intValue, nowSeconds < nbf { throw .notYetValid }
        return claims
    }
}
