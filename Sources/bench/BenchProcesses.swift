import Foundation
import Harness
import JSON
import RPC
import Runtime

/// Child processes one benchmark case starts (the project's binaries, nginx), in one temp dir,
/// all stopped by `stopAll`, on the shared harness (`ChildProcess`, `TempDir`). The project's
/// binaries are taken from the folder of the bench binary itself (.build/release), which
/// `./oops bench` builds first.
final class BenchProcs: @unchecked Sendable {
    private let tmp: TempDir
    var dir: String { tmp.path }
    private let children = Locked<[(String, ChildProcess)]>([])

    init(_ tag: String) { tmp = TempDir("oops-bench-\(tag)") }

    /// Fixed at start: a rebuild during a run replaces the bench binary, and /proc/self/exe then
    /// names a deleted file. OOPS_BIN is what `./oops` sets.
    static let binDir: String = {
        let env = ProcessInfo.processInfo.environment
        if let d = env["OOPS_BENCH_BIN"] ?? env["OOPS_BIN"] { return d }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.deletingLastPathComponent().path
    }()

    @discardableResult
    func start(_ key: String, _ exe: String, _ args: [String] = [], env: [String: String] = [:]) throws -> ChildProcess {
        let path = exe.hasPrefix("/") ? exe : Self.binDir + "/" + exe
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw RuntimeError("\(path) is missing: build everything first (swift build -c release, as ./oops bench does)")
        }
        let c = try ChildProcess(path, args, env: env, logFile: "\(dir)/\(key).log", name: key)
        children.withLock { $0.append((key, c)) }
        return c
    }

    /// CPU time (user + system, seconds) each running child has used so far, by key, with its
    /// running descendants (node's cluster workers are children of the primary).
    func cpuSeconds() -> [String: Double] {
        var out: [String: Double] = [:]
        for (key, c) in children.withLock({ $0 }) where c.isRunning {
            out[key, default: 0] += Self.treeCPUSeconds(c.pid)
        }
        return out
    }

    /// User + system seconds of `pid` and its running descendants, from /proc.
    static func treeCPUSeconds(_ pid: Int32) -> Double {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var total = 0.0
        var todo = [pid], seen = Set<Int32>()
        while let p = todo.popLast(), seen.insert(p).inserted {
            // /proc/<pid>/stat: the fields after the ")" that ends the command name; utime and
            // stime are the 14th and 15th fields of the whole line.
            if let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") {
                let f = stat[stat.index(after: close)...].split(separator: " ")
                if f.count > 13, let u = Double(f[11]), let k = Double(f[12]) { total += (u + k) / ticks }
            }
            for t in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(p)/task")) ?? [] {
                let kids = (try? String(contentsOfFile: "/proc/\(p)/task/\(t)/children", encoding: .utf8)) ?? ""
                todo += kids.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            }
        }
        return total
    }

    /// "CPU per <unit> X ms: a 1.20, b 0.40, …": the CPU the children used between two
    /// `cpuSeconds()` readings, divided by the units of work done in between.
    static func cpuNote(_ before: [String: Double], _ after: [String: Double], units: Double, unit: String) -> String {
        let per = after.map { (k, v) in (k, (v - (before[k] ?? 0)) * 1000 / max(1, units)) }.filter { $0.1 >= 0.005 }.sorted { $0.1 > $1.1 }
        return String(format: "CPU per %@ %.2f ms: ", unit, per.reduce(0) { $0 + $1.1 }) + per.map { String(format: "%@ %.2f", $0.0, $0.1) }.joined(separator: ", ")
    }

    func log(_ key: String) -> String { (try? String(contentsOfFile: "\(dir)/\(key).log", encoding: .utf8)) ?? "" }

    /// The pid of the running child started under `key`.
    func pid(_ key: String) -> Int32? { children.withLock { $0.last { $0.0 == key && $0.1.isRunning }?.1.pid } }

    /// Threads and resident memory (MiB) of a running process, from /proc.
    static func threadsAndRSS(pid: Int32) -> (threads: Int, rssMiB: Double) {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Double {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Double($0) } ?? 0
        }
        return (Int(field("Threads")), field("VmRSS") / 1024)
    }

    /// SIGTERM, then SIGKILL after `graceMs`.
    func stop(_ key: String, graceMs: Int = 5000) {
        let cs = children.withLock { list -> [ChildProcess] in
            let found = list.filter { $0.0 == key }.map(\.1)
            list.removeAll { $0.0 == key }
            return found
        }
        for c in cs { c.stop(graceMs: graceMs) }
    }

    func stopAll() {
        // Reverse start order: the Gateway and services go before the sandbox.
        let cs = children.withLock { l -> [ChildProcess] in let r = l.reversed().map(\.1); l.removeAll(); return r }
        for c in cs { c.stop(graceMs: 5000) }
    }

    func cleanup() {
        stopAll()
        tmp.remove()
    }
}

