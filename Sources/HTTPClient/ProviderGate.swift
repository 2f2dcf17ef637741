import Foundation

/// The provider's limits and how the gate backs off, each range-checked by `ProviderGate.init`.
public struct ProviderLimits: Sendable {
    /// Calls sent per second at most; 0 means no limit (1 call may always go).
    public var callsPerSecond: Double = 0
    /// Calls at the provider at once at most.
    public var maxConcurrent: Int = 1000
    /// A run of this many failures in a row (no answer, or 5xx) opens the breaker.
    public var breakerFailures: Int = 20
    /// How long an open breaker holds every call before one probe may go.
    public var breakerOpenMs: Int = 5_000
    /// The longest `Retry-After` honoured; longer ones are cut to it.
    public var maxRetryAfterMs: Int = 60_000
    /// How often one call is sent again after a 429 (or a 503 with `Retry-After`) before that
    /// answer is handed back.
    public var maxResends: Int = 5
    /// The longest a call is held back; then it fails unsent (`HTTPCallFailure.notSent`), so a
    /// provider that stays down costs attempts slowly rather than holding jobs forever.
    public var maxHoldMs: Int = 60_000

    public init() {}
}

/// What the gate is doing, for metrics and the dashboard.
public struct ProviderGateState: Sendable {
    public enum Breaker: String, Sendable { case closed, open, halfOpen = "half_open" }
    public var breaker: Breaker
    /// Calls at the provider now.
    public var inFlight: Int
    /// Calls held back (limits, a pause after 429, an open breaker).
    public var waiting: Int
    /// Calls allowed at once now: `maxConcurrent`, halved on each 429 and grown back by successes.
    public var window: Int
    /// Milliseconds until sending resumes after a `Retry-After`, 0 when not paused.
    public var pausedForMs: Int
    public var resentTotal: Int
    public var breakerOpenedTotal: Int
    /// Latency of the latest answered calls (seconds): 0.5, 0.9 and 0.99 quantiles.
    public var latencyQuantiles: [(Double, Double)]
    /// Calls answered since the gate started (the quantiles cover the latest 1024 of them).
    public var answeredTotal: Int = 0
}

/// Stands between callers and an `HTTPTransport` and keeps what is sent within what the provider
/// can take:
/// - `callsPerSecond` and `maxConcurrent`; calls beyond them wait (their timeouts start when sent);
/// - a 429, or a 503 with `Retry-After`, pauses all sending for that long, halves the window of
///   calls at once (grown back by one per window of successes), and the call is sent again by
///   the gate, so its caller never sees that answer (up to `maxResends`) and spends no attempt;
/// - `breakerFailures` failures in a row (no answer, or a 5xx) open the breaker: every call
///   waits for `breakerOpenMs`, then one probe goes; its success closes the breaker, its
///   failure opens it again. Waiting calls are held, not failed;
/// - `urgent` calls (cancellations) wait in a line of their own that is always served first.
public final class ProviderGate: HTTPTransport, @unchecked Sendable {
    public let limits: ProviderLimits
    private let transport: any HTTPTransport
    private let cond = NSCondition()
    private var urgent: [Waiting] = []
    private var normal: [Waiting] = []
    private var running = 0
    private var window: Double
    private var tokens: Double
    private var tokensAt: UInt64
    private var pausedUntil: UInt64 = 0
    private var breaker = ProviderGateState.Breaker.closed
    private var failuresInARow = 0
    private var openUntil: UInt64 = 0
    private var probing = false
    private var resent = 0
    private var opened = 0
    private var latencies = [Double](repeating: 0, count: 1024)
    private var latencyCount = 0
    private var stopped = false

    private struct Waiting {
        let call: HTTPCall
        let completion: @Sendable (HTTPAnswer) -> Void
        var resends: Int
        var probe = false
        var since = DispatchTime.now().uptimeNanoseconds
    }

