import Foundation
import Harness
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTPClient
import JSON
import ParcelXAPI
import RPC
import Redis
import Runtime

/// `bench parcelx`: orders placed/s by ParcelXSvc's create worker against the sandbox, beside the
/// ideal (calls in flight ÷ provider latency): 64 in flight at 20 ms, and the default settings
/// (1,000 in flight) at 1 s. A backlog of accepted orders is built first with no worker running,
/// then each case runs in a fresh ParcelXSvc and is measured over a steady window after a warm-up
/// of two latencies, with the process's threads, Redis connections and RSS.
enum ParcelXBench {
    static func run(_ report: Report, seconds: Double) throws {
        print("parcelx: provider worker throughput vs calls in flight ÷ latency")
        let sys = try BenchSystem("parcelx", parts: [.sandbox, .services])
        defer { sys.cleanup() }
        let m = try sys.merchant(topups: 20)
        let merchant = Actor(userId: m.userId, role: .merchant)
        let order = sys.rpc("order", poolSize: 4)
        defer { order.closeAll() }
        let tag = benchTag()
        let seq = Locked(0)
        var backlog = 0

        func addBacklog(_ n: Int) {
            let made = Locked(0)
            DispatchQueue.concurrentPerform(iterations: 32) { _ in
                while made.withLock({ x -> Bool in guard x < n else { return false }; x += 1; return true }) {
                    let i = seq.withLock { $0 += 1; return $0 }
                    _ = try? order.call("orders.create", BenchSystem.orderBody("px-\(tag)-\(i)"), ctx: .new(actor: merchant, timeoutMs: 30_000))
                }
            }
            backlog += n
        }

        // (latency, calls in flight, env): nil in flight means ParcelXSvc's defaults.
        let cases: [(latencyMs: Int, inFlight: Int, env: [String: String])] = [
            (20, 64, ["OOPS_PARCELX_MAX_IN_FLIGHT": "64"]),
            (1000, 1000, [:]),
        ]
        for (latencyMs, inFlight, env) in cases {
            try E2EBench.setLatency(sys.sandboxPort, latencyMs)
            let ideal = Double(inFlight) * 1000 / Double(latencyMs)
            let warmS = max(1.0, 2.5 * Double(latencyMs) / 1000)
            let need = Int(ideal * (seconds + warmS + 1)) + inFlight + 50
            let placedSoFar = E2EBench.sandboxCreates(sys.sandboxPort)
            if backlog - placedSoFar < need {
                let t = Clock.monotonicNanos()
                addBacklog(need - (backlog - placedSoFar))
                print(String(format: "    backlog of %d orders built in %.1f s", need, Double(Clock.monotonicNanos() - t) / 1e9))
            }
            let redisBefore = redisClients(sys.redisPort)
            try sys.startService("parcelx", extraEnv: env)
            usleep(UInt32(warmS * 1e6))
            let a = E2EBench.sandboxCreates(sys.sandboxPort)
            let cpu0 = sys.procs.cpuSeconds()
            let t0 = Clock.monotonicNanos()
            usleep(UInt32(seconds * 1e6))
            let b = E2EBench.sandboxCreates(sys.sandboxPort)
            let el = Double(Clock.monotonicNanos() - t0) / 1e9
            let cpu1 = sys.procs.cpuSeconds()
            let (threads, rss) = sys.procs.pid("parcelx").map { BenchProcs.threadsAndRSS(pid: $0) } ?? (0, 0)
            let conns = redisClients(sys.redisPort) - redisBefore
            sys.procs.stop("parcelx", graceMs: 30_000)
            let rate = Double(b - a) / el
            let left = backlog - E2EBench.sandboxCreates(sys.sandboxPort)
            // Where one placed order's CPU goes, process by process, over the same window.
            let cpuNote = BenchProcs.cpuNote(cpu0, cpu1, units: Double(b - a), unit: "order")
            report.add(BenchRow(suite: "parcelx", name: "orders placed, \(inFlight) in flight at \(latencyMs) ms", value: rate, unit: "orders/s",
                                baselineName: "ideal \(inFlight) ÷ \(latencyMs) ms", baseline: ideal,
                                note: (left <= 0 ? "backlog ran out: rate is a lower bound" : "\(left) still queued at the end")
                                    + String(format: "; ParcelXSvc: %d threads, %d Redis connections, %.0f MiB RSS; ", threads, conns, rss) + cpuNote))
        }
        try clientCeiling(report, sys: sys, seconds: seconds)
    }

