import JSON
import RPC
import Domain
import Runtime
import Store

/// The face of WalletSvc: method declarations with their schemas, roles and errors. Handlers
/// decide whose wallet a call is about, then hand over to `WalletService`.
struct WalletHandlers: Sendable {
    let service: WalletService

    static let maxAmountPaise: Int64 = 1_000_000_000

    // MARK: schemas

    static let entrySchema = Schema.object([
        ("id", .string()),
        ("userId", .string()),
        ("type", .string(oneOf: [EntryType.credit.rawValue, EntryType.debit.rawValue])),
        ("reason", .string(oneOf: EntryReason.allCases.map(\.rawValue))),
        ("ref", .string()),
        ("amountPaise", .int(min: 1)),
        ("balanceAfterPaise", .int(min: 0)),
        ("createdAt", .string(format: "date-time")),
        ("actor", .object([("userId", .string()), ("role", .string(oneOf: Role.allCases.map(\.rawValue)))], required: ["userId", "role"])),
        ("orderId", .string()),
        ("note", .string()),
    ], required: ["id", "userId", "type", "reason", "ref", "amountPaise", "balanceAfterPaise", "createdAt", "actor"])

    static let postingSchema = Schema.object([
        ("created", .boolean), ("entry", entrySchema), ("balancePaise", .int(min: 0)),
    ], required: ["created", "entry", "balancePaise"])

    static let walletSchema = Schema.object([
        ("userId", .string()), ("balancePaise", .int(min: 0)), ("currency", .string(oneOf: ["INR"])), ("updatedAt", .string(format: "date-time")),
    ], required: ["userId", "balancePaise", "currency", "updatedAt"])

    static let amount = Schema.int(min: 1, max: maxAmountPaise)

    // MARK: methods

