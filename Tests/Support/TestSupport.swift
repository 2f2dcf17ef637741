import Foundation
@_exported import Harness
import Runtime
import JSON
import Store
import XCTest
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A test tool that is missing: a skip on a developer's machine, but a failure in CI
/// (`CI=true`), where every tool must be installed and a skip would hide untested code.
public func missingTestTool(_ message: String) -> Error {
    if ProcessInfo.processInfo.environment["CI"] == "true" {
        return RuntimeError("\(message) (CI=true: a missing test tool fails the run instead of skipping)")
    }
    return XCTSkip(message)
}

/// A MongoDB-wire server for tests: secantusd-py (the PyPI package secantusdb, which the test
/// command installs into .build/venv) on a free loopback port, its data in its own temp dir so
/// that `restart()` keeps it. It presents itself as a single-node replica set. It is a Python
/// reimplementation, slower than mongod; where it differs from MongoDB's documented behaviour
/// the project follows MongoDB. With `testCommands`, `configureFailPoint` is enabled (slow or
/// failing commands on demand).
public final class MongoServer: Sendable {
    public let port: UInt16
    public let dir: TempDir
    private let executable: String
    private let testCommands: Bool
    private let child: Locked<ChildProcess?>

    /// secantusd-py from PATH, or from the venv `./oops test` made next to this build.
    public static func executable() -> String? {
        if let p = which("secantusd-py") { return p }
        // productsDirectory() is .build/<triple>/<configuration>; the venv is .build/venv.
        let venv = URL(fileURLWithPath: productsDirectory()).deletingLastPathComponent().deletingLastPathComponent().path + "/venv/bin/secantusd-py"
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : nil
    }

    /// Starts a server (on `port`, or a free one); throws `missingTestTool` when secantusd-py is
    /// not installed.
    public init(testCommands: Bool = false, port: UInt16? = nil) throws {
        guard let exe = MongoServer.executable() else {
            throw missingTestTool("secantusd-py (the MongoDB-wire test server) is not installed: run ./oops test, which installs secantusdb==0.7.0b3 into .build/venv, or put it on PATH")
        }
        executable = exe
        self.testCommands = testCommands
        self.port = port ?? freePort()
        dir = TempDir("mongo")
        child = Locked(nil)
        try start()
    }

    /// `mongodb://127.0.0.1:<port>/<database>`
    public func uri(database: String) -> String { "mongodb://127.0.0.1:\(port)/\(database)" }

    private func start() throws {
        // --sync-on-commit: MongoDB acknowledges a w: majority write only once it is in the
        // journal (writeConcernMajorityJournalDefault), so it survives a crash; secantusd-py
        // keeps that promise only with this flag (without it, kill -9 lost acknowledged writes).
        var args = ["--host", "127.0.0.1", "--port", "\(port)", "--storage-path", dir.path + "/data", "--log-level", "WARNING", "--sync-on-commit"]
        if testCommands { args.append("--enable-test-commands") }
        let c = try ChildProcess(executable, args, logFile: dir.path + "/mongo.log", name: "secantusd-py")
        child.withLock { $0 = c }
        // About 2 s when idle; generous for a loaded 2-core machine.
        guard waitUntil(timeoutMs: 60_000, intervalMs: 100, { !c.isRunning || MongoServer.ping(port: self.port) }), c.isRunning else {
            let log = (try? String(contentsOfFile: dir.path + "/mongo.log", encoding: .utf8)) ?? ""
            c.kill9()
            throw RuntimeError("secantusd-py did not start on port \(port): \(log.suffix(2000))")
        }
    }

    /// Kills the server and starts it again on the same port and data, as after a crash.
    public func restart() throws {
        kill9()
        try start()
    }

    /// Starts the server again after `kill9()`, on the same port and data.
    public func startAgain() throws { try start() }

    public func kill9() { child.withLock { $0?.kill9() } }

    /// SIGSTOP: the server keeps its connections open but answers nothing (a hung server).
    public func pause() {
        guard let pid = child.withLock({ c -> pid_t? in
            guard let c, c.isRunning else { return nil }
            Foundation.kill(c.pid, SIGSTOP)
            return c.pid
        }) else { return }
        _ = waitUntilStopped(pid)
    }
    public func resume() { child.withLock { c in if let c, c.isRunning { Foundation.kill(c.pid, SIGCONT) } } }

