import JSON
import RPC
import Runtime
import Store

/// Persistence of AuthSvc: users, refresh tokens, KYC files and login throttles. Every method is
/// one atomic step of the document store; the compare-and-set ones say what they compare.
protocol AuthRepository: Sendable {
    /// Stores a new user; returns false when the email is already taken.
    func insertUser(_ u: UserRecord) throws -> Bool
    func user(id: String) throws -> UserRecord?
    func user(email: String) throws -> UserRecord?
    func setRoleAndPassword(userId: String, role: String, passwordHash: String, at: Int64) throws -> UserRecord?

    func insertRefresh(_ r: RefreshRecord) throws
    func refresh(hash: String) throws -> RefreshRecord?
    /// Marks the token used if it is still unused and unrevoked; false when someone was first.
    func markRefreshUsed(hash: String, at: Int64) throws -> Bool
    func revokeFamily(_ familyId: String, at: Int64) throws
    func revokeAllRefresh(userId: String, at: Int64) throws
    func familyHasRevoked(_ familyId: String) throws -> Bool

    func throttle(key: String) throws -> (state: ThrottleState, version: Int64)?
    /// Writes the state if the stored version is still `expectedVersion` (nil: if absent).
    func saveThrottle(key: String, _ s: ThrottleState, expectedVersion: Int64?) throws -> Bool
    func deleteThrottle(key: String) throws
    func pruneThrottles(idleSince: Int64) throws -> Int

    func kyc(userId: String) throws -> KYCRecord?
    /// Stores a first submission; returns false when the user already has a KYC file.
    func insertKYC(_ k: KYCRecord) throws -> Bool
    /// Replaces the submitted fields when the file is still in status `from` (resubmission).
    func resubmitKYC(_ k: KYCRecord, from: KYCStatus, entry: KYCHistoryEntry) throws -> KYCRecord?
    /// Moves the file from `from` to `to`, appending `entry`; nil when it is not in `from`.
    func transitionKYC(userId: String, from: KYCStatus, to: KYCStatus, reason: String?, entry: KYCHistoryEntry) throws -> KYCRecord?
    /// Newest submissions first, strictly after the cursor position `(submittedAt, id)`.
    func listKYC(status: KYCStatus?, after: (submittedAt: Int64, id: String)?, limit: Int) throws -> [KYCRecord]

    func ping() throws
}

/// `AuthRepository` on the project's document store (SQLite by default, MongoDB when configured).
final class DocumentAuthRepository: AuthRepository {
    static let schemaVersion = 1
    static let users = "users", refreshTokens = "refresh_tokens", kyc = "kyc", throttles = "login_throttles"

    private let store: any DocumentStore
    private let log: Logger

    init(store: any DocumentStore, log: Logger) throws {
        self.store = store
        self.log = log
        try store.prepare([
            CollectionSpec(Self.users, indexes: [IndexSpec(["email"], unique: true)]),
            CollectionSpec(Self.refreshTokens, indexes: [IndexSpec(["familyId"]), IndexSpec(["userId"])]),
            CollectionSpec(Self.kyc, indexes: [IndexSpec(["submittedAt"]), IndexSpec(["status", "submittedAt"])]),
            CollectionSpec(Self.throttles, indexes: [IndexSpec(["lastFailureMs"])]),
        ], schemaVersion: Self.schemaVersion)
    }

    func insertUser(_ u: UserRecord) throws -> Bool {
        if case .created = try store.insert(Self.users, JSON(encoding: u)) { return true }
        return false
    }

    func user(id: String) throws -> UserRecord? {
        try store.get(Self.users, id: id)?.decode(UserRecord.self)
    }

    func user(email: String) throws -> UserRecord? {
        try store.findOne(Self.users, where: .eq("email", .string(email)))?.decode(UserRecord.self)
    }

    func setRoleAndPassword(userId: String, role: String, passwordHash: String, at: Int64) throws -> UserRecord? {
        try store.update(Self.users, where: .id(userId),
                         .set(["role": .string(role), "passwordHash": .string(passwordHash), "updatedAt": .int(at)]))?
            .decode(UserRecord.self)
    }

    func insertRefresh(_ r: RefreshRecord) throws {
        guard case .created = try store.insert(Self.refreshTokens, JSON(encoding: r)) else {
            // 256 random bits colliding means the random source is broken: refuse loudly.
            throw RuntimeError("refresh token hash collision")
        }
    }

    func refresh(hash: String) throws -> RefreshRecord? {
        try store.get(Self.refreshTokens, id: hash)?.decode(RefreshRecord.self)
    }

