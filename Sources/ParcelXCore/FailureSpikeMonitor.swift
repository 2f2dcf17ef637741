import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import JSON
import Runtime

/// The failed-job spike alert: when failed job attempts in a sliding window reach a threshold,
/// it fires — one error-level log line, an alert state in `rpc.health` (so on `/readyz` and the
/// dashboard), the `oops_alert_firing` gauge, and an optional webhook — and it clears by itself
/// once the window holds fewer failures again.
final class FailureSpikeMonitor: Sendable {
    let windowMs: Int64
    let threshold: Int
    let webhook: URL?
    let log: Logger
    private let clock: any WallClock
    private let st = Locked<(times: [Int64], firing: Bool, since: Int64?)>(([], false, nil))

    init(windowMs: Int64, threshold: Int, webhook: URL?, log: Logger, clock: any WallClock = SystemClock()) {
        self.windowMs = windowMs
        self.threshold = max(1, threshold)
        self.webhook = webhook
        self.log = log
        self.clock = clock
    }

    func recordFailure(queue: String) {
        let now = clock.nowMillis()
        st.withLock { s in
            s.times.append(now)
            if s.times.count > threshold * 4 + 1000 { s.times.removeFirst(s.times.count - threshold * 4 - 1000) }
        }
        evaluate()
    }

    /// Re-evaluates the window (called on every failure and once a second).
    func evaluate() {
        let now = clock.nowMillis()
        let (change, count) = st.withLock { s -> (Bool?, Int) in
            s.times.removeAll { $0 < now - windowMs }
            let n = s.times.count
            if !s.firing && n >= threshold {
                s.firing = true
                s.since = now
                return (true, n)
            }
            if s.firing && n < threshold {
                s.firing = false
                s.since = nil
                return (false, n)
            }
            return (nil, n)
        }
        guard let fired = change else { return }
        let meta: [String: JSON] = ["alert": "failed_job_spike", "failures": .int(Int64(count)), "windowSeconds": .int(windowMs / 1000), "threshold": .int(Int64(threshold))]
        if fired {
            log.error("alert firing: failed-job spike", meta)
        } else {
            log.warn("alert cleared: failed-job spike", meta)
        }
        notify(firing: fired, count: count)
    }

    var state: JSON {
        let s = st.current
        let now = clock.nowMillis()
        let inWindow = s.times.filter { $0 >= now - windowMs }.count
        var o: [String: JSON] = ["name": "failed_job_spike", "firing": .bool(s.firing), "failuresInWindow": .int(Int64(inWindow)),
                                 "windowSeconds": .int(windowMs / 1000), "threshold": .int(Int64(threshold))]
        if let since = s.since { o["since"] = .string(Clock.iso8601(millis: since)) }
        return .object(o)
    }

    var firing: Bool { st.current.firing }

    private func notify(firing: Bool, count: Int) {
        guard let url = webhook else { return }
        var req = URLRequest(url: url)
        req.httpMethod = "POST"
        req.timeoutInterval = 5
        req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        let body: JSON = ["alert": "failed_job_spike", "status": firing ? "firing" : "resolved", "failuresInWindow": .int(Int64(count)),
                          "windowSeconds": .int(windowMs / 1000), "threshold": .int(Int64(threshold)), "at": .string(clock.nowISO())]
        req.httpBody = Data(body.serializedBytes())
        let log = self.log
        URLSession.shared.dataTask(with: req) { _, resp, err in
            if let err { log.warn("alert webhook failed", ["error": .string(String(describing: err))]) }
            else if let h = resp as? HTTPURLResponse, !(200..<300).contains(h.statusCode) { log.warn("alert webhook refused", ["status": .int(Int64(h.statusCode))]) }
        }.resume()
    }
}
