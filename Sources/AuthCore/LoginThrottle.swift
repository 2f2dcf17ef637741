import Crypto
import Foundation
import JSON
import RPC
import Runtime

/// The rule for failed logins, pure: `maxFailures` failures within `windowMs` lock the key for
/// `baseLockMs`; while the key has been locked before (and not idle for `forgetAfterMs`), every
/// further failure locks it again for twice as long as the last time, up to `maxLockMs`.
struct ThrottlePolicy: Sendable {
    var maxFailures: Int
    var windowMs: Int64
    var baseLockMs: Int64
    var maxLockMs: Int64
    var forgetAfterMs: Int64

    /// Seconds until the key may try again, or nil when it may try now.
    func retryAfterSeconds(_ s: ThrottleState, nowMs: Int64) -> Int? {
        guard s.lockedUntilMs > nowMs else { return nil }
        return Int((s.lockedUntilMs - nowMs + 999) / 1000)
    }

    func afterFailure(_ old: ThrottleState, nowMs: Int64) -> ThrottleState {
        var s = old
        if nowMs - s.lastFailureMs > forgetAfterMs { s = ThrottleState() }
        if s.failures == 0 || nowMs - s.windowStartMs > windowMs {
            s.failures = 0
            s.windowStartMs = nowMs
        }
        s.failures += 1
        s.lastFailureMs = nowMs
        if s.failures >= maxFailures || s.lockouts > 0 {
            let lock = min(maxLockMs, baseLockMs << Int64(min(s.lockouts, 30)))
            s.lockedUntilMs = nowMs + lock
            s.lockouts += 1
            s.failures = 0
        }
        return s
    }

    func isForgotten(_ s: ThrottleState, nowMs: Int64) -> Bool {
        s.lockedUntilMs <= nowMs && nowMs - s.lastFailureMs > forgetAfterMs
    }
}

/// Throttles password guessing per account and per client address.
///
/// Account state lives in the store, so every AuthSvc instance sees the same counter and a
/// restart does not reset it; it is keyed by the SHA-256 of the normalised email and kept for
/// unknown emails too, so throttling behaves identically whether or not the account exists.
/// Address state lives in memory per instance: it is a coarser second line (the Gateway
/// rate-limits addresses too), one address spraying many accounts would otherwise cost a
/// store write per guess, and losing it on restart only loosens it briefly.
final class LoginThrottle: Sendable {
    let account: ThrottlePolicy
    let address: ThrottlePolicy
    private let repo: any AuthRepository
    private let log: Logger
    private let addresses = Locked<[String: ThrottleState]>([:])
    private let failuresSincePrune = Locked(0)
    private static let maxTrackedAddresses = 50_000

    init(account: ThrottlePolicy, address: ThrottlePolicy, repo: any AuthRepository, log: Logger) {
        self.account = account
        self.address = address
        self.repo = repo
        self.log = log
    }

    static func accountKey(email: String) -> String { "acct_" + Sodium.hex(Sodium.sha256(Array(email.utf8))) }

    /// What `check` learnt, handed back to `failed` / `succeeded` to save a read.
    struct Observation {
        var accountKey: String
        var accountState: (state: ThrottleState, version: Int64)?
        var address: String?
    }

    /// Refuses with -32029 (and `retryAfter`) while the account or the address is locked.
    func check(email: String, address addr: String?, nowMs: Int64) throws -> Observation {
        let key = Self.accountKey(email: email)
        let st = try repo.throttle(key: key)
        var wait = st.flatMap { account.retryAfterSeconds($0.state, nowMs: nowMs) } ?? 0
        if let addr, let a = addresses.withLock({ $0[addr] }) {
            wait = max(wait, address.retryAfterSeconds(a, nowMs: nowMs) ?? 0)
        }
        if wait > 0 { throw RPCError.rateLimited("Too many failed logins; try again later", retryAfterSeconds: wait) }
        return Observation(accountKey: key, accountState: st, address: addr)
    }

    func failed(_ o: Observation, nowMs: Int64) throws {
        if let addr = o.address {
            addresses.withLock { m in
                m[addr] = address.afterFailure(m[addr] ?? ThrottleState(), nowMs: nowMs)
                if m.count > Self.maxTrackedAddresses { m = m.filter { !address.isForgotten($0.value, nowMs: nowMs) } }
            }
        }
        var current = o.accountState
        // Compare-and-set on a version: concurrent failures from several instances each count.
        for _ in 0..<8 {
            let next = account.afterFailure(current?.state ?? ThrottleState(), nowMs: nowMs)
            if try repo.saveThrottle(key: o.accountKey, next, expectedVersion: current?.version) { break }
            current = try repo.throttle(key: o.accountKey)
        }
        let due = failuresSincePrune.withLock { n -> Bool in
            n += 1
            if n >= 1000 { n = 0; return true }
            return false
        }
        if due { pruneStored(nowMs: nowMs) }
    }

    func succeeded(_ o: Observation) throws {
        // The address keeps its count: one valid account must not launder guesses at others.
        if o.accountState != nil { try repo.deleteThrottle(key: o.accountKey) }
    }

    /// Drops stored states nobody needs any more (emails that were only guessed at once).
    func pruneStored(nowMs: Int64) {
        do {
            let n = try repo.pruneThrottles(idleSince: nowMs - max(account.forgetAfterMs, account.maxLockMs))
            if n > 0 { log.info("pruned login throttles", ["count": JSON(n)]) }
        } catch {
            log.warn("pruning login throttles failed", ["error": .string(String(describing: error))])
        }
    }
}
