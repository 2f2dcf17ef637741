import Foundation
import Runtime

/// bench: the project's benchmarks. Each case prints its numbers beside a baseline measured in
/// the same run (these machines are noisy; only same-run ratios mean something).
let usage = """
usage: bench <case> [--seconds N]
cases: rpc, all
  all writes BENCHMARKS.md
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
guard let which = args.first else { print(usage); exit(2) }
let report = Report()
let cases: [(String, (Report, Double) throws -> Void)] = [
    ("rpc", RPCBench.run),
]
do {
    print("machine: \(machineDescription())")
    if which == "all" {
        for (_, run) in cases { try run(report, seconds) }
        try BenchmarksFile.write(report.rows, seconds: seconds)
        print("wrote BENCHMARKS.md")
    } else if let c = cases.first(where: { $0.0 == which }) {
        try c.1(report, seconds)
    } else {
        print(usage)
        exit(2)
    }
} catch {
    print("bench failed: \(error)")
    exit(1)
}
