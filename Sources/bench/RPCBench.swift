import Foundation
import JSON
import RPC
import Runtime

/// `bench rpc`: a no-op JSON-RPC method over a Unix socket (server in its own process), beside a
/// raw Unix-socket line echo measured the same way in the same run.
enum RPCBench {
    /// Hidden mode: a raw line echo server (the baseline), one thread per connection.
    static func serveEcho(path: String) -> Never {
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in path.utf8.enumerated() { p[i] = b }
        }
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        listen(fd, 128)
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 { continue }
            Thread.detachNewThread {
                var buf = [UInt8](repeating: 0, count: 65536)
                var pending: [UInt8] = []
                while true {
                    let n = read(c, &buf, buf.count)
                    if n <= 0 { close(c); return }
                    pending.append(contentsOf: buf[0..<n])
                    // Echo every complete line back (a line-framed server, like the RPC one).
                    if let last = pending.lastIndex(of: 0x0A) {
                        let out = Array(pending[...last])
                        pending.removeFirst(last + 1)
                        _ = out.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    }
                }
            }
        }
    }

    /// Hidden mode: an RPC server with a no-op method, declared `inline` (it never blocks, so it
    /// runs on the connection's reader thread) and again as `noop.pooled` on the handler pool,
    /// the path every method that does I/O takes.
    static func serveRPC(runDir: String) -> Never {
        let log = Logger(service: "bench", instance: 0, level: .error)
        let noop = Method("noop", summary: "does nothing", roles: [], params: .object([], additional: true), result: .anything, inline: true) { _, _ in .null }
        let pooled = Method("noop.pooled", summary: "does nothing, on the handler pool", roles: [], params: .object([], additional: true), result: .anything) { _, _ in .null }
        let server = RPCServer(dispatcher: Dispatcher(service: "bench", instance: 0, methods: [noop, pooled], log: log), log: log)
        do { try server.listen(path: "\(runDir)/bench-0.sock") } catch { print("\(error)"); exit(1) }
        while true { sleep(1000) }
    }

    static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in path.utf8.enumerated() { p[i] = b }
        }
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        return fd
    }

    static let line = Array(#"{"jsonrpc":"2.0","method":"noop","params":{},"id":1}"#.utf8) + [0x0A]

    /// Raw echo: sequential round trips.
    static func rawSequential(_ fd: Int32, count: Int) -> Samples {
        var s = Samples()
        var buf = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<count {
            let t0 = Clock.monotonicNanos()
            _ = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            var got = 0
            while got < line.count { let n = read(fd, &buf, buf.count); if n <= 0 { return s }; got += n }
            s.add(Clock.monotonicNanos() - t0)
        }
        return s
    }

    /// Raw echo: `window` lines in flight on one connection; returns lines per second.
    static func rawPipelined(_ fd: Int32, window: Int, seconds: Double) -> Double {
        let done = Locked(0)
        let stop = Locked(false)
        // Created at 0 and credited by signal: libdispatch traps when a semaphore is freed below
        // its initial value, which a window still partly in flight would be.
        let credit = DispatchSemaphore(value: 0)
        for _ in 0..<window { credit.signal() }
        let reader = Thread {
            var buf = [UInt8](repeating: 0, count: 65536)
            while !stop.current {
                let n = read(fd, &buf, buf.count)
                if n <= 0 { return }
                var lines = 0
                for i in 0..<n where buf[i] == 0x0A { lines += 1 }
                done.withLock { $0 += lines }
                for _ in 0..<lines { credit.signal() }
            }
        }
        reader.start()
        let t0 = Clock.monotonicNanos()
        let end = t0 + UInt64(seconds * 1e9)
        while Clock.monotonicNanos() < end {
            credit.wait()
            _ = line.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        let n = done.current
        stop.withLock { $0 = true }
        return Double(n) / (Double(Clock.monotonicNanos() - t0) / 1e9)
    }

    static func run(_ report: Report, seconds: Double) throws {
        print("rpc: no-op method over a Unix socket (server in its own process) vs raw line echo")
        let dir = NSTemporaryDirectory() + "oops-bench-rpc-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let echoPath = dir + "/echo.sock"
        let echo = try spawnSelf(["__serve-echo", echoPath])
        let rpc = try spawnSelf(["__serve-rpc", dir])
        defer { echo.terminate(); rpc.terminate() }
        guard waitForFile(echoPath), waitForFile(dir + "/bench-0.sock") else { throw RuntimeError("bench servers did not start") }
        usleep(100_000)

        let n = 20_000
        let rawFD = connect(echoPath)
        _ = rawSequential(rawFD, count: 2000)  // warm up
        let raw = rawSequential(rawFD, count: n)
        close(rawFD)

        let client = RPCClient(runDir: dir, service: "bench", poolSize: 1)
        for _ in 0..<2000 { _ = try? client.call("noop", ctx: .new()) }
        var seq = Samples()
        for _ in 0..<n {
            let t0 = Clock.monotonicNanos()
            _ = try? client.call("noop", ctx: .new())
            seq.add(Clock.monotonicNanos() - t0)
        }
        report.add(BenchRow(suite: "rpc", name: "sequential round trip p50", value: seq.p50, unit: "µs", baselineName: "raw echo p50", baseline: raw.p50))
        report.add(BenchRow(suite: "rpc", name: "sequential round trip p99", value: seq.p99, unit: "µs", baselineName: "raw echo p99", baseline: raw.p99,
                            note: "goal < 200 µs"))

        // Pipelined: a window of 64 calls in flight on one connection, the same pattern as the echo baseline.
        func pipelined(_ method: String, seconds: Double) -> Double {
            let credit = DispatchSemaphore(value: 0)
            for _ in 0..<64 { credit.signal() }
            let done = Locked(0)
            let ctx = RPCContext.new(timeoutMs: 60_000)
            let t0 = Clock.monotonicNanos()
            let end = t0 + UInt64(seconds * 1e9)
            while Clock.monotonicNanos() < end {
                credit.wait()
                client.callAsync(method, ctx: ctx) { _ in
                    done.withLock { $0 += 1 }
                    credit.signal()
                }
            }
            for _ in 0..<64 { credit.wait() }
            return Double(done.current) / (Double(Clock.monotonicNanos() - t0) / 1e9)
        }
        // For profiling (`perf record` beside it): the inline method alone, for `seconds`.
        if ProcessInfo.processInfo.environment["OOPS_BENCH_PROFILE"] == "noop" {
            print("  noop alone: \(Int(pipelined("noop", seconds: seconds))) calls/s")
            client.closeAll()
            return
        }
        // The echo and the inline method take turns, three rounds each, and each keeps its
        // median: a machine that slows down for a moment then weighs on both alike.
        var echoRates: [Double] = []
        var noopRates: [Double] = []
        for _ in 0..<3 {
            let pfd = connect(echoPath)
            echoRates.append(rawPipelined(pfd, window: 64, seconds: seconds / 3))
            close(pfd)
            noopRates.append(pipelined("noop", seconds: seconds / 3))
        }
        let rawRate = echoRates.sorted()[1]
        if ProcessInfo.processInfo.environment["OOPS_BENCH_VERBOSE"] != nil { print("  rounds: echo \(echoRates.map { Int($0) }) noop \(noopRates.map { Int($0) })") }
        report.add(BenchRow(suite: "rpc", name: "pipelined throughput, 64 in flight, one connection", value: noopRates.sorted()[1], unit: "calls/s",
                            baselineName: "raw echo, 64 in flight", baseline: rawRate,
                            note: "goal ≥ 0.50×; an inline method (runs on the reader thread); medians of 3 alternating rounds"))
        report.add(BenchRow(suite: "rpc", name: "pipelined, 64 in flight, method on the handler pool", value: pipelined("noop.pooled", seconds: seconds), unit: "calls/s",
                            baselineName: "raw echo, 64 in flight", baseline: rawRate, note: "the path of every method that does I/O"))
        let load = runLoad(threads: 64, seconds: seconds) { _ in (try? client.call("noop", ctx: .new())) != nil }
        report.add(BenchRow(suite: "rpc", name: "64 blocking callers (threads), one client", value: Double(load.ops) / load.elapsed, unit: "calls/s",
                            baselineName: "raw echo, 64 in flight", baseline: rawRate, note: "p99 \(BenchRow.fmt(load.samples.p99)) µs"))
        client.closeAll()
    }
}
