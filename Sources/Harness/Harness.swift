import Foundation
import Runtime

// The harness the tests and the benchmarks share: temp dirs, free ports, child processes, a
// real redis-server. Tests get it through TestSupport (which re-exports it) with their own
// process sets on top (ProcessSet, OOPSSystem, MongoDB); `bench` uses it directly.

/// A fresh temporary directory, removed by `remove()`.
public final class TempDir: Sendable {
    public let path: String
    public init(_ tag: String = "oops") {
        let p = NSTemporaryDirectory() + "\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        path = p
    }
    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Asks the kernel for a free TCP port on loopback.
public func freePort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return UInt16(bigEndian: addr.sin_port)
}

/// Finds an executable on PATH (or common sbin dirs).
public func which(_ name: String) -> String? {
    let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/bin", "/usr/local/bin"]
    for d in dirs where FileManager.default.isExecutableFile(atPath: "\(d)/\(name)") { return "\(d)/\(name)" }
    return nil
}

/// A child process started by a test; killed (SIGKILL) by `kill()` or `stop()` (SIGTERM).
public final class ChildProcess: @unchecked Sendable {
    public let process: Process
    public let name: String

    public init(_ executable: String, _ args: [String], env: [String: String] = [:], logFile: String? = nil, name: String? = nil) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        if let lf = logFile {
            _ = FileManager.default.createFile(atPath: lf, contents: nil)
            let h = FileHandle(forWritingAtPath: lf)
            p.standardOutput = h
            p.standardError = h
        } else {
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
        }
        try p.run()
        process = p
        self.name = name ?? (executable as NSString).lastPathComponent
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    public func kill9() {
        if process.isRunning { Foundation.kill(pid, SIGKILL) }
        process.waitUntilExit()
    }

    /// SIGTERM, then SIGKILL after `graceMs`. Returns the exit status.
    @discardableResult
    public func stop(graceMs: Int = 5000) -> Int32 {
        if process.isRunning {
            Foundation.kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(Double(graceMs) / 1000)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning { Foundation.kill(pid, SIGKILL) }
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Runs `body(0..<n)` on `n` threads released at the same instant, and waits for all of them
/// (at most `timeoutSeconds`, when given; returns whether they all finished).
/// DispatchQueue.concurrentPerform would run only as many at once as there are cores (two on
/// CI), which is no race at all.
@discardableResult
public func inParallel(_ n: Int, timeoutSeconds: Double? = nil, _ body: @escaping @Sendable (Int) -> Void) -> Bool {
    let ready = DispatchGroup()
    let done = DispatchGroup()
    let gate = DispatchSemaphore(value: 0)
    for i in 0..<n {
        ready.enter()
        done.enter()
        let t = Thread {
            ready.leave()
            gate.wait()
            body(i)
            done.leave()
        }
        t.stackSize = 1 << 20
        t.start()
    }
    ready.wait()
    for _ in 0..<n { gate.signal() }
    guard let timeoutSeconds else {
        done.wait()
        return true
    }
    return done.wait(timeout: .now() + timeoutSeconds) == .success
}

/// After SIGSTOP: waits until the kernel reports the process stopped (state `T`). On a loaded
/// machine a thread already running may still answer a request right after `kill` returned.
@discardableResult
public func waitUntilStopped(_ pid: pid_t, timeoutMs: Int = 5000) -> Bool {
    waitUntil(timeoutMs: timeoutMs) {
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return stat.split(separator: ")").last?.split(separator: " ").first == "T"
    }
}

/// Polls `cond` until it is true or `timeoutMs` passes.
@discardableResult
public func waitUntil(timeoutMs: Int = 10_000, intervalMs: Int = 20, _ cond: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
    while Date() < deadline {
        if cond() { return true }
        usleep(UInt32(intervalMs * 1000))
    }
    return cond()
}

/// A real redis-server on a free loopback port in its own temp dir (AOF on), for one test run.
public final class RedisServer: Sendable {
    public let port: UInt16
    public let dir: TempDir
    private let child: Locked<ChildProcess?>
    private let extraArgs: [String]

    public var url: String { "redis://127.0.0.1:\(port)" }

    /// `extraArgs` are added to the command line (e.g. `--replicaof 127.0.0.1 <port>`), also on restart.
    public init(port: UInt16? = nil, extraArgs: [String] = []) throws {
        guard let exe = which("redis-server") else { throw RuntimeError("redis-server not found; the test command installs it (apt-get install redis-server)") }
        let port = port ?? freePort()
        self.port = port
        self.extraArgs = extraArgs
        dir = TempDir("redis")
        child = Locked(nil)
        try start(exe)
    }

    private func start(_ exe: String) throws {
        let c = try ChildProcess(exe, ["--port", "\(port)", "--bind", "127.0.0.1", "--dir", dir.path, "--appendonly", "yes",
                                       "--appendfsync", "everysec", "--save", "", "--daemonize", "no"] + extraArgs,
                                 logFile: dir.path + "/redis.log", name: "redis-server")
        child.withLock { $0 = c }
        guard waitUntil(timeoutMs: 10_000, { RedisServer.ping(port: self.port) }) else {
            throw RuntimeError("redis-server did not start on port \(port)")
        }
    }

    /// Kills and starts the server again on the same port and data (AOF), as after a crash.
    public func restart() throws {
        child.withLock { $0?.kill9() }
        guard let exe = which("redis-server") else { return }
        try start(exe)
    }

    public func kill9() { child.withLock { $0?.kill9() } }

    public func stop() {
        child.withLock { $0?.stop() }
        dir.remove()
    }

    /// Sends PING over a raw socket; true when +PONG comes back.
    public static func ping(port: UInt16) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { return false }
        let msg = Array("PING\r\n".utf8)
        _ = msg.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var buf = [UInt8](repeating: 0, count: 16)
        let n = read(fd, &buf, 16)
        return n >= 5 && String(decoding: buf[0..<5], as: UTF8.self) == "+PONG"
    }
}