/// The OOPS process set on free ports in a temp dir, configured like `./oops run` (redis with AOF
/// everysec, SQLite WAL per service), with rate limits lifted: the benchmarks measure capacity,
/// not the limiter.
final class BenchSystem: @unchecked Sendable {
    let procs: BenchProcs
    let redis: RedisServer
    var redisPort: UInt16 { redis.port }
    let httpPort = freePort()
    /// The Gateway's operator listener: a free port, so that a bench never collides with a running `./oops run`.
    let adminPort = freePort()
    let sandboxPort = freePort()
    var redisURL: String { "redis://127.0.0.1:\(redisPort)" }
    let runDir: String
    var env: [String: String]

    struct Parts: OptionSet {
        let rawValue: Int
        static let sandbox = Parts(rawValue: 1)
        static let services = Parts(rawValue: 2)  // auth, wallet, order
        static let workers = Parts(rawValue: 4)   // ParcelXSvc
        static let gateway = Parts(rawValue: 8)
        static let all: Parts = [.sandbox, .services, .workers, .gateway]
    }

    init(_ tag: String, parts: Parts, extraEnv: [String: String] = [:]) throws {
        procs = BenchProcs(tag)
        runDir = procs.dir + "/run"
        let data = procs.dir + "/data", logs = procs.dir + "/log"
        env = [:]
        // redis-server as the tests start it: AOF everysec, like supervisor.conf's [program:redis].
        do { redis = try RedisServer() } catch { procs.cleanup(); throw error }
        for d in [runDir, data, logs] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        chmod(runDir, 0o750)
        env = [
            "OOPS_RUN_DIR": runDir, "OOPS_DATA_DIR": data, "OOPS_LOG_DIR": logs, "OOPS_REDIS_URL": "redis://127.0.0.1:\(redisPort)",
            "OOPS_HTTP_ADDR": "127.0.0.1:\(httpPort)", "OOPS_ADMIN_ADDR": "127.0.0.1:\(adminPort)", "OOPS_SANDBOX_ADDR": "127.0.0.1:\(sandboxPort)",
            "PARCELX_BASE_URL": "http://127.0.0.1:\(sandboxPort)", "OOPS_LOG_LEVEL": "warn", "OOPS_INSTANCE": "0",
            "OOPS_RATE_IP_PER_S": "10000000", "OOPS_RATE_IP_BURST": "10000000", "OOPS_RATE_USER_PER_S": "10000000",
            "OOPS_RATE_USER_BURST": "10000000", "OOPS_RATE_LOGIN_PER_MIN": "10000000", "OOPS_RATE_LOGIN_BURST": "10000000",
            "OOPS_RATE_REGISTER_PER_MIN": "10000000", "OOPS_RATE_REGISTER_BURST": "10000000",
            "OOPS_ADMIN_EMAIL": "admin@bench.test", "OOPS_ADMIN_PASSWORD": "bench-admin-password",
        ]
        for (k, v) in extraEnv { env[k] = v }
        do {
            if parts.contains(.sandbox) {
                try procs.start("sandbox", "ParcelXSandbox", env: env)
                guard waitUntil(timeoutMs: 15_000, { (try? HTTPConn(port: self.sandboxPort).request("GET", "/healthz").status) == 200 }) else {
                    throw RuntimeError("sandbox did not start: \(procs.log("sandbox").suffix(1000))")
                }
            }
            if parts.contains(.services) { for s in ["auth", "wallet", "order"] { try startService(s) } }
            if parts.contains(.workers) { try startService("parcelx") }
            if parts.contains(.gateway) {
                try procs.start("gateway", "Gateway", env: env)
                guard waitUntil(timeoutMs: 20_000, { (try? HTTPConn(port: self.httpPort).request("GET", "/readyz").status) == 200 }) else {
                    throw RuntimeError("gateway not ready: \(procs.log("gateway").suffix(1000))")
                }
            }
        } catch {
            cleanup()
            throw error
        }
    }

