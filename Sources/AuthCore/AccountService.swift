import Crypto
import Foundation
import JSON
import RPC
import Runtime

/// A signed-in session as handed to the client.
struct Session: Sendable {
    var user: UserRecord
    var kycStatus: KYCStatus
    var accessToken: String
    var refreshToken: String
    var expiresIn: Int
}

/// Admits argon2id computations: each takes 64 MiB and a core, so at most `width` run at once.
/// New password hashes (sign-ups, the admin's password) and verifications (logins) wait in
/// separate bounded lines, and a freed slot goes to the waiting kind holding fewer slots, so a
/// flood of one kind cannot hold up the other. A full line is refused at once, and so is a wait that would leave too little of the
/// caller's deadline for the hash and the answer: -32050 `overloaded`, which the Gateway answers
/// 503 with `Retry-After`, instead of a 504 after the deadline. The methods that hash run each
/// call on a thread of their own (`Method.ownThread`), so every call reaches this gate at once.
final class HashGate: Sendable {
    enum Kind: Int, CaseIterable {
        case register
        case login
    }

    /// What a waiter leaves of its deadline for the hash itself and the rest of the call.
    static let maxReserveNanos: UInt64 = 1_000_000_000
    private let queue: AdmissionQueue

    init(width: Int, registerLine: Int, loginLine: Int) {
        var lines = [Int](repeating: 0, count: Kind.allCases.count)
        lines[Kind.register.rawValue] = registerLine
        lines[Kind.login.rawValue] = loginLine
        queue = AdmissionQueue(width: width, lineLimits: lines)
    }

    func run<T>(_ kind: Kind, until deadline: Deadline, _ body: () throws -> T) throws -> T {
        let remaining = deadline.remainingNanos
        let maxWait = remaining - min(remaining / 4, Self.maxReserveNanos)
        do {
            return try queue.run(kind: kind.rawValue, maxWaitNanos: maxWait, body)
        } catch is AdmissionQueue.Refusal {
            let what = kind == .register ? "sign-ups" : "logins"
            throw RPCError(.unavailable, "Too many \(what) are being processed; try again shortly",
                           reason: "overloaded")
        }
    }
}

/// The account decisions: who may register, log in, refresh and log out, and who is admin.
final class AccountService: Sendable {
    private let repo: any AuthRepository
    private let tokens: TokenIssuer
    private let throttle: LoginThrottle
    private let gate: HashGate
    private let clock: any WallClock
    private let log: Logger

    init(repo: any AuthRepository, tokens: TokenIssuer, throttle: LoginThrottle, gate: HashGate, log: Logger,
         clock: any WallClock = SystemClock()) {
        self.repo = repo
        self.tokens = tokens
        self.throttle = throttle
        self.gate = gate
        self.log = log
        self.clock = clock
    }

    private func now() -> Int64 { clock.nowMillis() }

    static let invalidCredentials = RPCError(.unauthenticated, "Invalid email or password",
                                             reason: "invalid_credentials")
    static let emailTaken = RPCError.conflict("email_taken", "An account with this email already exists")

    func register(email rawEmail: String, password: String, name: String, phone: String, deadline: Deadline) throws -> Session {
        let v = try AccountValidation.validate(email: rawEmail, password: password, name: name, phone: phone)
        // A taken email is answered without waiting for a hash slot. Look again once inside the
        // gate: of many concurrent sign-ups for one email, only the first few pay for a hash; the
        // unique index still decides the winner.
        if try repo.user(email: v.email) != nil { throw Self.emailTaken }
        let hash: String = try gate.run(.register, until: deadline) {
            if try repo.user(email: v.email) != nil { throw Self.emailTaken }
            return try PasswordHasher.hash(password)
        }
        let t = now()
        let user = UserRecord(id: ID.make("usr"), email: v.email, name: v.name, phone: v.phone, role: Role.merchant.rawValue,
                              passwordHash: hash, createdAt: t, updatedAt: t)
        guard try repo.insertUser(user) else { throw Self.emailTaken }
        log.info("user registered", ["userId": .string(user.id)])
        return try startSession(user, kycStatus: .notStarted, familyId: nil)
    }

    func login(email rawEmail: String, password: String, clientAddress: String?, deadline: Deadline) throws -> Session {
        let email = AccountValidation.normaliseEmail(rawEmail)
        let obs = try throttle.check(email: email, address: clientAddress, nowMs: now())
        // Unknown email and wrong password take the same path: one store read, one argon2id
        // verification (against a decoy hash when there is no user), one throttle write.
        let user = try repo.user(email: email)
        let ok = try gate.run(.login, until: deadline) { PasswordHasher.verify(password, hash: user?.passwordHash ?? PasswordHasher.decoy) }
        guard ok, let user else {
            try throttle.failed(obs, nowMs: now())
            throw Self.invalidCredentials
        }
        try throttle.succeeded(obs)
        return try startSession(user, kycStatus: kycStatus(user.id), familyId: nil)
    }

