import JSON
import RPC
import Runtime

/// The account methods of AuthSvc (`auth.*`, `users.ensureAdmin`): schemas, roles, parsing.
enum AuthHandlers {
    struct RegisterParams: Decodable, Sendable { var email, password, name, phone: String }
    struct LoginParams: Decodable, Sendable {
        var email, password: String
        var clientAddress: String?
    }
    struct RefreshParams: Decodable, Sendable { var refreshToken: String }
    struct EnsureAdminParams: Decodable, Sendable { var email, password, name: String }

    static let userSchema = Schema.object([
        ("id", .id), ("email", .string(format: "email")), ("name", .string()), ("phone", .nullable(.string())),
        ("role", .string(oneOf: ["merchant", "admin"])), ("kycStatus", .string(oneOf: KYCStatus.all)),
        ("createdAt", .string(format: "date-time")),
    ], required: ["id", "email", "name", "role", "kycStatus", "createdAt"])

    static let sessionSchema = Schema.object([
        ("user", userSchema), ("accessToken", .string()), ("refreshToken", .string()), ("expiresIn", .int(min: 1)),
    ], required: ["user", "accessToken", "refreshToken", "expiresIn"])

    // Lengths here are only sanity bounds; the real rules (and their messages) are in AccountValidation.
    static let emailParam = Schema.string(min: 1, max: 320, format: "email")
    static let tokenParam = Schema.string(min: 1, max: 512)

    static func userView(_ u: UserRecord, kycStatus: KYCStatus) -> JSON {
        ["id": .string(u.id), "email": .string(u.email), "name": .string(u.name), "phone": JSON(u.phone),
         "role": .string(u.role), "kycStatus": .string(kycStatus.rawValue), "createdAt": .string(Clock.iso8601(millis: u.createdAt))]
    }

    static func sessionView(_ s: Session) -> JSON {
        ["user": userView(s.user, kycStatus: s.kycStatus), "accessToken": .string(s.accessToken),
         "refreshToken": .string(s.refreshToken), "expiresIn": JSON(s.expiresIn)]
    }

    static func methods(_ accounts: AccountService) -> [Method] {
        let unauth = ErrorCode.unauthenticated
        return [
            .typed("auth.register", summary: "Create a merchant account and sign in", roles: [],
                   params: .object([("email", emailParam), ("password", .string(min: 10, max: 128)), ("name", .string(min: 1, max: 100)),
                                    ("phone", .string(min: 1, max: 20))], required: ["email", "password", "name", "phone"]),
                   result: sessionSchema, errors: [.invalidParams, .conflict, .unavailable], ownThread: true) { (p: RegisterParams, ctx) in
                sessionView(try accounts.register(email: p.email, password: p.password, name: p.name, phone: p.phone, deadline: ctx.deadline))
            },
            .typed("auth.login", summary: "Sign in with email and password; repeated failures are throttled", roles: [],
                   params: .object([("email", emailParam), ("password", .string(min: 1, max: 1024)),
                                    ("clientAddress", .string(min: 1, max: 64))], required: ["email", "password"]),
                   result: sessionSchema, errors: [.invalidParams, unauth, .rateLimited, .unavailable], ownThread: true) { (p: LoginParams, ctx) in
                sessionView(try accounts.login(email: p.email, password: p.password, clientAddress: p.clientAddress, deadline: ctx.deadline))
            },
            .typed("auth.refresh", summary: "Exchange a refresh token for a new pair; a reused token revokes its family", roles: [],
                   params: .object([("refreshToken", tokenParam)], required: ["refreshToken"]),
                   result: sessionSchema, errors: [.invalidParams, unauth]) { (p: RefreshParams, _) in
                sessionView(try accounts.refresh(token: p.refreshToken))
            },
            .typed("auth.logout", summary: "Revoke the caller's refresh token and every token rotated from the same login",
                   roles: [.merchant, .admin], params: .object([("refreshToken", tokenParam)], required: ["refreshToken"]),
                   result: .empty, errors: [.invalidParams, unauth, .notFound]) { (p: RefreshParams, ctx) in
                try accounts.logout(token: p.refreshToken, actor: try ctx.requireActor())
                return JSON.object([:])
            },
            .typed("auth.me", summary: "The caller's profile and KYC status", roles: [.merchant, .admin], params: .empty,
                   result: .object([("user", userSchema)], required: ["user"]), errors: [unauth]) { (_: Empty, ctx) in
                let (u, k) = try accounts.me(actor: try ctx.requireActor())
                return JSON.object(["user": userView(u, kycStatus: k)])
            },
            .typed("users.ensureAdmin", summary: "Create the admin, or make an existing user admin with this password",
                   roles: [.system],
                   params: .object([("email", emailParam), ("password", .string(min: 10, max: 128)), ("name", .string(min: 1, max: 100))],
                                   required: ["email", "password", "name"]),
                   result: .object([("user", userSchema), ("created", .boolean)], required: ["user", "created"]),
                   errors: [.invalidParams, .conflict], ownThread: true) { (p: EnsureAdminParams, ctx) in
                let r = try accounts.ensureAdmin(email: p.email, password: p.password, name: p.name, deadline: ctx.deadline)
                return JSON.object(["user": userView(r.user, kycStatus: try accounts.kycStatus(r.user.id)), "created": .bool(r.created)])
            },
        ]
    }
}