    static let binaries = ["auth": "AuthSvc", "wallet": "WalletSvc", "order": "OrderSvc", "parcelx": "ParcelXSvc"]

    /// Starts service `s`; `key` names its process and log (default `s`), and an `OOPS_RUN_DIR` in
    /// `extraEnv` puts its socket elsewhere (another cell).
    func startService(_ s: String, key: String? = nil, extraEnv: [String: String] = [:]) throws {
        var e = env
        for (k, v) in extraEnv { e[k] = v }
        let key = key ?? s
        let sock = "\(e["OOPS_RUN_DIR"] ?? runDir)/\(s)-0.sock"
        unlink(sock)
        let p = try procs.start(key, Self.binaries[s]!, env: e)
        guard waitUntil(timeoutMs: 15_000, { FileManager.default.fileExists(atPath: sock) || !p.isRunning }), p.isRunning else {
            throw RuntimeError("\(key) did not start: \(procs.log(key).suffix(1500))")
        }
    }

    func rpc(_ service: String, poolSize: Int = 2) -> RPCClient { RPCClient(runDir: runDir, service: service, poolSize: poolSize) }

    func cleanup() {
        procs.cleanup()
        redis.stop()
    }

    // MARK: merchant setup over RPC

    static let admin = Actor(userId: "bench", role: .admin)

    static let kycBody: JSON = [
        "businessType": "proprietorship", "legalName": "Acme Traders", "pan": "ABCDE1234F",
        "address": ["line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"],
        "bank": ["accountNumber": "123456789012", "ifsc": "HDFC0001234", "holderName": "Acme Traders"],
    ]

    static func orderBody(_ clientOrderId: String) -> JSON {
        [
            "clientOrderId": .string(clientOrderId),
            "consignee": ["name": "Ravi Kumar", "mobile": "9876543210", "address1": "221B Park Street", "pincode": "700016", "city": "Kolkata", "state": "West Bengal"],
            "pickupAddressId": "WH-1",
            "payment": ["mode": "prepaid"],
            "package": ["weightGrams": 1200, "lengthCm": 20, "widthCm": 15, "heightCm": 10],
            "items": [["sku": "SKU-1", "name": "Tea", "quantity": 2, "pricePaise": 25000]],
        ]
    }

    /// A merchant with approved KYC and `topups` × ₹1 crore in the wallet; returns its id and access token.
    func merchant(topups: Int = 3) throws -> (userId: String, token: String) {
        let auth = rpc("auth", poolSize: 1), wallet = rpc("wallet", poolSize: 1)
        defer { auth.closeAll(); wallet.closeAll() }
        let email = "bench-\(UInt32.random(in: 0...UInt32.max))@shop.test"
        let s = try auth.call("auth.register", ["email": .string(email), "password": "correct-horse-42", "name": "Bench Shop", "phone": "9876543210"],
                              ctx: .new(actor: nil, timeoutMs: 30_000))
        guard let uid = s["user"]?["id"]?.stringValue, let token = s["accessToken"]?.stringValue else { throw RuntimeError("register: \(s)") }
        let m = Actor(userId: uid, role: .merchant)
        _ = try auth.call("kyc.submit", Self.kycBody, ctx: .new(actor: m, timeoutMs: 10_000))
        _ = try auth.call("kyc.approve", ["userId": .string(uid)], ctx: .new(actor: Self.admin, timeoutMs: 10_000))
        for i in 0..<topups {
            _ = try wallet.call("wallet.topup", ["amountPaise": 1_000_000_000, "idempotencyKey": .string("bench-\(uid)-\(i)")], ctx: .new(actor: m, timeoutMs: 10_000))
        }
        return (uid, token)
    }
}

