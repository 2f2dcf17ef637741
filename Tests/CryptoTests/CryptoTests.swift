import XCTest
import JSON
@testable import Crypto

final class CryptoTests: XCTestCase {
    func testArgon2idHashVerifiesOnlyTheRightPassword() throws {
        let h = try PasswordHasher.hash("correct horse battery")
        XCTAssertTrue(h.hasPrefix("$argon2id$"), h)
        XCTAssertTrue(PasswordHasher.verify("correct horse battery", hash: h))
        XCTAssertFalse(PasswordHasher.verify("correct horse batterx", hash: h))
        XCTAssertFalse(PasswordHasher.verify("", hash: h))
        XCTAssertNotEqual(try PasswordHasher.hash("correct horse battery"), h, "salted")
    }

    func testJWTSignVerifyAndEveryRefusal() throws {
        let k1 = Sodium.randomBytes(32), k2 = Sodium.randomBytes(32)
        let signer = JWTSigner(kid: "k1", keys: ["k1": k1])
        let now: Int64 = 1_800_000_000
        let t = signer.sign(["sub": "usr_1", "role": "merchant", "exp": .int(now + 60), "typ": "access"])
        XCTAssertEqual(try signer.verify(t, nowSeconds: now)["sub"], "usr_1")
        XCTAssertThrowsError(try signer.verify(t, nowSeconds: now + 61)) { XCTAssertEqual($0 as? JWTSigner.Failure, .expired) }
        // Tampered payload: role changed to admin.
        let parts = t.split(separator: ".").map(String.init)
        let forged = Base64URL.encode(JSON.object(["sub": "usr_1", "role": "admin", "exp": .int(now + 60), "typ": "access"]).serializedBytes())
        XCTAssertThrowsError(try signer.verify("\(parts[0]).\(forged).\(parts[2])", nowSeconds: now)) { XCTAssertEqual($0 as? JWTSigner.Failure, .badSignature) }
        // Unknown kid, and a key rotation that keeps verifying old tokens.
        let other = JWTSigner(kid: "k2", keys: ["k2": k2])
        XCTAssertThrowsError(try other.verify(t, nowSeconds: now)) { XCTAssertEqual($0 as? JWTSigner.Failure, .unknownKey) }
        let rotated = JWTSigner(kid: "k2", keys: ["k1": k1, "k2": k2])
        XCTAssertNoThrow(try rotated.verify(t, nowSeconds: now))
        XCTAssertTrue(rotated.sign(["exp": .int(now + 5)]).hasPrefix(Base64URL.encode(JSON.object(["alg": "HS256", "kid": "k2", "typ": "JWT"]).serializedBytes())))
        for junk in ["", "a.b", "a.b.c", "....", String(repeating: "x", count: 5000), t + ".", t + ".x", "." + t, "\(parts[0])..\(parts[2])"] {
            XCTAssertThrowsError(try signer.verify(junk, nowSeconds: now)) { XCTAssertEqual($0 as? JWTSigner.Failure, .malformed, junk) }
        }
        // alg:none is never accepted.
        let none = Base64URL.encode(JSON.object(["alg": "none", "kid": "k1"]).serializedBytes())
        XCTAssertThrowsError(try signer.verify("\(none).\(parts[1]).", nowSeconds: now))
    }

    func testSecretBoxRoundTripAndTamperDetection() throws {
        let box = try SecretBox(key: Sodium.randomBytes(SecretBox.keyBytes))
        let sealed = box.seal("ABCDE1234F")
        XCTAssertFalse(sealed.contains("ABCDE1234F"))
        XCTAssertEqual(try box.open(sealed), "ABCDE1234F")
        var bytes = [UInt8](Data(base64Encoded: sealed)!)
        bytes[bytes.count - 1] ^= 1
        XCTAssertThrowsError(try box.open(Data(bytes).base64EncodedString()))
        let otherBox = try SecretBox(key: Sodium.randomBytes(SecretBox.keyBytes))
        XCTAssertThrowsError(try otherBox.open(sealed))
        XCTAssertThrowsError(try SecretBox(key: [1, 2, 3]))
    }

    func testHMACMatchesRFC4231Case2() {
        let mac = Sodium.hmacSHA256(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8))
        XCTAssertEqual(Sodium.hex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(Sodium.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(Sodium.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(Sodium.constantTimeEqual([1, 2, 3], [1, 2]))
    }
}

final class Base64URLTests: XCTestCase {
    func testMatchesFoundationForEveryLengthAndByte() {
        for n in 0..<70 {
            let b = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ n) }
            let foundation = Data(b).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            XCTAssertEqual(Base64URL.encode(b), foundation, "length \(n)")
            XCTAssertEqual(Base64URL.decode(foundation), b, "length \(n)")
        }
        XCTAssertNil(Base64URL.decode("ab+c"))
        XCTAssertNil(Base64URL.decode("abc="))
        XCTAssertNil(Base64URL.decode("a"))
    }
}
