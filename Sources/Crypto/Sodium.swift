import CSodium
import Foundation

/// libsodium, initialised once per process before any other call.
public enum Sodium {
    private static let ready: Bool = sodium_init() >= 0
    public static func ensureReady() { precondition(ready, "libsodium failed to initialise") }

    /// `n` bytes from the OS CSPRNG.
    public static func randomBytes(_ n: Int) -> [UInt8] {
        ensureReady()
        var b = [UInt8](repeating: 0, count: n)
        randombytes_buf(&b, n)
        return b
    }

    /// Equality that takes the same time wherever the first difference is.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return sodium_memcmp(a, b, a.count) == 0
    }

    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        ensureReady()
        var out = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        crypto_hash_sha256(&out, data, UInt64(data.count))
        return out
    }

    public static func hmacSHA256(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        ensureReady()
        var st = crypto_auth_hmacsha256_state()
        var out = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        crypto_auth_hmacsha256_init(&st, key, key.count)
        crypto_auth_hmacsha256_update(&st, message, UInt64(message.count))
        crypto_auth_hmacsha256_final(&st, &out)
        return out
    }

    /// Lowercase hex of `b` (payload fingerprints, token hashes).
    public static func hex(_ b: [UInt8]) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: b.count * 2)
        for (i, x) in b.enumerated() {
            out[2 * i] = digits[Int(x >> 4)]
            out[2 * i + 1] = digits[Int(x & 0x0F)]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Password hashing with argon2id at libsodium's interactive limits.
public enum PasswordHasher {
    public static func hash(_ password: String) throws -> String {
        Sodium.ensureReady()
        var out = [CChar](repeating: 0, count: Int(crypto_pwhash_STRBYTES))
        let pw = Array(password.utf8) + [0]  // never empty, so the buffer always has an address
        let r = pw.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { c in
                crypto_pwhash_str_alg(&out, c.baseAddress!, UInt64(pw.count - 1), UInt64(crypto_pwhash_OPSLIMIT_INTERACTIVE),
                                      Int(crypto_pwhash_MEMLIMIT_INTERACTIVE), crypto_pwhash_ALG_ARGON2ID13)
            }
        }
        guard r == 0 else { throw CryptoError("password hashing failed (out of memory)") }
        // The hash is ASCII, NUL-terminated inside the buffer.
        let end = out.firstIndex(of: 0) ?? out.count
        return String(decoding: out[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func verify(_ password: String, hash: String) -> Bool {
        Sodium.ensureReady()
        let pw = Array(password.utf8) + [0]
        return hash.withCString { h in
            pw.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { crypto_pwhash_str_verify(h, $0.baseAddress!, UInt64(pw.count - 1)) == 0 }
            }
        }
    }

    /// A hash of a random password, verified against when the account does not exist, so that
    /// an unknown email costs the same time as a wrong password.
    public static let decoy: String = (try? hash(Base64URL.encode(Sodium.randomBytes(16)))) ?? ""
}

/// Authenticated encryption at rest (XSalsa20-Poly1305 secretbox); output is base64 of nonce ‖ box.
public struct SecretBox: Sendable {
    private let key: [UInt8]
    public init(key: [UInt8]) throws {
        guard key.count == Int(crypto_secretbox_KEYBYTES) else { throw CryptoError("secretbox key must be \(crypto_secretbox_KEYBYTES) bytes") }
        self.key = key
    }

    public static var keyBytes: Int { Int(crypto_secretbox_KEYBYTES) }

    public func seal(_ plaintext: String) -> String {
        Sodium.ensureReady()
        let m = Array(plaintext.utf8)
        let nonce = Sodium.randomBytes(Int(crypto_secretbox_NONCEBYTES))
        var c = [UInt8](repeating: 0, count: m.count + Int(crypto_secretbox_MACBYTES))
        crypto_secretbox_easy(&c, m, UInt64(m.count), nonce, key)
        return Data(nonce + c).base64EncodedString()
    }

    public func open(_ sealed: String) throws -> String {
        guard let d = Data(base64Encoded: sealed) else { throw CryptoError("sealed value is not base64") }
        let b = [UInt8](d)
        let nb = Int(crypto_secretbox_NONCEBYTES)
        guard b.count >= nb + Int(crypto_secretbox_MACBYTES) else { throw CryptoError("sealed value too short") }
        let nonce = Array(b[0..<nb])
        let c = Array(b[nb...])
        var m = [UInt8](repeating: 0, count: c.count - Int(crypto_secretbox_MACBYTES))
        guard crypto_secretbox_open_easy(&m, c, UInt64(c.count), nonce, key) == 0 else { throw CryptoError("sealed value failed authentication") }
        return String(decoding: m, as: UTF8.self)
    }
}

public struct CryptoError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ d: String) { description = d }
}

/// Base64url without padding (RFC 4648 section 5), as JWTs use. Hand-written because the
/// Gateway decodes three of these per request and Foundation's way (string replacing, then
/// `Data(base64Encoded:)`) cost tens of microseconds.
public enum Base64URL {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let table: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    public static func encode(_ b: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((b.count * 4 + 2) / 3)
        var i = 0
        while i + 2 < b.count {
            let n = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2])
            out.append(alphabet[Int(n >> 18 & 63)]); out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)]); out.append(alphabet[Int(n & 63)])
            i += 3
        }
        let rest = b.count - i
        if rest == 1 {
            let n = UInt32(b[i]) << 16
            out.append(alphabet[Int(n >> 18 & 63)]); out.append(alphabet[Int(n >> 12 & 63)])
        } else if rest == 2 {
            let n = UInt32(b[i]) << 16 | UInt32(b[i + 1]) << 8
            out.append(alphabet[Int(n >> 18 & 63)]); out.append(alphabet[Int(n >> 12 & 63)]); out.append(alphabet[Int(n >> 6 & 63)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// nil for any character outside the alphabet, padding included, or an impossible length.
    public static func decode(_ s: String) -> [UInt8]? { decode(s.utf8) }

    public static func decode<Bytes: Collection<UInt8>>(_ s: Bytes) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(s.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in s {
            let v = table[Int(c)]
            if v == 0xFF { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(acc >> UInt32(bits) & 0xFF))
            }
        }
        if bits >= 6 { return nil }  // a single dangling character cannot encode a byte
        return out
    }
}
