import Crypto
import Foundation
import JSON
import RPC
import Runtime

/// The KYC decisions: when a merchant may submit, who may approve or reject and from which
/// status, and how sensitive numbers are sealed at rest and shown masked.
final class KYCService: Sendable {
    private let repo: any AuthRepository
    private let box: SecretBox
    private let clock: any WallClock
    private let log: Logger

    init(repo: any AuthRepository, box: SecretBox, log: Logger, clock: any WallClock = SystemClock()) {
        self.repo = repo
        self.box = box
        self.log = log
        self.clock = clock
    }

    private func now() -> Int64 { clock.nowMillis() }

    /// First submission, or a resubmission after a rejection.
    func submit(userId: String, _ v: ValidKYC) throws -> KYCRecord {
        guard let user = try repo.user(id: userId) else { throw RPCError.unauthenticated("The account no longer exists") }
        let t = now()
        let entry = KYCHistoryEntry(status: KYCStatus.submitted.rawValue, by: userId, at: t, reason: nil)
        let rec = KYCRecord(
            id: userId, userId: userId, email: user.email, status: KYCStatus.submitted.rawValue, businessType: v.businessType,
            legalName: v.legalName, panSealed: box.seal(v.pan), panMasked: KYCValidation.maskPAN(v.pan),
            gstinSealed: v.gstin.map(box.seal), gstinMasked: v.gstin.map(KYCValidation.maskGSTIN),
            address: .init(line1: v.address.line1, line2: v.address.line2, city: v.address.city, state: v.address.state,
                           pincode: v.address.pincode),
            bank: .init(accountNumberSealed: box.seal(v.bank.accountNumber),
                        accountNumberMasked: KYCValidation.maskAccountNumber(v.bank.accountNumber), ifsc: v.bank.ifsc,
                        holderName: v.bank.holderName),
            rejectionReason: nil, history: [entry], submittedAt: t, updatedAt: t)
        if try repo.insertKYC(rec) {
            log.info("kyc submitted", ["userId": .string(userId)])
            return rec
        }
        if let updated = try repo.resubmitKYC(rec, from: .rejected, entry: entry) {
            log.info("kyc resubmitted", ["userId": .string(userId)])
            return updated
        }
        switch try repo.kyc(userId: userId)?.statusValue {
        case .approved?: throw RPCError.business("kyc_already_approved", "KYC is already approved")
        case .submitted?: throw RPCError.business("kyc_already_submitted", "KYC is already submitted and awaits review")
        // Changed under us (an admin rejected it this instant): the caller may simply retry.
        case .rejected?, .notStarted?, nil: throw RPCError.conflict("concurrent_update", "KYC changed concurrently; retry")
        }
    }

    func get(userId: String) throws -> KYCRecord? { try repo.kyc(userId: userId) }

    func status(userId: String) throws -> KYCStatus {
        if let k = try repo.kyc(userId: userId) { return k.statusValue }
        guard try repo.user(id: userId) != nil else { throw RPCError.notFound("User not found") }
        return .notStarted
    }

    func approve(userId: String, by admin: Actor) throws -> KYCRecord {
        try decide(userId: userId, to: .approved, reason: nil, by: admin)
    }

    func reject(userId: String, reason: String, by admin: Actor) throws -> KYCRecord {
        try decide(userId: userId, to: .rejected, reason: reason, by: admin)
    }

    /// Compare-and-set from `submitted`: of two admins acting at once, exactly one wins.
    private func decide(userId: String, to: KYCStatus, reason: String?, by admin: Actor) throws -> KYCRecord {
        let entry = KYCHistoryEntry(status: to.rawValue, by: admin.userId, at: now(), reason: reason)
        if let r = try repo.transitionKYC(userId: userId, from: .submitted, to: to, reason: reason, entry: entry) {
            log.info("kyc decided", ["userId": .string(userId), "status": .string(to.rawValue), "by": .string(admin.userId)])
            return r
        }
        if try repo.kyc(userId: userId) == nil, try repo.user(id: userId) == nil { throw RPCError.notFound("User not found") }
        throw RPCError.business("kyc_not_submitted", "KYC is not awaiting review")
    }

    /// A page of KYC files, newest submission first; the cursor is opaque to callers.
    func list(status: KYCStatus?, cursor: String?, limit: Int) throws -> (items: [KYCRecord], nextCursor: String?) {
        var after: (Int64, String)?
        if let c = cursor {
            guard let b = Base64URL.decode(c), let s = String(bytes: b, encoding: .utf8), let sep = s.firstIndex(of: ":"),
                  let ms = Int64(s[..<sep]), !s[s.index(after: sep)...].isEmpty
            else { throw RPCError.invalidParams(path: "cursor", "is not a cursor returned by kyc.list") }
            after = (ms, String(s[s.index(after: sep)...]))
        }
        var rows = try repo.listKYC(status: status, after: after, limit: limit + 1)
        var next: String?
        if rows.count > limit {
            rows.removeLast(rows.count - limit)
            let last = rows[rows.count - 1]
            next = Base64URL.encode(Array("\(last.submittedAt):\(last.id)".utf8))
        }
        return (rows, next)
    }
}