    /// The server's log so far (for failure messages).
    public var log: String { (try? String(contentsOfFile: dir.path + "/mongo.log", encoding: .utf8)) ?? "" }

    /// Ends the server and removes its data. SIGKILL rather than SIGTERM (after which it takes
    /// up to 8 s): nothing of it is kept, and a test that starts one per test would wait that
    /// long every time.
    public func stop() {
        kill9()
        dir.remove()
    }

    /// Makes the server hold each of `commands` for `ms` before answering (configureFailPoint
    /// failCommand with blockConnection; needs `testCommands`). Returns the server's error, or nil.
    @discardableResult
    public func delay(_ commands: [String], ms: Int) -> String? {
        MongoServer.command(port: port, [("configureFailPoint", "failCommand"), ("mode", "alwaysOn"),
                                         ("data", ["failCommands": .array(commands.map { .string($0) }), "blockConnection": true, "blockTimeMS": .int(Int64(ms))])])
    }

    /// Clears `delay`. Returns the server's error, or nil.
    @discardableResult
    public func clearDelay() -> String? {
        MongoServer.command(port: port, [("configureFailPoint", "failCommand"), ("mode", "off")])
    }

    /// True when the server answers a `ping` command.
    public static func ping(port: UInt16) -> Bool { command(port: port, [("ping", 1)]) == nil }

    /// Runs one command on `admin` over a raw OP_MSG, without a driver: nil when the server
    /// answered ok: 1, otherwise what went wrong. Only for the few commands the tests send.
    @discardableResult
    public static func command(port: UInt16, _ cmd: [(String, JSON)], timeoutS: Int = 5) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "no socket" }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutS, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = port.bigEndian
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else { return "cannot connect to port \(port)" }
        // OP_MSG: header (length, request id, response to, opcode 2013), flag bits, one body section.
        let body = BSONWriter.document(cmd + [("$db", "admin")])
        var msg: [UInt8] = []
        BSONWriter.int32(Int32(16 + 4 + 1 + body.count), into: &msg)
        BSONWriter.int32(1, into: &msg)
        BSONWriter.int32(0, into: &msg)
        BSONWriter.int32(2013, into: &msg)
        BSONWriter.int32(0, into: &msg)
        msg.append(0)
        msg += body
        guard msg.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == msg.count else { return "cannot send" }
        var reply: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &buf, buf.count)
            guard n > 0 else { return "no answer" }
            reply += buf[0..<n]
            if reply.count >= 4 {
                let total = Int(reply[0]) | Int(reply[1]) << 8 | Int(reply[2]) << 16 | Int(reply[3]) << 24
                if reply.count >= total { break }
            }
        }
        // The reply's `ok` field: a double or an int32 equal to 1.
        let text = String(decoding: reply.map { $0 >= 32 && $0 < 127 ? $0 : 46 }, as: UTF8.self)
        for (type, size) in [(UInt8(0x01), 8), (UInt8(0x10), 4)] {
            let key: [UInt8] = [type, 0x6f, 0x6b, 0]
            guard let at = reply.indices.first(where: { reply[$0...].starts(with: key) }), at + 4 + size <= reply.count else { continue }
            let v = Array(reply[(at + 4)..<(at + 4 + size)])
            let ok = size == 8 ? Double(bitPattern: v.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }) == 1
                               : v == [1, 0, 0, 0]
            return ok ? nil : "refused: \(text.suffix(400))"
        }
        return "no ok field: \(text.suffix(400))"
    }
}

/// Where the services' store lives in a test.
public enum StoreBackend: String, Sendable, CaseIterable {
    case sqlite, mongodb
}

/// The MongoDB a test's services use: a database named `oops_t<random>` on the server that
/// OOPS_TEST_MONGODB_URI names (a real mongod; the database is left there), or otherwise a test
/// server of its own (`MongoServer`, with test commands), stopped by `stop()`.
public final class TestMongo: Sendable {
    /// The server this test started; nil with OOPS_TEST_MONGODB_URI (such a test cannot crash it).
    public let server: MongoServer?
    /// For OOPS_MONGODB_URI.
    public let uri: String

