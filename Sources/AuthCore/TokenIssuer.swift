import Crypto
import JSON
import RPC

/// Makes the two tokens of a session: a short-lived HS256 access token the Gateway verifies on
/// its own (same key file), and an opaque random refresh token of which only the hash is kept.
struct TokenIssuer: Sendable {
    let signer: JWTSigner
    let accessTTLSeconds: Int
    let refreshTTLSeconds: Int

    func accessToken(userId: String, role: Role, nowMs: Int64) -> String {
        let iat = nowMs / 1000
        return signer.sign(["sub": .string(userId), "role": .string(role.rawValue), "iat": .int(iat),
                            "exp": .int(iat + Int64(accessTTLSeconds)), "typ": "access"])
    }

    /// 32 random bytes, base64url: what the client holds.
    static func newRefreshToken() -> String { Base64URL.encode(Sodium.randomBytes(32)) }

    /// What the store holds instead of the token: SHA-256 suffices (no salt, no slow hash)
    /// because the token has 256 random bits and cannot be guessed from its hash.
    static func hash(refreshToken: String) -> String { Sodium.hex(Sodium.sha256(Array(refreshToken.utf8))) }
}