    public init(_ transport: any HTTPTransport, limits: ProviderLimits, name: String = "provider-gate") throws {
        guard (0...1_000_000).contains(limits.callsPerSecond), (1...100_000).contains(limits.maxConcurrent),
              (1...1_000_000).contains(limits.breakerFailures), (1...3_600_000).contains(limits.breakerOpenMs),
              (0...3_600_000).contains(limits.maxRetryAfterMs), (0...100).contains(limits.maxResends),
              (1...86_400_000).contains(limits.maxHoldMs) else {
            throw CurlClientError(description: "provider limits out of range: calls/s 0..1000000, concurrent 1..100000, breaker failures 1..1000000, "
                                  + "breaker open 1..3600000 ms, Retry-After cap 0..3600000 ms, resends 0..100, hold 1..86400000 ms")
        }
        self.transport = transport
        self.limits = limits
        window = Double(limits.maxConcurrent)
        tokens = max(1, limits.callsPerSecond)
        tokensAt = DispatchTime.now().uptimeNanoseconds
        let t = Thread { [self] in timerLoop() }
        t.name = name
        t.start()
    }

    public func start(_ call: HTTPCall, completion: @escaping @Sendable (HTTPAnswer) -> Void) {
        cond.lock()
        if call.urgent { urgent.append(Waiting(call: call, completion: completion, resends: 0)) } else { normal.append(Waiting(call: call, completion: completion, resends: 0)) }
        let go = takeSendable()
        cond.signal()
        cond.unlock()
        send(go)
    }

    /// Stops the timer thread; held calls stay held.
    public func stop() {
        cond.lock()
        stopped = true
        cond.signal()
        cond.unlock()
    }

    public var state: ProviderGateState {
        cond.lock()
        defer { cond.unlock() }
        let now = DispatchTime.now().uptimeNanoseconds
        let n = min(latencyCount, latencies.count)
        let sorted = latencies.prefix(n).sorted()
        let q = [0.5, 0.9, 0.99].map { p in (p, n == 0 ? 0 : sorted[min(n - 1, Int(Double(n) * p))]) }
        return ProviderGateState(breaker: breaker, inFlight: running, waiting: urgent.count + normal.count, window: Int(window),
                                 pausedForMs: pausedUntil > now ? Int((pausedUntil - now) / 1_000_000) : 0,
                                 resentTotal: resent, breakerOpenedTotal: opened, latencyQuantiles: q, answeredTotal: latencyCount)
    }

    // MARK: - under the lock

    /// Takes every waiting call the limits allow now, urgent ones first.
    private func takeSendable() -> [Waiting] {
        var out: [Waiting] = []
        let now = DispatchTime.now().uptimeNanoseconds
        if now < pausedUntil { return out }
        if limits.callsPerSecond > 0 {
            tokens = min(max(1, limits.callsPerSecond), tokens + Double(now - tokensAt) / 1e9 * limits.callsPerSecond)
            tokensAt = now
        }
        while !urgent.isEmpty || !normal.isEmpty {
            switch breaker {
            case .closed: break
            case .open:
                guard now >= openUntil else { return out }
                breaker = .halfOpen
                probing = false
                fallthrough
            case .halfOpen:
                if probing { return out }
            }
            guard Double(running) < max(1, window.rounded(.down)) else { return out }
            if limits.callsPerSecond > 0 {
                guard tokens >= 1 else { return out }
                tokens -= 1
            }
            var w = urgent.isEmpty ? normal.removeFirst() : urgent.removeFirst()
            if breaker == .halfOpen {
                probing = true
                w.probe = true
            }
            running += 1
            out.append(w)
        }
        return out
    }

    /// When the timer must look again (a pause, an open breaker or the rate), if anything waits.
    private func nextWake(_ now: UInt64) -> UInt64? {
        guard !urgent.isEmpty || !normal.isEmpty else { return nil }
        var at = now + 1_000_000_000
        if pausedUntil > now { at = min(at, pausedUntil) }
        if breaker == .open { at = min(at, max(openUntil, now)) }
        if limits.callsPerSecond > 0, tokens < 1 { at = min(at, now + UInt64((1 - tokens) / limits.callsPerSecond * 1e9) + 1) }
        return at
    }

