import Runtime

/// Token buckets keyed by client address or user id: `rate` tokens per second up to `burst`.
/// A refused request learns how many seconds until a token is back (`Retry-After`).
final class RateLimiter: Sendable {
    let rate: Double
    let burst: Double
    private let buckets = Locked<[String: (tokens: Double, at: UInt64)]>([:])

    /// Settings come from the environment: a rate below one per day (zero, negative, not a
    /// number) is taken as one per day and a burst below one as one, so that the wait computed
    /// for `Retry-After` is always a finite number of seconds.
    init(rate: Double, burst: Double) {
        self.rate = rate.isFinite ? max(rate, 1.0 / 86_400) : 1.0 / 86_400
        self.burst = burst.isFinite ? max(burst, 1) : 1
    }

    /// The longest `Retry-After` it gives (a rate of 0 from the configuration means "wait an hour").
    static let maxWaitSeconds = 3600

    /// nil when allowed, else seconds to wait (1 to `maxWaitSeconds`).
    func take(_ key: String) -> Int? {
        let now = Clock.monotonicNanos()
        return buckets.withLock { b -> Int? in
            if b.count > 100_000 { b.removeAll(keepingCapacity: true) }  // bound memory under address spraying
            var (tokens, at) = b[key] ?? (burst, now)
            tokens = min(burst, tokens + Double(Clock.elapsed(from: at, to: now)) / 1e9 * rate)
            if tokens >= 1 {
                b[key] = (tokens - 1, now)
                return nil
            }
            b[key] = (tokens, now)
            let wait = ((1 - tokens) / rate).rounded(.up)
            // Checked before converting: a zero or negative rate gives infinity or NaN, which
            // `Int(_:)` would trap on.
            guard wait.isFinite, wait < Double(RateLimiter.maxWaitSeconds) else { return RateLimiter.maxWaitSeconds }
            return max(1, Int(wait))
        }
    }
}
