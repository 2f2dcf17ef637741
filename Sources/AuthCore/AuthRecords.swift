import JSON
import RPC

/// A stored user. `email` is normalised and unique; the password is only ever an argon2id hash.
struct UserRecord: Codable, Sendable, Equatable {
    var id: String
    var email: String
    var name: String
    var phone: String?
    var role: String
    var passwordHash: String
    var createdAt: Int64
    var updatedAt: Int64

    enum CodingKeys: String, CodingKey {
        case id = "_id", email, name, phone, role, passwordHash, createdAt, updatedAt
    }

    var roleValue: Role { Role(rawValue: role) ?? .merchant }
}

/// A stored refresh token: the `_id` is the SHA-256 of the token, never the token itself.
/// Tokens issued by rotation from one login share a `familyId`, so reuse can revoke them all.
struct RefreshRecord: Codable, Sendable, Equatable {
    var id: String
    var userId: String
    var familyId: String
    var createdAt: Int64
    var expiresAt: Int64
    var usedAt: Int64?
    var revokedAt: Int64?

    enum CodingKeys: String, CodingKey {
        case id = "_id", userId, familyId, createdAt, expiresAt, usedAt, revokedAt
    }
}

/// Where a merchant's KYC stands. `notStarted` has no stored document.
enum KYCStatus: String, Sendable, CaseIterable {
    case notStarted = "not_started", submitted, approved, rejected
    static var all: [String] { allCases.map(\.rawValue) }
}

/// One step of a KYC review: who moved it to which status, when, and why (rejections).
struct KYCHistoryEntry: Codable, Sendable, Equatable {
    var status: String
    var by: String
    var at: Int64
    var reason: String?

    var json: JSON {
        var o: [String: JSON] = ["status": .string(status), "by": .string(by), "at": .int(at)]
        if let reason { o["reason"] = .string(reason) }
        return .object(o)
    }
}

/// A stored KYC file, keyed by user id. PAN, GSTIN and the bank account number are kept only
/// sealed (SecretBox) next to their masks.
struct KYCRecord: Codable, Sendable, Equatable {
    struct Address: Codable, Sendable, Equatable {
        var line1: String
        var line2: String?
        var city: String
        var state: String
        var pincode: String
    }
    struct Bank: Codable, Sendable, Equatable {
        var accountNumberSealed: String
        var accountNumberMasked: String
        var ifsc: String
        var holderName: String
    }
    var id: String
    var userId: String
    var email: String
    var status: String
    var businessType: String
    var legalName: String
    var panSealed: String
    var panMasked: String
    var gstinSealed: String?
    var gstinMasked: String?
    var address: Address
    var bank: Bank
    var rejectionReason: String?
    var history: [KYCHistoryEntry]
    var submittedAt: Int64
    var updatedAt: Int64

    enum CodingKeys: String, CodingKey {
        case id = "_id", userId, email, status, businessType, legalName, panSealed, panMasked, gstinSealed, gstinMasked,
             address, bank, rejectionReason, history, submittedAt, updatedAt
    }

    var statusValue: KYCStatus { KYCStatus(rawValue: status) ?? .notStarted }
}

/// Failed-login bookkeeping for one key (an account or a client address).
struct ThrottleState: Codable, Sendable, Equatable {
    var failures = 0
    var windowStartMs: Int64 = 0
    var lastFailureMs: Int64 = 0
    var lockedUntilMs: Int64 = 0
    var lockouts = 0
}
