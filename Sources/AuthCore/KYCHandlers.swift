import Foundation
import JSON
import RPC
import Domain
import Runtime

/// The KYC methods of AuthSvc (`kyc.*`): schemas, roles, parsing, and the masked views.
enum KYCHandlers {
    struct UserParams: Decodable, Sendable { var userId: String }
    struct RejectParams: Decodable, Sendable { var userId, reason: String }
    struct ListParams: Decodable, Sendable {
        var status: String?
        var cursor: String?
        var limit: Int?
    }

    static let addressSchema = Schema.object([
        ("line1", .string(min: 1, max: 200)), ("line2", .nullable(.string(max: 200))), ("city", .string(min: 1, max: 100)),
        ("state", .string(min: 1, max: 100)), ("pincode", .string(min: 1, max: 10, format: "pincode")),
    ], required: ["line1", "city", "state", "pincode"])

    // Formats are checked after normalisation (upper-casing, removing spaces) in KYCValidation,
    // so the schema carries only types, bounds and format names.
    static let submitParams = Schema.object([
        ("businessType", .string(oneOf: KYCValidation.businessTypes)), ("legalName", .string(min: 1, max: 200)),
        ("pan", .string(min: 1, max: 20, format: "pan")), ("gstin", .nullable(.string(max: 30, format: "gstin"))),
        ("address", addressSchema),
        ("bank", .object([("accountNumber", .string(min: 1, max: 30, format: "bank-account-number")),
                          ("ifsc", .string(min: 1, max: 20, format: "ifsc")), ("holderName", .string(min: 1, max: 100))],
                         required: ["accountNumber", "ifsc", "holderName"])),
    ], required: ["businessType", "legalName", "pan", "address", "bank"])

    static let historySchema = Schema.object([
        ("status", .string(oneOf: KYCStatus.all)), ("by", .string()), ("at", .string(format: "date-time")),
        ("reason", .string()),
    ], required: ["status", "by", "at"])

    static let viewSchema = Schema.object([
        ("userId", .id), ("email", .string(format: "email")), ("status", .string(oneOf: KYCStatus.all)),
        ("businessType", .string()), ("legalName", .string()),
        ("panMasked", .string()), ("gstinMasked", .nullable(.string())), ("address", addressSchema),
        ("bank", .object([("accountNumberMasked", .string()), ("ifsc", .string()), ("holderName", .string())],
                         required: ["accountNumberMasked", "ifsc", "holderName"])),
        ("rejectionReason", .nullable(.string())), ("history", .array(historySchema)),
        ("submittedAt", .string(format: "date-time")), ("updatedAt", .string(format: "date-time")),
    ], required: ["userId", "status", "history"])

    static let userIdParams = Schema.object([("userId", .id)], required: ["userId"])

    /// What a merchant or admin sees: sensitive numbers only as masks, never the sealed values.
    static func view(_ k: KYCRecord?, userId: String) -> JSON {
        guard let k else { return ["userId": .string(userId), "status": .string(KYCStatus.notStarted.rawValue), "history": []] }
        var address: JSON = ["line1": .string(k.address.line1), "city": .string(k.address.city), "state": .string(k.address.state),
                             "pincode": .string(k.address.pincode)]
        if let l2 = k.address.line2 { address["line2"] = .string(l2) }
        let history: [JSON] = k.history.map { h in
            var o: JSON = ["status": .string(h.status), "by": .string(h.by), "at": .string(Clock.iso8601(millis: h.at))]
            if let r = h.reason { o["reason"] = .string(r) }
            return o
        }
        return [
            "userId": .string(k.userId), "email": .string(k.email), "status": .string(k.status),
            "businessType": .string(k.businessType), "legalName": .string(k.legalName), "panMasked": .string(k.panMasked),
            "gstinMasked": JSON(k.gstinMasked), "address": address,
            "bank": ["accountNumberMasked": .string(k.bank.accountNumberMasked), "ifsc": .string(k.bank.ifsc),
                     "holderName": .string(k.bank.holderName)],
            "rejectionReason": JSON(k.rejectionReason), "history": .array(history),
            "submittedAt": .string(Clock.iso8601(millis: k.submittedAt)), "updatedAt": .string(Clock.iso8601(millis: k.updatedAt)),
        ]
    }

    static func methods(_ kyc: KYCService) -> [Method] {
        let business = ErrorCode.businessRule
        return [
            .typed("kyc.submit", summary: "Submit (or, after a rejection, resubmit) the caller's KYC", roles: [.merchant],
                   params: submitParams, result: viewSchema,
                   errors: [.invalidParams, business, .conflict]) { (p: KYCSubmission, ctx) in
                let actor = try ctx.requireActor()
                return view(try kyc.submit(userId: actor.userId, try p.validated()), userId: actor.userId)
            },
            .typed("kyc.get", summary: "The caller's KYC with sensitive numbers masked", roles: [.merchant], params: .empty,
                   result: viewSchema) { (_: Empty, ctx) in
                let actor = try ctx.requireActor()
                return view(try kyc.get(userId: actor.userId), userId: actor.userId)
            },
            .typed("kyc.list", summary: "KYC files for review, newest submission first", roles: [.admin],
                   params: .object([("status", .string(oneOf: [KYCStatus.submitted, .approved, .rejected].map(\.rawValue))),
                                    ("cursor", .string(min: 1, max: 200)), ("limit", Paging.limit)]),
                   result: .object([("items", .array(viewSchema)), ("nextCursor", .nullable(.string()))], required: ["items", "nextCursor"]),
                   errors: [.invalidParams]) { (p: ListParams, _) in
                let page = try kyc.list(status: p.status.flatMap(KYCStatus.init(rawValue:)), cursor: p.cursor, limit: p.limit ?? 20)
                return JSON.object(["items": .array(page.items.map { view($0, userId: $0.userId) }), "nextCursor": JSON(page.nextCursor)])
            },
            .typed("kyc.approve", summary: "Approve a submitted KYC", roles: [.admin], params: userIdParams, result: viewSchema,
                   errors: [.invalidParams, .notFound, business]) { (p: UserParams, ctx) in
                view(try kyc.approve(userId: p.userId, by: try ctx.requireActor()), userId: p.userId)
            },
            .typed("kyc.reject", summary: "Reject a submitted KYC with a reason the merchant will see", roles: [.admin],
                   params: .object([("userId", .id), ("reason", .string(min: 1, max: 500))], required: ["userId", "reason"]),
                   result: viewSchema, errors: [.invalidParams, .notFound, business]) { (p: RejectParams, ctx) in
                let reason = p.reason.trimmingCharacters(in: .whitespacesAndNewlines)
                guard !reason.isEmpty else { throw RPCError.invalidParams(path: "reason", "must not be empty") }
                return view(try kyc.reject(userId: p.userId, reason: reason, by: try ctx.requireActor()), userId: p.userId)
            },
            .typed("kyc.status", summary: "A user's KYC status (OrderSvc asks before accepting an order)", roles: [.system, .admin],
                   params: userIdParams,
                   result: .object([("userId", .id), ("status", .string(oneOf: KYCStatus.all))], required: ["userId", "status"]),
                   errors: [.invalidParams, .notFound]) { (p: UserParams, _) in
                JSON.object(["userId": .string(p.userId), "status": .string(try kyc.status(userId: p.userId).rawValue)])
            },
        ]
    }
}