    /// Connections Redis holds now.
    static func redisClients(_ port: UInt16) -> Int {
        guard let c = try? RedisClient(url: "redis://127.0.0.1:\(port)"), let info = try? c.run(["INFO", "clients"]).stringValue else { return 0 }
        let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("connected_clients:") }
        return (line.flatMap { Int($0.dropFirst("connected_clients:".count)) } ?? 1) - 1  // less this one
    }

    /// The ceiling of the HTTP client the issue asks for (URLSession on FoundationNetworking),
    /// with nothing else to do: 64 threads posting a small JSON body to nginx, which answers at
    /// once, through a session configured as ParcelXClient's is (ParcelXSession). Every placed
    /// order needs at least one such call, so the worker can never place orders faster than this.
    static func clientCeiling(_ report: Report, sys: BenchSystem, seconds: Double) throws {
        let port = freePort()
        try HTTPBench.startNginx(sys.procs, port: port)
        let session = URLSession(configuration: ParcelXSession.configuration(maxConnections: 64, requestTimeoutS: 10, totalTimeoutS: 15))
        let url = URL(string: "http://127.0.0.1:\(port)/api/order/create_order")!
        let done = Locked(0)
        let stopAt = Clock.monotonicNanos() + UInt64(seconds * 1e9)
        let cpu0 = processCPUSeconds()
        let t0 = Clock.monotonicNanos()
        let group = DispatchGroup()
        for _ in 0..<64 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                while Clock.monotonicNanos() < stopAt {
                    var req = URLRequest(url: url)
                    req.httpMethod = "POST"
                    req.setValue("application/json", forHTTPHeaderField: "Content-Type")
                    req.httpBody = Data(#"{"client_order_id":"x","payment_mode":"Prepaid"}"#.utf8)
                    let sem = DispatchSemaphore(value: 0)
                    let ok = Locked(false)
                    session.dataTask(with: req) { _, resp, err in
                        if err == nil && (resp as? HTTPURLResponse)?.statusCode == 200 { ok.withLock { $0 = true } }
                        sem.signal()
                    }.resume()
                    sem.wait()
                    if ok.current { done.withLock { $0 += 1 } }
                }
            }
        }
        group.wait()
        let el = Double(Clock.monotonicNanos() - t0) / 1e9
        let cpu = processCPUSeconds() - cpu0
        let n = done.current
        session.invalidateAndCancel()
        report.add(BenchRow(suite: "parcelx", name: "URLSession alone, 64 concurrent POSTs to nginx (the client's ceiling)", value: Double(n) / el, unit: "req/s",
                            baselineName: "goal 0.6 × 64 ÷ \(E2EBench.latencyMs) ms", baseline: 0.6 * 64_000 / Double(E2EBench.latencyMs),
                            note: String(format: "%.2f ms of CPU per call in the calling process", n > 0 ? cpu * 1000 / Double(n) : 0)))
        try curlCeiling(report, sys: sys, seconds: seconds, port: port, inFlight: 64)
        try curlCeiling(report, sys: sys, seconds: seconds, port: port, inFlight: 1000)
        sys.procs.stop("nginx")
    }

    /// The same ceiling for the client ParcelXSvc uses (CurlHTTPClient): `inFlight` calls kept
    /// in flight from its one loop thread (each answer starts the next call), no other threads.
    static func curlCeiling(_ report: Report, sys: BenchSystem, seconds: Double, port: UInt16, inFlight: Int) throws {
        var o = CurlClientOptions()
        o.maxConnectionsPerHost = 64
        let client = try CurlHTTPClient(options: o, name: "bench-curl")
        let call = HTTPCall(method: "POST", url: "http://127.0.0.1:\(port)/api/order/create_order", headers: [("Content-Type", "application/json")],
                            body: Array(#"{"client_order_id":"x","payment_mode":"Prepaid"}"#.utf8))
        let done = Locked(0)
        let failed = Locked(0)
        let stopAt = Clock.monotonicNanos() + UInt64(seconds * 1e9)
        let finished = DispatchGroup()
        @Sendable func next() {
            client.start(call) { a in
                if a.status == 200 { done.withLock { $0 += 1 } } else { failed.withLock { $0 += 1 } }
                if Clock.monotonicNanos() < stopAt { next() } else { finished.leave() }
            }
        }
        let cpu0 = processCPUSeconds()
        let t0 = Clock.monotonicNanos()
        for _ in 0..<inFlight { finished.enter(); next() }
        finished.wait()
        let el = Double(Clock.monotonicNanos() - t0) / 1e9
        let cpu = processCPUSeconds() - cpu0
        client.close()
        let n = done.current
        report.add(BenchRow(suite: "parcelx", name: "CurlHTTPClient alone, \(inFlight) POSTs in flight to nginx (the client's ceiling)", value: Double(n) / el,
                            unit: "req/s", baselineName: "goal 0.6 × 64 ÷ \(E2EBench.latencyMs) ms", baseline: 0.6 * 64_000 / Double(E2EBench.latencyMs),
                            note: String(format: "%.3f ms of CPU per call in the calling process (goal ≤ 0.1); %d failed", n > 0 ? cpu * 1000 / Double(n) : 0,
                                         failed.current)))
    }

    /// User plus system CPU time of this process so far.
    static func processCPUSeconds() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }
}
