import Foundation
import Runtime

/// bench: the project's benchmarks. Each case prints its numbers beside a baseline measured in
/// the same run (these machines are noisy; only same-run ratios mean something).
let usage = """
usage: bench <case> [--seconds N] [--mongodb URI]
cases: rpc, store, auth, wallet, queue, orders, parcelx, parcelx-client, http, e2e, e2e-cells, all
  parcelx-client runs only the provider HTTP clients' ceilings against nginx (part of parcelx)
  --seconds N   length of each load phase (default 3)
  --mongodb URI store and orders run on this MongoDB instead of SQLite (also OOPS_BENCH_MONGODB_URI),
                in a database of their own (oops_bench_<random>) that is dropped afterwards
  all runs every case and writes BENCHMARKS.md
"""

var args = Array(CommandLine.arguments.dropFirst())
if args.first == "__serve-echo", args.count == 2 { RPCBench.serveEcho(path: args[1]) }
if args.first == "__serve-rpc", args.count == 2 { RPCBench.serveRPC(runDir: args[1]) }
signal(SIGPIPE, SIG_IGN)

var seconds = 3.0
if let i = args.firstIndex(of: "--seconds"), i + 1 < args.count, let s = Double(args[i + 1]) {
    seconds = s
    args.removeSubrange(i...(i + 1))
}
if let i = args.firstIndex(of: "--mongodb"), i + 1 < args.count {
    setenv(BenchBackend.variable, args[i + 1], 1)
    args.removeSubrange(i...(i + 1))
}
guard let which = args.first else { print(usage); exit(2) }
let report = Report()
_ = BenchProcs.binDir
let cases: [(String, (Report, Double) throws -> Void)] = [
    ("rpc", RPCBench.run),
    ("store", StoreBench.run),
    ("auth", AuthBench.run),
    ("wallet", WalletBench.run),
    ("queue", QueueBench.run),
    ("orders", OrdersBench.run),
    ("parcelx", ParcelXBench.run),
    ("http", HTTPBench.run),
    ("e2e", E2EBench.run),
    ("e2e-cells", CellsBench.run),
]
do {
    print("machine: \(machineDescription())")
    if which == "all" {
        // One failing case does not cost the others; its failure is written down.
        var failures: [String] = []
        let t0 = Date()
        for (name, run) in cases {
            let t = Date()
            do { try run(report, seconds) } catch {
                print("  \(name) failed: \(error)")
                failures.append("\(name): \(error)")
            }
            print(String(format: "  (%@ took %.0f s)", name, Date().timeIntervalSince(t)))
        }
        try BenchmarksFile.write(report, seconds: seconds, failures: failures, totalSeconds: Date().timeIntervalSince(t0))
        print("wrote BENCHMARKS.md")
    } else if let c = cases.first(where: { $0.0 == which }) {
        try c.1(report, seconds)
    } else if which == "parcelx-client" {
        let sys = try BenchSystem("parcelx-client", parts: [])
        defer { sys.cleanup() }
        try ParcelXBench.clientCeiling(report, sys: sys, seconds: seconds)
    } else {
        print(usage)
        exit(2)
    }
} catch {
    print("bench failed: \(error)")
    exit(1)
}
