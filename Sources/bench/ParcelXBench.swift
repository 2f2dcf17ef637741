import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTPClient
import JSON
import ParcelXAPI
import RPC
import Runtime

/// `bench parcelx`: orders placed/s by the ParcelXSvc create worker against the sandbox answering
/// after 20 ms, at worker concurrency 1, 16 and 64, beside the ideal (concurrency ÷ latency). A
/// backlog of accepted orders is built first with no worker running, then each concurrency runs
/// in a fresh ParcelXSvc and is measured over a steady window after a one-second warm-up.
enum ParcelXBench {
    static func run(_ report: Report, seconds: Double) throws {
        print("parcelx: provider worker throughput vs concurrency ÷ latency (\(E2EBench.latencyMs) ms)")
        let sys = try BenchSystem("parcelx", parts: [.sandbox, .services])
        defer { sys.cleanup() }
        try E2EBench.setLatency(sys.sandboxPort, E2EBench.latencyMs)
        let m = try sys.merchant(topups: 5)
        let merchant = Actor(userId: m.userId, role: .merchant)
        let order = sys.rpc("order", poolSize: 4)
        defer { order.closeAll() }
        let tag = benchTag()
        let seq = Locked(0)
        var backlog = 0
        var lastRate = 0.0

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

        for c in [1, 16, 64] {
            let ideal = Double(c) * 1000 / Double(E2EBench.latencyMs)
            // Enough work that the backlog outlasts the window even if throughput scales with c.
            let expect = c == 1 ? ideal : min(ideal, max(lastRate * 2, 300))
            let need = Int(expect * (seconds + 2)) + 50
            let placedSoFar = E2EBench.sandboxCreates(sys.sandboxPort)
            if backlog - placedSoFar < need {
                let t = Clock.monotonicNanos()
                addBacklog(need - (backlog - placedSoFar))
                print(String(format: "    backlog of %d orders built in %.1f s", need, Double(Clock.monotonicNanos() - t) / 1e9))
            }
            try sys.startService("parcelx", extraEnv: ["OOPS_PARCELX_CREATE_CONCURRENCY": "\(c)"])
            usleep(1_000_000)
            let a = E2EBench.sandboxCreates(sys.sandboxPort)
            let cpu0 = sys.procs.cpuSeconds()
            let t0 = Clock.monotonicNanos()
            usleep(UInt32(seconds * 1e6))
            let b = E2EBench.sandboxCreates(sys.sandboxPort)
            let el = Double(Clock.monotonicNanos() - t0) / 1e9
            let cpu1 = sys.procs.cpuSeconds()
            sys.procs.stop("parcelx")
            let rate = Double(b - a) / el
            lastRate = rate
            let left = backlog - E2EBench.sandboxCreates(sys.sandboxPort)
            // Where one placed order's CPU goes, process by process, over the same window.
            let cpuNote = BenchProcs.cpuNote(cpu0, cpu1, units: Double(b - a), unit: "order")
            report.add(BenchRow(suite: "parcelx", name: "orders placed, worker concurrency \(c)", value: rate, unit: "orders/s",
                                baselineName: "ideal \(c) ÷ \(E2EBench.latencyMs) ms", baseline: ideal,
                                note: (left <= 0 ? "backlog ran out: rate is a lower bound" : "\(left) still queued at the end") + "; " + cpuNote))
        }
        try clientCeiling(report, sys: sys, seconds: seconds)
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