    public init() throws {
        let database = "oops_t\(UInt32.random(in: 0...UInt32.max))"
        if let given = ProcessInfo.processInfo.environment["OOPS_TEST_MONGODB_URI"], !given.isEmpty {
            server = nil
            uri = MongoStore.uri(given, database: database)
        } else {
            let s = try MongoServer(testCommands: true)
            server = s
            uri = s.uri(database: database)
        }
    }

    /// The test server, for tests that crash, stop or slow it; a missing-tool error (skip, or a
    /// failure under CI) when the tests run against OOPS_TEST_MONGODB_URI.
    public func controllableServer() throws -> MongoServer {
        guard let server else { throw missingTestTool("this test crashes or slows its MongoDB, so it needs the test server, not OOPS_TEST_MONGODB_URI") }
        return server
    }

    public func stop() { server?.stop() }
}

/// Just enough BSON to send a test command: strings, booleans, 64-bit integers, doubles,
/// arrays and documents (members of a JSON object in key order; the command name comes first
/// because the top level is a list).
enum BSONWriter {
    static func int32(_ v: Int32, into out: inout [UInt8]) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }

    static func document(_ members: [(String, JSON)]) -> [UInt8] {
        var out: [UInt8] = []
        for (k, v) in members { element(k, v, into: &out) }
        var doc: [UInt8] = []
        int32(Int32(4 + out.count + 1), into: &doc)
        return doc + out + [0]
    }

    private static func element(_ key: String, _ v: JSON, into out: inout [UInt8]) {
        func head(_ type: UInt8) { out.append(type); out += Array(key.utf8); out.append(0) }
        switch v {
        case .null: head(0x0a)
        case .bool(let b): head(0x08); out.append(b ? 1 : 0)
        case .int(let i): head(0x12); withUnsafeBytes(of: i.littleEndian) { out += $0 }
        case .double(let d): head(0x01); withUnsafeBytes(of: d.bitPattern.littleEndian) { out += $0 }
        case .string(let s):
            head(0x02)
            int32(Int32(s.utf8.count + 1), into: &out)
            out += Array(s.utf8)
            out.append(0)
        case .array(let a): head(0x04); out += document(a.enumerated().map { ("\($0.offset)", $0.element) })
        case .object(let o): head(0x03); out += document(o.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        }
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

    /// Where the services keep their data: SQLite files in `dataDir`, or MongoDB.
    public var backend: StoreBackend { mongo == nil ? .sqlite : .mongodb }
    /// The MongoDB the services use (`OOPS_MONGODB_URI`), for the MongoDB backend; stopped by `cleanup()`.
    public let mongo: TestMongo?

    public convenience init(env extra: [String: String] = [:]) {
        self.init(env: extra, mongo: nil)
    }

    /// A process set on `backend`; for MongoDB, a database of its own (see `TestMongo`).
    public convenience init(backend: StoreBackend, env extra: [String: String] = [:]) throws {
        let mongo = backend == .mongodb ? try TestMongo() : nil
        var e = extra
        if let m = mongo { e["OOPS_MONGODB_URI"] = m.uri }
        self.init(env: e, mongo: mongo)
    }

    private init(env extra: [String: String], mongo: TestMongo?) {
        self.mongo = mongo
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
        // A socket left by a killed instance must not count as the new one being up.
        unlink("\(runDir)/\(key).sock")
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
        mongo?.stop()
        dir.remove()
    }
}

/// An HTTP answer as a test sees it.
public struct HTTPResult: Sendable {
    public let status: Int
    public let headers: [String: String]
    public let body: JSON
    public let text: String
    public func header(_ n: String) -> String? { headers.first { $0.key.lowercased() == n.lowercased() }?.value }
}

/// A small synchronous HTTP client for tests (URLSession underneath).
public enum HTTP {
    public static func request(_ method: String, _ url: String, headers: [String: String] = [:], body: JSON? = nil, rawBody: [UInt8]? = nil,
                               timeoutS: Double = 30) -> HTTPResult {
        var req = URLRequest(url: URL(string: url)!)
        req.httpMethod = method
        req.timeoutInterval = timeoutS
        for (k, v) in headers { req.setValue(v, forHTTPHeaderField: k) }
        if let b = body {
            req.httpBody = Data(b.serializedBytes())
            if headers["Content-Type"] == nil { req.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        } else if let r = rawBody {
            req.httpBody = Data(r)
        }
        let sem = DispatchSemaphore(value: 0)
        let box = Locked<(Int, [String: String], Data)>((0, [:], Data()))
        URLSession.shared.dataTask(with: req) { data, resp, _ in
            let h = resp as? HTTPURLResponse
            var hs: [String: String] = [:]
            for (k, v) in h?.allHeaderFields ?? [:] { hs["\(k)"] = "\(v)" }
            box.withLock { $0 = (h?.statusCode ?? 0, hs, data ?? Data()) }
            sem.signal()
        }.resume()
        sem.wait()
        let (status, hs, data) = box.current
        let text = String(decoding: data, as: UTF8.self)
        let json = (try? JSONParser.parse([UInt8](data))) ?? .null
        return HTTPResult(status: status, headers: hs, body: json, text: text)
    }
}

/// The whole OOPS process set (redis-server, sandbox, every service, the Gateway) on free ports
/// in a temp dir, as the run command starts it, for end-to-end tests.
public final class OOPSSystem: @unchecked Sendable {
    public let redis: RedisServer
    public let procs: ProcessSet
    public let httpPort: UInt16
    /// The Gateway's operator listener (`OOPS_ADMIN_ADDR`): /metrics and the detailed /readyz.
    public let adminPort: UInt16
    public let sandboxPort: UInt16
    public let adminEmail = "admin@oops.test"
    public let adminPassword = "admin-password-123"
    public var base: String { "http://127.0.0.1:\(httpPort)" }
    public var adminBase: String { "http://127.0.0.1:\(adminPort)" }
    public var sandbox: String { "http://127.0.0.1:\(sandboxPort)" }

    public init(extraEnv: [String: String] = [:], parcelxInstances: Int = 1, backend: StoreBackend = .sqlite) throws {
        redis = try RedisServer()
        httpPort = freePort()
        adminPort = freePort()
        sandboxPort = freePort()
        var env: [String: String] = [
            "OOPS_REDIS_URL": redis.url, "OOPS_HTTP_ADDR": "127.0.0.1:\(httpPort)", "OOPS_ADMIN_ADDR": "127.0.0.1:\(adminPort)",
            "OOPS_SANDBOX_ADDR": "127.0.0.1:\(sandboxPort)",
            "PARCELX_BASE_URL": "http://127.0.0.1:\(sandboxPort)", "OOPS_ADMIN_EMAIL": adminEmail, "OOPS_ADMIN_PASSWORD": adminPassword,
            "PARCELX_TIMEOUT_MS": "1500", "PARCELX_TOTAL_TIMEOUT_MS": "2000", "OOPS_ORDER_RECOVERY_MS": "1000",
            "OOPS_RATE_IP_PER_S": "100000", "OOPS_RATE_IP_BURST": "100000", "OOPS_RATE_LOGIN_PER_MIN": "100000", "OOPS_RATE_LOGIN_BURST": "100000",
            "OOPS_RATE_REGISTER_PER_MIN": "100000", "OOPS_RATE_REGISTER_BURST": "100000",
        ]
        for (k, v) in extraEnv { env[k] = v }
        do {
            procs = try ProcessSet(backend: backend, env: env)
        } catch {
            redis.stop()
            throw error
        }
        try procs.startBinary("ParcelXSandbox", key: "sandbox")
        for s in ["auth", "wallet", "order"] { try procs.start(s) }
        for i in 0..<parcelxInstances { try procs.start("parcelx", instance: i) }
        try procs.startBinary("Gateway", key: "gateway")
        guard waitUntil(timeoutMs: 20_000, { HTTP.request("GET", "\(self.base)/readyz", timeoutS: 3).status == 200 }) else {
            let r = HTTP.request("GET", "\(base)/readyz", timeoutS: 3)
            throw RuntimeError("system not ready: \(r.status) \(r.text) gateway log: \(procs.log("gateway").suffix(1500))")
        }
    }

    public func stop() {
        procs.cleanup()
        redis.stop()
    }

    public func call(_ method: String, _ path: String, token: String? = nil, body: JSON? = nil, headers: [String: String] = [:]) -> HTTPResult {
        var h = headers
        if let t = token { h["Authorization"] = "Bearer \(t)" }
        return HTTP.request(method, base + path, headers: h, body: body)
    }

    /// Starts one more Gateway over this system's services and Redis, with `extraEnv`, on free
    /// public and operator ports of its own (two Gateways must not share either); does not wait.
    @discardableResult
    public func startExtraGateway(_ key: String, extraEnv: [String: String] = [:]) throws -> (httpPort: UInt16, adminPort: UInt16) {
        let http = freePort(), admin = freePort()
        var e = extraEnv
        e["OOPS_HTTP_ADDR"] = "127.0.0.1:\(http)"
        e["OOPS_ADMIN_ADDR"] = "127.0.0.1:\(admin)"
        try procs.startBinary("Gateway", key: key, extraEnv: e)
        return (http, admin)
    }

    /// A GET on the operator listener (`/metrics`, `/readyz` with details), which asks for no credential.
    public func operatorGet(_ path: String, timeoutS: Double = 10) -> HTTPResult {
        HTTP.request("GET", adminBase + path, timeoutS: timeoutS)
    }

    public func adminToken() -> String { Self.adminToken(base: base, email: adminEmail, password: adminPassword) }

    public static func adminToken(base: String, email: String, password: String) -> String {
        HTTP.request("POST", base + "/auth/login", body: ["email": .string(email), "password": .string(password)]).body["accessToken"]?.stringValue ?? ""
    }

    /// Registers a merchant; with `approved`, passes KYC through the admin; with `balancePaise`, tops up.
    public func merchant(_ tag: String = "m", approved: Bool = true, balancePaise: Int64 = 0) -> (userId: String, token: String) {
        Self.merchant(base: base, adminToken: approved ? adminToken() : "", tag, approved: approved, balancePaise: balancePaise)
    }

    /// `merchant` against any Gateway (or a balancer in front of several) at `base`.
    public static func merchant(base: String, adminToken: String, _ tag: String = "m", approved: Bool = true,
                                balancePaise: Int64 = 0) -> (userId: String, token: String) {
        func call(_ method: String, _ path: String, token: String? = nil, body: JSON? = nil, headers: [String: String] = [:]) -> HTTPResult {
            var h = headers
            if let t = token { h["Authorization"] = "Bearer \(t)" }
            return HTTP.request(method, base + path, headers: h, body: body)
        }
        let email = "\(tag)-\(UInt32.random(in: 0...UInt32.max))@shop.test"
        let r = call("POST", "/auth/register", body: ["email": .string(email), "password": "correct-horse-42", "name": .string("Shop \(tag)"), "phone": "9876543210"])
        let token = r.body["accessToken"]?.stringValue ?? ""
        let uid = r.body["user"]?["id"]?.stringValue ?? ""
        if approved {
            _ = call("POST", "/kyc", token: token, body: OOPSSystem.kycBody)
            _ = call("POST", "/admin/kyc/\(uid)/approve", token: adminToken)
        }
        if balancePaise > 0 {
            _ = call("POST", "/wallet/topup", token: token, body: ["amountPaise": .int(balancePaise)], headers: ["Idempotency-Key": "seed-\(uid)"])
        }
        return (uid, token)
    }

    public static let kycBody: JSON = [
        "businessType": "proprietorship", "legalName": "Acme Traders", "pan": "ABCDE1234F",
        "address": ["line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka", "pincode": "560001"],
        "bank": ["accountNumber": "123456789012", "ifsc": "HDFC0001234", "holderName": "Acme Traders"],
    ]

    public static func orderBody(_ clientOrderId: String, name: String = "Ravi Kumar", cod: Bool = false) -> JSON {
        [
            "clientOrderId": .string(clientOrderId),
            "consignee": ["name": .string(name), "mobile": "9876543210", "address1": "221B Park Street", "pincode": "700016", "city": "Kolkata", "state": "West Bengal"],
            "pickupAddressId": "WH-1",
            "payment": cod ? ["mode": "cod", "codAmountPaise": 50000] : ["mode": "prepaid"],
            "package": ["weightGrams": 1200, "lengthCm": 20, "widthCm": 15, "heightCm": 10],
            "items": [["sku": "SKU-1", "name": "Tea", "quantity": 2, "pricePaise": 25000]],
        ]
    }
}

// MARK: - crash helpers (chaos tests)

extension ProcessSet {
    /// Kills instance `instance` of `service` with SIGKILL, as a crash would, keeps its log as
    /// `<key>.log.<n>` (a restart truncates the log), and starts it again on the same socket.
    /// The dead process's socket file is removed first, so the wait is for the new one.
    @discardableResult
    public func crashAndRestart(_ service: String, instance: Int = 0, extraEnv: [String: String] = [:]) throws -> ChildProcess {
        let key = "\(service)-\(instance)"
        child(key)?.kill9()
        keepLog(key)
        unlink("\(runDir)/\(key).sock")
        return try start(service, instance: instance, extraEnv: extraEnv)
    }

    /// Kills the binary started under `key` with SIGKILL and starts it again with the same
    /// arguments (the Gateway, the sandbox); the caller waits for readiness.
    @discardableResult
    public func crashAndRestartBinary(_ name: String, key: String, args: [String] = [], extraEnv: [String: String] = [:]) throws -> ChildProcess {
        child(key)?.kill9()
        keepLog(key)
        return try startBinary(name, key: key, args: args, extraEnv: extraEnv)
    }

    /// Every log of `key` so far, older runs first: what `crashAndRestart` set aside, then the live one.
    public func allLogs(_ key: String) -> String {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
            .filter { $0.hasPrefix("\(key).log.") }
            .sorted { (Int($0.split(separator: ".").last ?? "") ?? 0) < (Int($1.split(separator: ".").last ?? "") ?? 0) }
        return names.map { (try? String(contentsOfFile: "\(dir.path)/\($0)", encoding: .utf8)) ?? "" }.joined() + log(key)
    }

    private func keepLog(_ key: String) {
        let fm = FileManager.default
        var n = 1
        while fm.fileExists(atPath: "\(dir.path)/\(key).log.\(n)") { n += 1 }
        try? fm.moveItem(atPath: "\(dir.path)/\(key).log", toPath: "\(dir.path)/\(key).log.\(n)")
    }
}

extension OOPSSystem {
    /// Kills the Gateway with SIGKILL and starts it again; true once `/healthz` answers.
    @discardableResult
    public func crashAndRestartGateway(timeoutMs: Int = 15_000) throws -> Bool {
        try procs.crashAndRestartBinary("Gateway", key: "gateway")
        return waitUntil(timeoutMs: timeoutMs, intervalMs: 50) { HTTP.request("GET", "\(self.base)/healthz", timeoutS: 2).status == 200 }
    }

    /// Sets the sandbox's load knobs (`latencyMs`, `failureRate`, `timeoutMs`); the HTTP status.
    @discardableResult
    public func configureSandbox(latencyMs: Int = 0, failureRate: Double = 0, timeoutMs: Int? = nil) -> Int {
        var body: [String: JSON] = ["latencyMs": .int(Int64(latencyMs)), "failureRate": .double(failureRate)]
        if let t = timeoutMs { body["timeoutMs"] = .int(Int64(t)) }
        return HTTP.request("POST", sandbox + "/__sandbox/config", body: .object(body)).status
    }

    /// Every shipment the sandbox holds.
    public func sandboxShipments() -> [JSON] {
        HTTP.request("GET", sandbox + "/__sandbox/shipments").body["shipments"]?.arrayValue ?? []
    }
}

/// A small seeded generator (SplitMix64), for reproducible random inputs: a test that draws
/// from it prints its seed, and the same seed gives the same inputs again.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