    func markRefreshUsed(hash: String, at: Int64) throws -> Bool {
        try store.update(Self.refreshTokens,
                         where: .and([.id(hash), .exists("usedAt", false), .exists("revokedAt", false)]),
                         .set(["usedAt": .int(at)])) != nil
    }

    func revokeFamily(_ familyId: String, at: Int64) throws {
        _ = try store.updateMany(Self.refreshTokens, where: .and([.eq("familyId", .string(familyId)), .exists("revokedAt", false)]),
                             .set(["revokedAt": .int(at)]))
    }

    func revokeAllRefresh(userId: String, at: Int64) throws {
        _ = try store.updateMany(Self.refreshTokens, where: .and([.eq("userId", .string(userId)), .exists("revokedAt", false)]),
                             .set(["revokedAt": .int(at)]))
    }

    func familyHasRevoked(_ familyId: String) throws -> Bool {
        try store.count(Self.refreshTokens, where: .and([.eq("familyId", .string(familyId)), .exists("revokedAt", true)])) > 0
    }

    func throttle(key: String) throws -> (state: ThrottleState, version: Int64)? {
        guard let d = try store.get(Self.throttles, id: key) else { return nil }
        return (try d.decode(ThrottleState.self), d["version"]?.intValue ?? 0)
    }

    func saveThrottle(key: String, _ s: ThrottleState, expectedVersion: Int64?) throws -> Bool {
        var doc = try JSON(encoding: s)
        guard let v = expectedVersion else {
            doc["_id"] = .string(key)
            doc["version"] = 1
            if case .created = try store.insert(Self.throttles, doc) { return true }
            return false
        }
        var fields = doc.objectValue ?? [:]
        fields["version"] = .int(v + 1)
        return try store.update(Self.throttles, where: .and([.id(key), .eq("version", .int(v))]), .set(fields)) != nil
    }

    func deleteThrottle(key: String) throws {
        _ = try store.delete(Self.throttles, where: .id(key))
    }

    func pruneThrottles(idleSince: Int64) throws -> Int {
        try store.delete(Self.throttles, where: .lt("lastFailureMs", .int(idleSince)))
    }

    func kyc(userId: String) throws -> KYCRecord? {
        try store.get(Self.kyc, id: userId)?.decode(KYCRecord.self)
    }

    func insertKYC(_ k: KYCRecord) throws -> Bool {
        if case .created = try store.insert(Self.kyc, JSON(encoding: k)) { return true }
        return false
    }

    func resubmitKYC(_ k: KYCRecord, from: KYCStatus, entry: KYCHistoryEntry) throws -> KYCRecord? {
        let full = try JSON(encoding: k)
        var set: [String: JSON] = [:]
        var unset: [String] = []
        // Everything the submitter controls is replaced; identity, history and email are kept.
        for key in ["status", "businessType", "legalName", "panSealed", "panMasked", "gstinSealed", "gstinMasked",
                    "address", "bank", "submittedAt", "updatedAt"] {
            if let v = full[key], !v.isNull { set[key] = v } else { unset.append(key) }
        }
        unset.append("rejectionReason")
        return try store.update(Self.kyc, where: .and([.id(k.userId), .eq("status", .string(from.rawValue))]),
                                Update(set: set, unset: unset, push: ["history": entry.json]))?.decode(KYCRecord.self)
    }

    func transitionKYC(userId: String, from: KYCStatus, to: KYCStatus, reason: String?, entry: KYCHistoryEntry) throws -> KYCRecord? {
        var set: [String: JSON] = ["status": .string(to.rawValue), "updatedAt": .int(entry.at)]
        var unset: [String] = []
        if let reason { set["rejectionReason"] = .string(reason) } else { unset.append("rejectionReason") }
        return try store.update(Self.kyc, where: .and([.id(userId), .eq("status", .string(from.rawValue))]),
                                Update(set: set, unset: unset, push: ["history": entry.json]))?.decode(KYCRecord.self)
    }

    func listKYC(status: KYCStatus?, after: (submittedAt: Int64, id: String)?, limit: Int) throws -> [KYCRecord] {
        var parts: [Filter] = []
        if let status { parts.append(.eq("status", .string(status.rawValue))) }
        if let a = after {
            // Sorted by submittedAt descending, ties by _id ascending (the store's tie-break).
            parts.append(.or([.lt("submittedAt", .int(a.submittedAt)),
                              .and([.eq("submittedAt", .int(a.submittedAt)), .gt("_id", .string(a.id))])]))
        }
        return try store.find(Self.kyc, where: .and(parts), sort: [.desc("submittedAt")], limit: limit)
            .map { try $0.decode(KYCRecord.self) }
    }

    func ping() throws {
        try store.ping()
    }
}