    private func answered(_ w: Waiting, _ a: HTTPAnswer) -> (resend: Bool, go: [Waiting]) {
        running -= 1
        let now = DispatchTime.now().uptimeNanoseconds
        var resend = false
        if a.status == 429 || (a.status == 503 && a.retryAfter != nil) {
            let waitMs = min(Self.retryAfterMs(a.retryAfter) ?? 1_000, limits.maxRetryAfterMs)
            pausedUntil = max(pausedUntil, now + UInt64(waitMs) * 1_000_000)
            window = max(1, window / 2)
            if w.probe { probing = false; breaker = .closed; failuresInARow = 0 }
            if w.resends < limits.maxResends {
                resend = true
                resent += 1
                var again = w
                again.resends += 1
                again.probe = false
                again.since = now
                if w.call.urgent { urgent.insert(again, at: 0) } else { normal.insert(again, at: 0) }
            }
        } else if a.status == nil || a.status! >= 500 {
            failuresInARow += 1
            if w.probe || (breaker == .closed && failuresInARow >= limits.breakerFailures) {
                breaker = .open
                probing = false
                opened += 1
                openUntil = now + UInt64(limits.breakerOpenMs) * 1_000_000
            }
        } else {
            failuresInARow = 0
            if w.probe { probing = false; breaker = .closed }
            window = min(Double(limits.maxConcurrent), window + 1 / max(window, 1))
        }
        if a.status != nil {
            latencies[latencyCount % latencies.count] = Double(a.durationNanos) / 1e9
            latencyCount += 1
        }
        let go = takeSendable()
        cond.signal()
        return (resend, go)
    }

    // MARK: - outside the lock

    private func send(_ ws: [Waiting]) {
        for w in ws {
            transport.start(w.call) { [self] a in
                cond.lock()
                let (resend, go) = answered(w, a)
                cond.unlock()
                if !resend { w.completion(a) }
                send(go)
            }
        }
    }

    /// Takes the calls held longer than `maxHoldMs` out of the lines.
    private func takeExpired(_ now: UInt64) -> [Waiting] {
        let limit = UInt64(limits.maxHoldMs) * 1_000_000
        var out: [Waiting] = []
        for i in [0, 1] {
            var line = i == 0 ? urgent : normal
            guard line.contains(where: { now - min(now, $0.since) >= limit }) else { continue }
            out += line.filter { now - min(now, $0.since) >= limit }
            line.removeAll { now - min(now, $0.since) >= limit }
            if i == 0 { urgent = line } else { normal = line }
        }
        return out
    }

    private func timerLoop() {
        cond.lock()
        while !stopped {
            let now = DispatchTime.now().uptimeNanoseconds
            let expired = takeExpired(now)
            if !expired.isEmpty {
                cond.unlock()
                for w in expired {
                    w.completion(HTTPAnswer(status: nil, body: [], retryAfter: nil, failure: .notSent("held back \(limits.maxHoldMs) ms by the provider limits or an open breaker"),
                                            durationNanos: now - min(now, w.since)))
                }
                cond.lock()
                continue
            }
            let go = takeSendable()
            if !go.isEmpty {
                cond.unlock()
                send(go)
                cond.lock()
                continue
            }
            if let at = nextWake(now) {
                _ = cond.wait(until: Date(timeIntervalSinceNow: Double(at - min(at, now)) / 1e9))
            } else {
                cond.wait()
            }
        }
        cond.unlock()
    }

    /// `Retry-After` in milliseconds: delta-seconds (0–86400) or an HTTP date; nil when unreadable.
    static func retryAfterMs(_ v: String?) -> Int? {
        guard let v = v?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
        if let s = Int(v) { return (0...86_400).contains(s) ? s * 1000 : nil }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let d = f.date(from: v) else { return nil }
        let ms = d.timeIntervalSinceNow * 1000
        return ms <= 0 ? 0 : Int(min(ms, 86_400_000))
    }
}