/// A blocking TCP connection to loopback.
final class TCPConn {
    let fd: Int32
    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if r != 0 { Glibc.close(fd); throw RuntimeError("connect to port \(port) failed: errno \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
    func write(_ b: [UInt8]) -> Bool {
        var off = 0
        while off < b.count {
            let n = b.withUnsafeBytes { send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            off += n
        }
        return true
    }
    func close() { Glibc.close(fd) }
}

/// A minimal HTTP/1.1 keep-alive client for load phases: one request at a time per connection,
/// Content-Length or chunked answers. URLSession costs more CPU than the server under test.
final class HTTPConn {
    private let conn: TCPConn
    private var buf: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 65536)

    init(port: UInt16) throws { conn = try TCPConn(port: port) }
    deinit { conn.close() }

    func request(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8]? = nil) throws -> (status: Int, body: [UInt8]) {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if let b = body { head += "Content-Type: application/json\r\nContent-Length: \(b.count)\r\n" }
        head += "\r\n"
        guard conn.write(Array(head.utf8) + (body ?? [])) else { throw RuntimeError("http write failed") }
        // Headers.
        var headerEnd = -1
        while headerEnd < 0 {
            headerEnd = Self.find(buf, [13, 10, 13, 10])
            if headerEnd < 0 { try fill() }
        }
        let headText = String(decoding: buf[0..<headerEnd], as: UTF8.self)
        buf.removeFirst(headerEnd + 4)
        let lines = headText.split(separator: "\r\n")
        let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        var length = 0
        var chunked = false
        for l in lines.dropFirst() {
            let lower = l.lowercased()
            if lower.hasPrefix("content-length:") { length = Int(lower.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0 }
            if lower.hasPrefix("transfer-encoding:") && lower.contains("chunked") { chunked = true }
        }
        if !chunked {
            while buf.count < length { try fill() }
            let b = Array(buf[0..<length])
            buf.removeFirst(length)
            return (status, b)
        }
        var out: [UInt8] = []
        while true {
            var e = Self.find(buf, [13, 10])
            while e < 0 { try fill(); e = Self.find(buf, [13, 10]) }
            let size = Int(String(decoding: buf[0..<e], as: UTF8.self).split(separator: ";").first ?? "0", radix: 16) ?? 0
            buf.removeFirst(e + 2)
            while buf.count < size + 2 { try fill() }
            out += buf[0..<size]
            buf.removeFirst(size + 2)
            if size == 0 { return (status, out) }
        }
    }

    private func fill() throws {
        let n = read(conn.fd, &chunk, chunk.count)
        if n <= 0 { throw RuntimeError("http connection closed") }
        buf += chunk[0..<n]
    }

    private static func find(_ h: [UInt8], _ n: [UInt8]) -> Int {
        guard h.count >= n.count else { return -1 }
        var i = 0
        while i <= h.count - n.count {
            if h[i] == n[0] {
                var ok = true
                for j in 1..<n.count where h[i + j] != n[j] { ok = false; break }
                if ok { return i }
            }
            i += 1
        }
        return -1
    }
}

/// Runs `clients` threads, each with its own state from `setup`, calling `body` until `seconds`
/// pass; like `runLoad` but with per-client state (a connection) and counting failures apart.
func runClients<S>(_ clients: Int, seconds: Double, setup: @escaping @Sendable (Int) throws -> S,
                   _ body: @escaping @Sendable (inout S, Int) -> Bool) -> (ops: Int, failed: Int, samples: Samples, elapsed: Double) {
    let results = Locked<(Int, Int, [UInt64])>((0, 0, []))
    let group = DispatchGroup()
    let start = DispatchSemaphore(value: 0)
    let ready = DispatchSemaphore(value: 0)
    let deadline = Locked<UInt64>(0)
    for c in 0..<clients {
        group.enter()
        let t = Thread {
            defer { group.leave() }
            guard var state = try? setup(c) else { ready.signal(); return }
            ready.signal()
            start.wait()
            let end = deadline.current
            var n = 0, f = 0
            var lat: [UInt64] = []
            lat.reserveCapacity(10_000)
            while Clock.monotonicNanos() < end {
                let s = Clock.monotonicNanos()
                if body(&state, c) { n += 1; lat.append(Clock.monotonicNanos() - s) } else { f += 1 }
            }
            results.withLock { $0.0 += n; $0.1 += f; $0.2.append(contentsOf: lat) }
        }
        t.stackSize = 1 << 20
        t.start()
    }
    for _ in 0..<clients { ready.wait() }
    let t0 = Clock.monotonicNanos()
    deadline.withLock { $0 = t0 + UInt64(seconds * 1e9) }
    for _ in 0..<clients { start.signal() }
    group.wait()
    let elapsed = Double(Clock.monotonicNanos() - t0) / 1e9
    let (ops, failed, lat) = results.current
    return (ops, failed, Samples(nanos: lat), elapsed)
}

/// A short random tag for unique ids across runs.
func benchTag() -> String { String(UInt32.random(in: 0...UInt32.max), radix: 36) }
