import Foundation
import JSON
import RPC
import Runtime
import Store

/// `bench wallet`: wallet.charge through a real WalletSvc, on one contended wallet and spread over
/// 1,000 wallets, beside the raw single-document conditional update of the same store kind
/// (SQLite, same pragmas) at the same concurrency, in the same run.
enum WalletBench {
    static let clients = 16

    static func run(_ report: Report, seconds: Double) throws {
        print("wallet: wallet.charge over RPC vs a raw DocumentStore conditional update")
        let sys = try BenchSystem("wallet", parts: [])
        defer { sys.cleanup() }
        try sys.startService("wallet")
        let wallet = sys.rpc("wallet", poolSize: 2)
        defer { wallet.closeAll() }
        let tag = benchTag()
        let users = (0..<1000).map { "usr_\(tag)_\($0)" }
        // Fund every wallet (the charge never goes below zero).
        let failedTopups = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for i in stride(from: t, to: users.count, by: 8) {
                let m = Actor(userId: users[i], role: .merchant)
                if (try? wallet.call("wallet.topup", ["amountPaise": 1_000_000_000, "idempotencyKey": .string("seed-\(i)")], ctx: .new(actor: m))) == nil {
                    failedTopups.withLock { $0 += 1 }
                }
            }
        }
        if failedTopups.current > 0 { throw RuntimeError("\(failedTopups.current) top-ups failed: \(sys.procs.log("wallet").suffix(800))") }
        let seq = Locked(0)
        @Sendable func charge(_ user: String) -> Bool {
            let n = seq.withLock { $0 += 1; return $0 }
            return (try? wallet.call("wallet.charge", ["userId": .string(user), "orderId": .string("ord_\(tag)_\(n)"), "amountPaise": 100],
                                     ctx: .new(actor: .system, timeoutMs: 10_000))) != nil
        }

        // Raw baseline: a balance decrement guarded by balance >= amount, on one document and on 1,000.
        let log = Logger(service: "bench", instance: 0, level: .error)
        let store = try StoreFactory.open(service: "benchwallet", dataDir: sys.procs.dir + "/rawstore", mongoURI: nil, log: log)
        defer { store.close() }
        try store.prepare([CollectionSpec("wallets")], schemaVersion: 1)
        for u in users { _ = try store.insert("wallets", ["_id": .string(u), "balancePaise": 1_000_000_000_000]) }
        @Sendable func rawCAS(_ user: String) -> Bool {
            (try? store.update("wallets", where: .and([.id(user), .gte("balancePaise", 100)]), Update(inc: ["balancePaise": -100]))) != nil
        }

        for (label, pick) in [("one wallet (contended)", { @Sendable (_: Int) in users[0] }),
                              ("1,000 wallets", { @Sendable (_: Int) in users[Int.random(in: 0..<users.count)] })] {
            let r = runLoad(threads: clients, seconds: seconds) { t in charge(pick(t)) }
            let b = runLoad(threads: clients, seconds: seconds) { t in rawCAS(pick(t)) }
            report.add(BenchRow(suite: "wallet", name: "wallet.charge, \(label), \(clients) clients", value: Double(r.ops) / r.elapsed, unit: "charges/s",
                                baselineName: "raw store CAS (balance ≥ amount), \(clients) threads", baseline: Double(b.ops) / b.elapsed,
                                note: String(format: "p50 %.2f ms, p99 %.2f ms (raw p99 %.2f ms)", r.samples.p50 / 1000, r.samples.p99 / 1000, b.samples.p99 / 1000)))
        }
        let one = runLoad(threads: 1, seconds: seconds) { _ in charge(users[1]) }
        let oneRaw = runLoad(threads: 1, seconds: seconds) { _ in rawCAS(users[1]) }
        report.add(BenchRow(suite: "wallet", name: "wallet.charge, 1 client (latency)", value: one.samples.p50 / 1000, unit: "ms p50",
                            baselineName: "raw store CAS p50", baseline: oneRaw.samples.p50 / 1000,
                            note: String(format: "p99 %.2f ms; %.0f charges/s", one.samples.p99 / 1000, Double(one.ops) / one.elapsed)))
    }
}