    var methods: [Method] {
        let s = service
        return [
            Method("wallet.get", summary: "The balance of a wallet (a merchant's own; admins may name one)",
                   roles: [.merchant, .admin], params: .object([("userId", .id)]), result: Self.walletSchema,
                   errors: [.notFound, .unavailable]) { p, ctx in
                let userId = try Self.owner(p, ctx)
                let w = try s.wallet(userId, deadline: ctx.deadline)
                return ["userId": .string(w.userId), "balancePaise": .int(w.balancePaise), "currency": "INR", "updatedAt": .string(w.updatedAt)]
            },
            Method("wallet.topup", summary: "Adds money to the caller's wallet, once per idempotency key",
                   roles: [.merchant],
                   params: .object([("amountPaise", Self.amount), ("idempotencyKey", .string(min: 1, max: 128))],
                                   required: ["amountPaise", "idempotencyKey"]),
                   result: Self.postingSchema, errors: [.conflict, .unavailable]) { p, ctx in
                let actor = try Self.actor(ctx)
                let r = try s.topup(userId: actor.userId, amountPaise: p.requiredInt("amountPaise"), idempotencyKey: p.requiredString("idempotencyKey"),
                                    actor: actor.json, deadline: ctx.deadline)
                return Self.json(r)
            },
            Method("wallet.charge", summary: "Takes an order's shipping charge, once per order; never below zero",
                   roles: [.system],
                   params: .object([("userId", .id), ("orderId", .id), ("amountPaise", Self.amount)], required: ["userId", "orderId", "amountPaise"]),
                   result: Self.postingSchema, errors: [.conflict, .businessRule, .unavailable]) { p, ctx in
                let actor = try Self.actor(ctx)
                let r = try s.charge(userId: p.requiredString("userId"), orderId: p.requiredString("orderId"), amountPaise: p.requiredInt("amountPaise"),
                                     actor: actor.json, deadline: ctx.deadline)
                return Self.json(r)
            },
            Method("wallet.refund", summary: "Gives back an order's charge, at most once and only if it was charged",
                   roles: [.system],
                   params: .object([("userId", .id), ("orderId", .id)], required: ["userId", "orderId"]),
                   result: Self.postingSchema, errors: [.businessRule, .unavailable]) { p, ctx in
                let actor = try Self.actor(ctx)
                let r = try s.refund(userId: p.requiredString("userId"), orderId: p.requiredString("orderId"), actor: actor.json, deadline: ctx.deadline)
                return Self.json(r)
            },
            Method("wallet.adjust", summary: "An admin correction, credit or debit, once per adjustmentId; never below zero",
                   roles: [.admin],
                   params: .object([("userId", .id), ("amountPaise", .int(min: -Self.maxAmountPaise, max: Self.maxAmountPaise)),
                                    ("reason", .string(min: 1, max: 500)), ("adjustmentId", .id)],
                                   required: ["userId", "amountPaise", "reason", "adjustmentId"]),
                   result: Self.entrySchema, errors: [.conflict, .businessRule, .unavailable]) { p, ctx in
                let actor = try Self.actor(ctx)
                let amount = try p.requiredInt("amountPaise")
                guard amount != 0 else { throw RPCError.invalidParams(path: "amountPaise", "must not be zero") }
                let r = try s.adjust(userId: p.requiredString("userId"), amountPaise: amount, note: p.requiredString("reason"),
                                     adjustmentId: p.requiredString("adjustmentId"), actor: actor.json, deadline: ctx.deadline)
                return r.entry.publicJSON
            },
            Method("wallet.orderEntries", summary: "The applied charge and refund of one order (its timeline)", roles: [.system],
                   params: .object([("orderId", .id)], required: ["orderId"]),
                   result: .object([("items", .array(Self.entrySchema))], required: ["items"]), errors: [.unavailable]) { p, _ in
                let orderId = try p.requiredString("orderId")
                return ["items": .array(try s.orderEntries(orderId: orderId).map(\.publicJSON))]
            },
            Method("wallet.transactions", summary: "Applied ledger entries, newest first, cursor-paginated",
                   roles: [.merchant, .admin],
                   params: .object([("userId", .id), ("cursor", Paging.cursor(idPrefix: "txn")),
                                    ("limit", Paging.limit)]),
                   result: .object([("items", .array(Self.entrySchema)), ("nextCursor", .nullable(.string()))], required: ["items", "nextCursor"]),
                   errors: [.notFound, .unavailable]) { p, ctx in
                let userId = try Self.owner(p, ctx)
                let limit = Int(p["limit"]?.intValue ?? Paging.defaultLimit)
                let page = try s.transactions(userId: userId, cursor: p["cursor"]?.stringValue, limit: limit)
                return ["items": .array(page.items.map(\.publicJSON)), "nextCursor": JSON(page.nextCursor)]
            },
            Method("wallet.reconcile", summary: "Proves balance = sum of applied entries for every wallet",
                   roles: [.admin, .system], params: .empty,
                   result: .object([("wallets", .int(min: 0)), ("ok", .boolean),
                                    ("mismatches", .array(.object([("userId", .string()), ("balancePaise", .int()), ("ledgerSumPaise", .int())])))],
                                   required: ["wallets", "ok", "mismatches"]),
                   errors: [.unavailable]) { _, ctx in
                let r = try s.reconcile(deadline: ctx.deadline)
                return ["wallets": .int(Int64(r.wallets)), "ok": .bool(r.mismatches.isEmpty),
                        "mismatches": .array(r.mismatches.map {
                            ["userId": .string($0.userId), "balancePaise": .int($0.balancePaise), "ledgerSumPaise": .int($0.ledgerSumPaise)]
                        })]
            },
        ]
    }

    // MARK: helpers

    static func actor(_ ctx: RPCContext) throws -> Actor { try ctx.requireActor() }

    /// Whose wallet a read is about: a merchant only ever sees their own (naming someone else
    /// answers like a wallet that does not exist); an admin may name any.
    static func owner(_ p: JSON, _ ctx: RPCContext) throws -> String {
        let a = try actor(ctx)
        let named = p["userId"]?.stringValue
        switch a.role {
        case .admin, .system:
            return named ?? a.userId
        case .merchant:
            if let named, named != a.userId { throw RPCError.notFound("Wallet not found") }
            return a.userId
        }
    }

    static func json(_ r: WalletService.Posting) -> JSON {
        ["created": .bool(r.created), "entry": r.entry.publicJSON, "balancePaise": .int(r.balancePaise)]
    }

}