    func refresh(token: String) throws -> Session {
        let hash = TokenIssuer.hash(refreshToken: token)
        let t = now()
        guard let rec = try repo.refresh(hash: hash) else {
            throw RPCError(.unauthenticated, "Invalid refresh token", reason: "invalid_refresh_token")
        }
        if rec.usedAt != nil { try reuseDetected(rec, at: t) }
        if try rec.revokedAt != nil || repo.familyHasRevoked(rec.familyId) {
            try repo.revokeFamily(rec.familyId, at: t)
            throw RPCError(.unauthenticated, "Refresh token revoked; log in again", reason: "refresh_revoked")
        }
        if rec.expiresAt <= t {
            throw RPCError(.unauthenticated, "Refresh token expired; log in again", reason: "refresh_expired")
        }
        // Two presentations racing: the loser sees the token as used, which is reuse.
        guard try repo.markRefreshUsed(hash: hash, at: t) else { try reuseDetected(rec, at: t) }
        guard let user = try repo.user(id: rec.userId) else {
            try repo.revokeFamily(rec.familyId, at: t)
            throw RPCError.unauthenticated("The account no longer exists")
        }
        let s = try startSession(user, kycStatus: kycStatus(user.id), familyId: rec.familyId)
        // A reuse elsewhere may have revoked the family between our checks and our insert; then
        // the token just issued must die with it.
        if try repo.familyHasRevoked(rec.familyId) {
            try repo.revokeFamily(rec.familyId, at: now())
            throw RPCError(.unauthenticated, "Refresh token revoked; log in again", reason: "refresh_revoked")
        }
        return s
    }

    private func reuseDetected(_ rec: RefreshRecord, at t: Int64) throws -> Never {
        try repo.revokeFamily(rec.familyId, at: t)
        log.warn("refresh token reused; family revoked", ["userId": .string(rec.userId), "familyId": .string(rec.familyId)])
        throw RPCError(.unauthenticated, "Refresh token already used; every session of this login is revoked",
                       reason: "refresh_reused")
    }

    /// Revokes the family of `token`; someone else's or an unknown token is not found.
    func logout(token: String, actor: Actor) throws {
        guard let rec = try repo.refresh(hash: TokenIssuer.hash(refreshToken: token)), rec.userId == actor.userId else {
            throw RPCError.notFound("Refresh token not found")
        }
        try repo.revokeFamily(rec.familyId, at: now())
    }

    func me(actor: Actor) throws -> (UserRecord, KYCStatus) {
        guard let u = try repo.user(id: actor.userId) else { throw RPCError.unauthenticated("The account no longer exists") }
        return (u, try kycStatus(u.id))
    }

    /// Creates the admin, or makes an existing user admin with this password. Setting the
    /// password on promotion matters: whoever registered the address before cannot keep a way in.
    /// Idempotent, and safe when several instances run it at once (the unique email decides).
    func ensureAdmin(email rawEmail: String, password: String, name: String, deadline: Deadline) throws -> (user: UserRecord, created: Bool) {
        let v = try AccountValidation.validate(email: rawEmail, password: password, name: name, phone: nil)
        for _ in 0..<3 {
            if let u = try repo.user(email: v.email) {
                let samePassword = try gate.run(.register, until: deadline) { PasswordHasher.verify(password, hash: u.passwordHash) }
                if u.roleValue == .admin && samePassword { return (u, false) }
                let hash = samePassword ? u.passwordHash : try gate.run(.register, until: deadline) { try PasswordHasher.hash(password) }
                let t = now()
                guard let updated = try repo.setRoleAndPassword(userId: u.id, role: Role.admin.rawValue, passwordHash: hash, at: t) else { continue }
                // Sessions opened under the old role or password must log in again.
                try repo.revokeAllRefresh(userId: u.id, at: t)
                log.info("user made admin", ["userId": .string(u.id), "promoted": .bool(u.roleValue != .admin)])
                return (updated, false)
            }
            let hash = try gate.run(.register, until: deadline) { try PasswordHasher.hash(password) }
            let t = now()
            let u = UserRecord(id: ID.make("usr"), email: v.email, name: v.name, phone: nil, role: Role.admin.rawValue,
                               passwordHash: hash, createdAt: t, updatedAt: t)
            if try repo.insertUser(u) {
                log.info("admin created", ["userId": .string(u.id)])
                return (u, true)
            }
        }
        throw RPCError.conflict("concurrent_update", "The account changed concurrently; retry")
    }

    func kycStatus(_ userId: String) throws -> KYCStatus {
        try repo.kyc(userId: userId)?.statusValue ?? .notStarted
    }

    private func startSession(_ user: UserRecord, kycStatus: KYCStatus, familyId: String?) throws -> Session {
        let t = now()
        let raw = TokenIssuer.newRefreshToken()
        try repo.insertRefresh(RefreshRecord(id: TokenIssuer.hash(refreshToken: raw), userId: user.id, familyId: familyId ?? ID.make("rtf"),
                                             createdAt: t, expiresAt: t + Int64(tokens.refreshTTLSeconds) * 1000))
        return Session(user: user, kycStatus: kycStatus, accessToken: tokens.accessToken(userId: user.id, role: user.roleValue, nowMs: t),
                       refreshToken: raw, expiresIn: tokens.accessTTLSeconds)
    }
}
