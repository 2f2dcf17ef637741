import Crypto
import Domain
import Foundation
import JSON
import RPC
import Runtime
import Store

// AuthSvc: users, credentials, refresh tokens and KYC. Configuration (besides the common OOPS_*):
// OOPS_TOKEN_SECRET / <data dir>/token-signing.key, OOPS_TOKEN_KID, OOPS_ACCESS_TTL_S,
// OOPS_REFRESH_TTL_S, OOPS_KYC_KEY / <data dir>/kyc.key, OOPS_ADMIN_EMAIL, OOPS_ADMIN_PASSWORD,
// OOPS_ADMIN_NAME, OOPS_LOGIN_MAX_FAILURES, OOPS_LOGIN_ADDR_MAX_FAILURES, OOPS_LOGIN_WINDOW_S,
// OOPS_LOGIN_LOCK_S, OOPS_LOGIN_MAX_LOCK_S, OOPS_HASH_CONCURRENCY, OOPS_HASH_QUEUE_REGISTER, OOPS_HASH_QUEUE_LOGIN.
public enum AuthProcess {
    /// Opens what the service needs and returns its RPC methods; `ServiceHost.main` runs it.
    @Sendable public static func build(_ env: ServiceEnvironment) throws -> ServiceParts {
        let cfg = env.config
        let log = env.log
        let store = try StoreFactory.open(service: ServiceName.auth, dataDir: cfg.dataDir, mongoURI: cfg.mongoURI, log: log)
        env.onStop("store") { store.close() }
        let repo = try DocumentAuthRepository(store: store, log: log)

        // The Gateway reads the same key (same call, same file) to verify access tokens locally.
        let tokenKeys = try cfg.tokenKeys()
        let tokens = TokenIssuer(signer: JWTSigner(kid: tokenKeys.kid, keys: tokenKeys.keys),
                                 accessTTLSeconds: max(1, cfg.int("OOPS_ACCESS_TTL_S", default: 900)),
                                 refreshTTLSeconds: max(1, cfg.int("OOPS_REFRESH_TTL_S", default: 30 * 86_400)))
        let box = try SecretBox(key: cfg.secret(envKey: "OOPS_KYC_KEY", file: "kyc.key", bytes: 32))

        let window = Int64(cfg.int("OOPS_LOGIN_WINDOW_S", default: 900)) * 1000
        let lock = Int64(cfg.int("OOPS_LOGIN_LOCK_S", default: 60)) * 1000
        let maxLock = Int64(cfg.int("OOPS_LOGIN_MAX_LOCK_S", default: 3600)) * 1000
        func policy(_ failures: Int) -> ThrottlePolicy {
            ThrottlePolicy(maxFailures: max(1, failures), windowMs: window, baseLockMs: lock, maxLockMs: max(lock, maxLock),
                           forgetAfterMs: max(window, maxLock))
        }
        let throttle = LoginThrottle(account: policy(cfg.int("OOPS_LOGIN_MAX_FAILURES", default: 5)),
                                     address: policy(cfg.int("OOPS_LOGIN_ADDR_MAX_FAILURES", default: 20)), repo: repo, log: log)
        throttle.pruneStored(nowMs: Clock.wallMillis())
        let gate = HashGate(width: min(max(cfg.int("OOPS_HASH_CONCURRENCY", default: max(2, ProcessInfo.processInfo.activeProcessorCount)), 1), 256),
                            registerLine: min(max(cfg.int("OOPS_HASH_QUEUE_REGISTER", default: 8), 0), 10_000),
                            loginLine: min(max(cfg.int("OOPS_HASH_QUEUE_LOGIN", default: 32), 0), 10_000))
        // Computed now so the first login with an unknown email is not slower than the rest.
        _ = PasswordHasher.decoy

        let accounts = AccountService(repo: repo, tokens: tokens, throttle: throttle, gate: gate, log: log)
        let kyc = KYCService(repo: repo, box: box, log: log)

        if let email = cfg.env["OOPS_ADMIN_EMAIL"], !email.isEmpty, let password = cfg.env["OOPS_ADMIN_PASSWORD"], !password.isEmpty {
            let r = try accounts.ensureAdmin(email: email, password: password, name: cfg.string("OOPS_ADMIN_NAME", default: "Administrator"),
                                             deadline: .after(ms: 60_000))
            log.info("admin ensured", ["userId": .string(r.user.id), "created": .bool(r.created)])
        }

        return ServiceParts(methods: AuthHandlers.methods(accounts) + KYCHandlers.methods(kyc), healthChecks: {
            ["store": store.healthCheck]
        })
    }
}
