import Domain
import Foundation
import JSON
import Queue
import RPC
import Runtime
import Store

/// `bench orders`: orders.create over RPC against real OrderSvc + WalletSvc + AuthSvc + Redis
/// (configured as the run command does), beside the sum of its parts measured in the same run:
/// the store work OrderSvc does (insert, one stage CAS), wallet.charge and the enqueue (the KYC
/// approval is remembered after the first order, so kyc.status is not a per-order part). The
/// ParcelX workers are not started, so only the accept path is measured.
enum OrdersBench {
    static let levels = [1, 16, 64, 256]

    struct Part { var name: String; var p50: Double; var rate: Double }

    static func run(_ report: Report, seconds: Double) throws {
        let mongo = BenchBackend.mongoURI()
        print("orders: orders.create over RPC vs the sum of its parts\(BenchBackend.label)")
        let sys = try BenchSystem("orders", parts: [.services], extraEnv: mongo.map { ["OOPS_MONGODB_URI": $0] } ?? [:])
        let log = Logger(service: "bench", instance: 0, level: .error)
        let store: any DocumentStore
        do {
            store = try StoreFactory.open(service: "benchorders", dataDir: sys.procs.dir + "/parts", mongoURI: mongo, log: log)
        } catch {
            sys.cleanup()
            throw error
        }
        // The services stop first (some calls of the last level may still be queued there), then
        // the store goes, with the run's MongoDB database and all the services wrote into it.
        defer {
            sys.cleanup()
            BenchBackend.dispose(store)
        }
        let m = try sys.merchant()
        let merchant = Actor(userId: m.userId, role: .merchant)
        let order = sys.rpc("order", poolSize: 4), wallet = sys.rpc("wallet", poolSize: 4)
        defer { order.closeAll(); wallet.closeAll() }
        try store.prepare([CollectionSpec("orders", indexes: [IndexSpec(["userId", "clientOrderId"], unique: true), IndexSpec(["userId", "_id"]),
                                                              IndexSpec(["stage", "updatedAtMs"]), IndexSpec(["status"])])], schemaVersion: 1)
        let queue = try JobQueue(name: "bench-parts-\(benchTag())", redisURL: sys.redisURL)
        defer { queue.close() }
        let tag = benchTag()
        let seq = Locked(0)
        @Sendable func next() -> Int { seq.withLock { $0 += 1; return $0 } }

        let parts: [(String, @Sendable () -> Bool)] = [
            ("store: insert + stage CAS (in-process)", {
                let id = "ord_\(tag)_\(next())"
                var d = BenchSystem.orderBody("c-\(id)")
                d["_id"] = .string(id); d["userId"] = .string(m.userId); d["stage"] = "accepted"; d["status"] = "pending"; d["updatedAtMs"] = .int(Clock.wallMillis())
                do {
                    _ = try store.insert("orders", d)
                    guard try store.update("orders", where: .and([.id(id), .in("stage", ["accepted", "charged"])]), Update(set: ["stage": "enqueued"])) != nil
                    else { return false }
                    return true
                } catch { return false }
            }),
            ("wallet.charge (RPC)", {
                (try? wallet.call("wallet.charge", ["userId": .string(m.userId), "orderId": .string("ord_p_\(tag)_\(next())"), "amountPaise": 100],
                                  ctx: .new(actor: .system, timeoutMs: 10_000))) != nil
            }),
            ("enqueue (JobQueue.add, custom id)", {
                (try? queue.add(name: QueueNames.createJob, dataJSON: "{\"orderId\":\"x\"}", options: JobOptions(jobId: "create-\(tag)-\(next())"))) != nil
            }),
        ]
        var byLevel: [Int: [Part]] = [:]
        for c in [1, 64] {
            var list: [Part] = []
            for (name, body) in parts {
                let r = runLoad(threads: c, seconds: seconds / 2) { _ in body() }
                list.append(Part(name: name, p50: r.samples.p50 / 1000, rate: Double(r.ops) / r.elapsed))
                print(String(format: "    part %@ at %d: %.0f/s p50 %.2f ms", name, c, Double(r.ops) / r.elapsed, r.samples.p50 / 1000))
            }
            byLevel[c] = list
        }

        for c in levels {
            let r = runLoad(threads: c, seconds: seconds) { _ in
                (try? order.call("orders.create", BenchSystem.orderBody("co-\(tag)-\(next())"), ctx: .new(actor: merchant, timeoutMs: 30_000))) != nil
            }
            let rate = Double(r.ops) / r.elapsed
            report.addScaling(ScalingRow(suite: "orders", what: "orders.create over RPC (no workers)\(BenchBackend.label)", clients: c, rate: rate,
                                         p50Ms: r.samples.p50 / 1000, p99Ms: r.samples.p99 / 1000))
            let note = String(format: "p50 %.2f ms, p99 %.2f ms", r.samples.p50 / 1000, r.samples.p99 / 1000)
            if let ps = byLevel[c] {
                // Done one after another, the parts allow 1 / Σ(1/rate_i) orders per second.
                let ideal = 1 / ps.map { 1 / max($0.rate, 1e-9) }.reduce(0, +)
                report.add(BenchRow(suite: "orders", name: "orders.create, \(c) client(s)\(BenchBackend.label)", value: rate, unit: "orders/s",
                                    baselineName: "sum of parts at \(c) client(s): 1/Σ(1/rate)", baseline: ideal, note: note))
                if c == 1 {
                    let sum = ps.map(\.p50).reduce(0, +)
                    report.add(BenchRow(suite: "orders", name: "orders.create p50, 1 client\(BenchBackend.label)", value: r.samples.p50 / 1000, unit: "ms",
                                        baselineName: "Σ part p50", baseline: sum,
                                        note: ps.map { String(format: "%@ %.2f", $0.name, $0.p50) }.joined(separator: "; ")))
                }
            } else {
                report.add(BenchRow(suite: "orders", name: "orders.create, \(c) clients\(BenchBackend.label)", value: rate, unit: "orders/s", baselineName: nil, baseline: nil, note: note))
            }
        }
    }
}

