import Foundation

/// The provider's authentication: one `access-token` header carrying base64("ACCESS:SECRET").
public enum ParcelXAuth {
    public static let headerName = "access-token"
    /// What request logs store in place of the token.
    public static let redactedValue = "[REDACTED]"

    public static func accessToken(accessKey: String, secretKey: String) -> String {
        Data("\(accessKey):\(secretKey)".utf8).base64EncodedString()
    }

    /// Headers as they may be written to a log: the token's name stays, its value does not.
    public static func redacted(_ headers: [(String, String)]) -> [(String, String)] {
        headers.map { $0.0.lowercased() == headerName ? ($0.0, redactedValue) : $0 }
    }

    /// Compares a presented token with the expected one without an early exit, so response
    /// time does not reveal how much of a guess was right.
    public static func matches(_ presented: String?, accessKey: String, secretKey: String) -> Bool {
        guard let presented else { return false }
        let a = Array(presented.utf8)
        let b = Array(accessToken(accessKey: accessKey, secretKey: secretKey).utf8)
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<min(a.count, b.count) { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
