import Foundation
import Runtime

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

    public var url: String { "redis://127.0.0.1:\(port)" }

    public init(port: UInt16? = nil) throws {
        guard let exe = which("redis-server") else { throw RuntimeError("redis-server not found; the test command installs it (apt-get install redis-server)") }
        let port = port ?? freePort()
        self.port = port
        dir = TempDir("redis")
        child = Locked(nil)
        try start(exe)
    }

    private func start(_ exe: String) throws {
        let c = try ChildProcess(exe, ["--port", "\(port)", "--bind", "127.0.0.1", "--dir", dir.path, "--appendonly", "yes",
                                       "--appendfsync", "everysec", "--save", "", "--daemonize", "no"],
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

/// The folder holding the built executables of this package (next to the test bundle).
public func productsDirectory() -> String {
    if let d = ProcessInfo.processInfo.environment["OOPS_BIN_DIR"] { return d }
    // .build/<triple>/debug/<Name>PackageTests.xctest -> .build/<triple>/debug
    for b in Bundle.allBundles where b.bundlePath.hasSuffix(".xctest") {
        return b.bundleURL.deletingLastPathComponent().path
    }
    return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
}

/// A set of OOPS processes started from the built binaries in a temp dir, like the run command
/// does but on free ports and private sockets. Used by integration tests of services.
public final class ProcessSet: @unchecked Sendable {
    public let dir: TempDir
    public let runDir: String
    public let dataDir: String
    public var env: [String: String]
    private let children = Locked<[String: ChildProcess]>([:])

    /// Binary name for a socket service name.
    public static let binaries = ["auth": "AuthSvc", "wallet": "WalletSvc", "order": "OrderSvc", "parcelx": "ParcelXSvc"]

    public init(env extra: [String: String] = [:]) {
        dir = TempDir("oops-sys")
        runDir = dir.path + "/run"
        dataDir = dir.path + "/data"
        try? FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        env = ["OOPS_RUN_DIR": runDir, "OOPS_DATA_DIR": dataDir, "OOPS_LOG_LEVEL": "warn"]
        for (k, v) in extra { env[k] = v }
    }

    /// Starts instance `instance` of `service` (auth, wallet, order, parcelx) and waits for its socket.
    @discardableResult
    public func start(_ service: String, instance: Int = 0, extraEnv: [String: String] = [:]) throws -> ChildProcess {
        let bin = productsDirectory() + "/" + (ProcessSet.binaries[service] ?? service)
        var e = env
        e["OOPS_INSTANCE"] = "\(instance)"
        for (k, v) in extraEnv { e[k] = v }
        let key = "\(service)-\(instance)"
        let c = try ChildProcess(bin, [], env: e, logFile: "\(dir.path)/\(key).log", name: key)
        children.withLock { $0[key] = c }
        let sock = "\(runDir)/\(key).sock"
        guard waitUntil(timeoutMs: 15_000, { FileManager.default.fileExists(atPath: sock) || !c.isRunning }), c.isRunning else {
            let log = (try? String(contentsOfFile: "\(dir.path)/\(key).log", encoding: .utf8)) ?? ""
            throw RuntimeError("\(key) did not start: \(log.suffix(2000))")
        }
        return c
    }

    /// Starts any other binary (Gateway, ParcelXSandbox) with this set's environment.
    @discardableResult
    public func startBinary(_ name: String, key: String, args: [String] = [], extraEnv: [String: String] = [:]) throws -> ChildProcess {
        var e = env
        for (k, v) in extraEnv { e[k] = v }
        let c = try ChildProcess(productsDirectory() + "/" + name, args, env: e, logFile: "\(dir.path)/\(key).log", name: key)
        children.withLock { $0[key] = c }
        return c
    }

    public func child(_ key: String) -> ChildProcess? { children.current[key] }

    public func log(_ key: String) -> String { (try? String(contentsOfFile: "\(dir.path)/\(key).log", encoding: .utf8)) ?? "" }

    public func stopAll() {
        for c in children.current.values { c.stop(graceMs: 3000) }
        children.withLock { $0 = [:] }
    }

    public func cleanup() {
        stopAll()
        dir.remove()
    }
}