/// `bench e2e`: the whole process set as `./oops run` starts it, with the sandbox answering after
/// 20 ms: orders accepted/s through the Gateway (HTTP) and placed/s through the workers, at 1, 16,
/// 64 and 256 concurrent clients, beside orders.create straight over RPC at the same load and the
/// workers' ideal (concurrency ÷ latency).
enum E2EBench {
    static let latencyMs = 20
    static let workerConcurrency = 16

    static func sandboxCreates(_ port: UInt16) -> Int {
        guard let c = try? HTTPConn(port: port), let r = try? c.request("GET", "/__sandbox/stats"),
              let j = try? JSONParser.parse(r.body) else { return -1 }
        return Int(j["endpoints"]?["create_order"]?["calls"]?.intValue ?? 0)
    }

    static func setLatency(_ port: UInt16, _ ms: Int) throws {
        let r = try HTTPConn(port: port).request("POST", "/__sandbox/config", body: Array("{\"latencyMs\":\(ms)}".utf8))
        guard r.status == 200 else { throw RuntimeError("sandbox config: \(r.status) \(String(decoding: r.body, as: UTF8.self))") }
    }

    /// Waits until the sandbox has seen `target` creates; returns when the last one arrived.
    static func waitPlaced(_ port: UInt16, target: Int, timeoutS: Double = 120) -> UInt64? {
        let d = Deadline.after(ms: Int(timeoutS * 1000))
        while !d.hasPassed {
            if sandboxCreates(port) >= target { return Clock.monotonicNanos() }
            usleep(5_000)
        }
        return nil
    }

    static func run(_ report: Report, seconds: Double) throws {
        print("e2e: Gateway → OrderSvc → queue → ParcelXSvc → sandbox (\(latencyMs) ms), by concurrent clients")
        let sys = try BenchSystem("e2e", parts: .all, extraEnv: ["OOPS_PARCELX_MAX_IN_FLIGHT": "\(workerConcurrency)"])
        defer { sys.cleanup() }
        try setLatency(sys.sandboxPort, latencyMs)
        let m = try sys.merchant()
        let merchant = Actor(userId: m.userId, role: .merchant)
        let order = sys.rpc("order", poolSize: 4)
        defer { order.closeAll() }
        let tag = benchTag()
        let seq = Locked(0)
        @Sendable func next() -> Int { seq.withLock { $0 += 1; return $0 } }
        let headers = ["Authorization": "Bearer \(m.token)"]
        let ideal = Double(workerConcurrency) * 1000 / Double(latencyMs)

        for c in OrdersBench.levels {
            // Through the Gateway.
            let before = sandboxCreates(sys.sandboxPort)
            let t0 = Clock.monotonicNanos()
            let r = runClients(c, seconds: seconds, setup: { _ in try HTTPConn(port: sys.httpPort) }) { conn, _ in
                let body = BenchSystem.orderBody("e2e-\(tag)-\(next())").serializedBytes()
                guard let res = try? conn.request("POST", "/orders/create", headers: headers, body: body) else {
                    if let fresh = try? HTTPConn(port: sys.httpPort) { conn = fresh }
                    return false
                }
                return res.status == 201
            }
            let accepted = Double(r.ops) / r.elapsed
            let done = waitPlaced(sys.sandboxPort, target: before + r.ops)
            let placed = done.map { Double(r.ops) / (Double($0 - t0) / 1e9) } ?? 0
            // Straight over RPC at the same load (no HTTP, no token check), after the backlog drained.
            let beforeRPC = sandboxCreates(sys.sandboxPort)
            let d = runLoad(threads: c, seconds: seconds) { _ in
                (try? order.call("orders.create", BenchSystem.orderBody("e2r-\(tag)-\(next())"), ctx: .new(actor: merchant, timeoutMs: 30_000))) != nil
            }
            let direct = Double(d.ops) / d.elapsed
            _ = waitPlaced(sys.sandboxPort, target: beforeRPC + d.ops)
            let failNote = r.failed > 0 ? ", \(r.failed) failed" : ""
            report.add(BenchRow(suite: "e2e", name: "orders accepted via Gateway, \(c) client(s)", value: accepted, unit: "orders/s",
                                baselineName: "orders.create over RPC, same clients", baseline: direct,
                                note: String(format: "p50 %.2f ms, p99 %.2f ms%@", r.samples.p50 / 1000, r.samples.p99 / 1000, failNote)))
            report.add(BenchRow(suite: "e2e", name: "orders placed by workers, \(c) client(s)", value: placed, unit: "orders/s",
                                baselineName: "min(accepted rate, \(workerConcurrency) workers ÷ \(latencyMs) ms)", baseline: min(ideal, accepted),
                                note: done == nil ? "not all placed within 120 s" : "from first accept to last provider create"))
            report.addScaling(ScalingRow(suite: "e2e", what: "HTTP POST /orders/create (accepted), workers placing", clients: c, rate: accepted,
                                         p50Ms: r.samples.p50 / 1000, p99Ms: r.samples.p99 / 1000,
                                         note: String(format: "placed %.0f/s; direct RPC %.0f/s (p50 %.2f ms, p99 %.2f ms)%@", placed, direct,
                                                      d.samples.p50 / 1000, d.samples.p99 / 1000, failNote)))
        }
    }
}
