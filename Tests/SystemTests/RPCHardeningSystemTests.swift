import XCTest
import Foundation
import JSON
@testable import RPC
import Runtime
import TestSupport

/// The limits between the Gateway and the services, and the services' RPC sockets under hostile
/// input, against the real process set with its default limits.
final class RPCHardeningSystemTests: XCTestCase {
    nonisolated(unsafe) static var system: OOPSSystem?
    var sys: OOPSSystem { Self.system! }

    override class func setUp() {
        do {
            system = try OOPSSystem(extraEnv: ["OOPS_RATE_USER_PER_S": "100000", "OOPS_RATE_USER_BURST": "100000"])
        } catch {
            XCTFail("system did not start: \(error)")
        }
    }

    override class func tearDown() {
        system?.stop()
        system = nil
    }

    override func setUpWithError() throws {
        try XCTSkipIf(Self.system == nil, "system did not start")
    }

    /// Every service process is the one started at the beginning, still running.
    func assertNoServiceRestarted(_ pids: [String: Int32], file: StaticString = #filePath, line: UInt = #line) {
        for (key, pid) in pids {
            let c = sys.procs.child(key)
            XCTAssertEqual(c?.pid, pid, "\(key) was replaced", file: file, line: line)
            XCTAssertTrue(c?.isRunning ?? false, "\(key) exited: \(sys.procs.log(key).suffix(1500))", file: file, line: line)
        }
    }

    var servicePids: [String: Int32] {
        var p: [String: Int32] = [:]
        for s in ["auth", "wallet", "order", "parcelx"] { p["\(s)-0"] = sys.procs.child("\(s)-0")?.pid }
        return p
    }

    // MARK: - issue 18, defect 2: a body just under the HTTP limit

    /// Bodies the Gateway accepts (up to its 1 MiB limit) are answered with a clear 4xx, never
    /// 503, and another user's calls over the same pooled RPC connections see no error meanwhile.
    /// Before the fix the Gateway wrapped such a body in an RPC line over the services' line limit
    /// (both 1 MiB), the service dropped the shared connection, and the register call and calls
    /// in flight on that connection got 503 "Connection to service lost".
    func testBodyJustUnderTheLimitGetsA4xxAndBystandersSeeNoError() throws {
        let limit = Config.fromEnvironment(sys.procs.env).httpMaxBodyBytes
        XCTAssertEqual(limit, 1_048_576, "the default limit is under test")
        let m = sys.merchant("bystander", approved: false)
        let stop = Locked(false)
        let seen = Locked<(calls: Int, errors: [String])>((0, []))
        let group = DispatchGroup()
        for _ in 0..<4 {
            group.enter()
            Thread.detachNewThread { [sys] in
                defer { group.leave() }
                while !stop.current {
                    let r = sys.call("GET", "/auth/me", token: m.token)
                    seen.withLock {
                        $0.calls += 1
                        if r.status != 200 { $0.errors.append("\(r.status) \(r.text.prefix(200))") }
                    }
                }
            }
        }
        defer {
            stop.withLock { $0 = true }
            group.wait()
        }
        // Wait until the bystanders are under way, so the large requests overlap their calls.
        XCTAssertTrue(waitUntil(timeoutMs: 20_000) { seen.current.calls >= 20 })

        func padded(_ head: String, _ tail: String, to size: Int) -> [UInt8] {
            Array((head + String(repeating: "x", count: size - head.utf8.count - tail.utf8.count) + tail).utf8)
        }
        let register = #"{"email":"big@shop.test","password":"correct-horse-42","name":""#
        // A number that grows when written back: 9e14 is fifteen digits in the RPC line, so this
        // body (within the HTTP limit) would need a line of about 3 MiB.
        let growing = Array(("{\"pad\":[" + Array(repeating: "9e14", count: (limit - 16) / 5).joined(separator: ",") + "]}").utf8)
        XCTAssertLessThanOrEqual(growing.count, limit)
        let cases: [(String, [UInt8], Set<Int>)] = [
            ("1,048,476 bytes (the issue's size)", padded(register, "\"}", to: 1_048_476), [400]),
            ("exactly the limit", padded(register, "\"}", to: limit), [400]),
            ("a body that grows when re-encoded", growing, [413]),
        ]
        for (what, body, expected) in cases {
            for attempt in 0..<3 {
                let r = HTTP.request("POST", sys.base + "/auth/register", headers: ["Content-Type": "application/json"], rawBody: body)
                XCTAssertTrue(expected.contains(r.status), "\(what), attempt \(attempt): \(r.status) \(r.text.prefix(300))")
                XCTAssertNotNil(r.body["error"]?["code"]?.stringValue, "\(what): a JSON error body: \(r.text.prefix(300))")
                XCTAssertNotNil(r.header("X-Request-Id"), what)
            }
        }
        let over = HTTP.request("POST", sys.base + "/auth/register", headers: ["Content-Type": "application/json"],
                                rawBody: padded(register, "\"}", to: limit + 1))
        XCTAssertEqual(over.status, 413, "one byte over the HTTP limit: \(over.text.prefix(300))")
        // Let the bystanders make a few more calls after the last large request.
        let after = seen.current.calls
        XCTAssertTrue(waitUntil(timeoutMs: 20_000) { seen.current.calls >= after + 20 })
        stop.withLock { $0 = true }
        group.wait()
        XCTAssertEqual(seen.current.errors, [], "the bystander's \(seen.current.calls) calls")
        assertNoServiceRestarted(servicePids)
    }

    // MARK: - numbers from RPC params

    /// `queues.clean` takes an age in milliseconds that the service subtracts from now: an age
    /// beyond 100,000 days is refused with the field named (it was taken, and made a cut-off
    /// before 1970). `oopsctl queue clean` turns seconds into milliseconds: a number of seconds
    /// whose milliseconds overflow is refused instead of crashing the tool.
    func testQueueCleanAgeIsRangeChecked() throws {
        let client = RPCClient(runDir: sys.procs.runDir, service: "parcelx", poolSize: 1)
        defer { client.closeAll() }
        let admin = RPCContext.new(actor: Actor(userId: "ops", role: .admin))
        for age: Int64 in [.max, 100_000 * 86_400_000 + 1] {
            XCTAssertThrowsError(try client.call("queues.clean", ["queue": "parcelx-orders-queue", "state": "completed", "olderThanMs": .int(age)], ctx: admin)) { e in
                XCTAssertEqual((e as? RPCError)?.code, -32602, "\(age)")
                XCTAssertEqual((e as? RPCError)?.data?["fields"]?.arrayValue?.first?["path"], "olderThanMs")
            }
        }
        XCTAssertEqual(try client.call("queues.clean", ["queue": "parcelx-orders-queue", "state": "completed", "olderThanMs": .int(100_000 * 86_400_000)], ctx: admin)["removed"], 0)

        let p = Process()
        p.executableURL = URL(fileURLWithPath: productsDirectory() + "/oopsctl")
        p.arguments = ["queue", "clean", "parcelx-orders-queue", "completed", String(Int64.max)]
        var env = ProcessInfo.processInfo.environment
        for (k, v) in sys.procs.env { env[k] = v }
        p.environment = env
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationReason, .exit, "oopsctl must not crash: \(text)")
        XCTAssertEqual(p.terminationStatus, 2, text)
        XCTAssertTrue(text.contains("out of range"), text)
    }

    // MARK: - the RPC fuzzer

    /// What a fuzz case must get back on its connection.
    enum Expect {
        /// Exactly one answer, with this id.
        case id(JSON)
        /// Exactly one answer, with id null (the server cannot know the request's id).
        case nullId
        /// Exactly one answer, with this id or null (whether the server can read the line depends
        /// on how the parser takes the hostile part).
        case idOrNull(JSON)
        /// One batch answer (an array) holding exactly these ids.
        case batch([JSON])
    }

    struct FuzzCase {
        var what: String
        var bytes: [UInt8]
        var expect: Expect
    }

    /// A method as `rpc.discover` declares it.
    struct DeclaredMethod {
        var name: String
        var params: [(name: String, schema: JSON)]
        var role: String?
    }

    /// Malformed and hostile JSON-RPC on every service socket (AuthSvc, WalletSvc, OrderSvc,
    /// ParcelXSvc): lines over the limit, malformed JSON, wrong envelopes, a wrong type in every
    /// declared parameter of every method (from `rpc.discover`), huge and negative numbers, deep
    /// nesting, invalid UTF-8, NUL bytes, hostile `ctx`. A fixed seed, then a random one (printed;
    /// `OOPS_RPC_FUZZ_SEED` replays one, `OOPS_RPC_FUZZ_CASES` sets the cases per seed). Pass: no
    /// process exits or is replaced, every case gets exactly the answers it must (well-formed
    /// JSON-RPC, never an internal error), and a bystander connection making normal calls to the
    /// same process meanwhile sees no error.
    func testServiceSocketsSurviveHostileRPC() throws {
        let env = ProcessInfo.processInfo.environment
        let fixedSeed: UInt64 = 0x0018_F022_0000_0002
        let seeds = env["OOPS_RPC_FUZZ_SEED"].flatMap { UInt64($0) }.map { [$0] } ?? [fixedSeed, UInt64.random(in: 1...UInt64.max)]
        let perSeed = env["OOPS_RPC_FUZZ_CASES"].flatMap { Int($0) }.map { max(1, min($0, 100_000)) } ?? 150
        print("RPC fuzz: seeds \(seeds.map { String($0) }.joined(separator: ", ")), \(perSeed) cases each per service; replay one with OOPS_RPC_FUZZ_SEED=<seed>")
        let maxLine = Config.fromEnvironment(sys.procs.env).rpcMaxLineBytes
        // A bound on the time as well as on the count: what is left when it passes is skipped,
        // and says so.
        let budget = Deadline.after(ms: 1000 * (env["OOPS_RPC_FUZZ_BUDGET_S"].flatMap { Int($0) }.map { max(1, min($0, 3600)) } ?? 90))
        let pids = servicePids
        let bystanderCalls: [String: (String, JSON, Actor)] = [
            "auth": ("kyc.list", ["limit": 5], Actor(userId: "fuzz-admin", role: .admin)),
            "wallet": ("wallet.get", ["userId": "fuzz-bystander"], Actor(userId: "fuzz-admin", role: .admin)),
            "order": ("orders.list", ["limit": 5], Actor(userId: "fuzz-admin", role: .admin)),
            "parcelx": ("queues.overview", [:], Actor(userId: "fuzz-admin", role: .admin)),
        ]
        for service in ["auth", "wallet", "order", "parcelx"] {
            let path = "\(sys.procs.runDir)/\(service)-0.sock"
            let client = RPCClient(runDir: sys.procs.runDir, service: service, poolSize: 1)
            let methods = try Self.discover(client, path)
            XCTAssertFalse(methods.isEmpty, "\(service) declares its methods")

            // The bystander: its own connection, normal calls, all the time the fuzzer runs.
            let stop = Locked(false)
            let seen = Locked<(calls: Int, errors: [String])>((0, []))
            let done = DispatchSemaphore(value: 0)
            let (bm, bp, actor) = bystanderCalls[service]!
            Thread.detachNewThread {
                defer { done.signal() }
                while !stop.current {
                    for (m, p) in [("rpc.health", JSON.object([:])), (bm, bp)] {
                        do {
                            _ = try client.call(instancePath: path, m, p, ctx: RPCContext.new(actor: actor, timeoutMs: 15_000))
                            seen.withLock { $0.calls += 1 }
                        } catch {
                            seen.withLock { $0.errors.append("\(m): \(error)") }
                        }
                    }
                }
            }
            XCTAssertTrue(waitUntil(timeoutMs: 15_000) { seen.current.calls >= 2 })

            for seed in seeds {
                var rng = SplitMix64(seed: seed ^ UInt64(service.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))
                // Every declared parameter of every method (ctx included) once with a value of
                // the wrong type, then random cases.
                var cases = Self.everyParamMistyped(methods, &rng) + (0..<perSeed).map { _ in Self.randomCase(methods, &rng) }
                // Two lines over the limit per seed: one that starts with its id, one that does not.
                cases.insert(Self.oversized(maxLine: maxLine, idFirst: true, &rng), at: Int.random(in: 0...cases.count, using: &rng))
                cases.insert(Self.oversized(maxLine: maxLine, idFirst: false, &rng), at: Int.random(in: 0...cases.count, using: &rng))
                let (failures, outcomes) = Self.run(cases, on: path, until: budget)
                print("RPC fuzz \(service), seed \(seed): answers by outcome \(outcomes.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))")
                if !failures.isEmpty {
                    XCTFail("\(service): \(failures.count) of \(cases.count) cases failed with seed \(seed) (replay: OOPS_RPC_FUZZ_SEED=\(seed)):\n"
                            + failures.prefix(8).joined(separator: "\n"))
                }
            }
            stop.withLock { $0 = true }
            XCTAssertEqual(done.wait(timeout: .now() + 30), .success)
            XCTAssertEqual(seen.current.errors, [], "\(service): the bystander's \(seen.current.calls) calls")
            XCTAssertGreaterThan(seen.current.calls, 2)
            client.closeAll()
            assertNoServiceRestarted(pids)
        }
    }

    // MARK: fuzz plumbing

    static func discover(_ client: RPCClient, _ path: String) throws -> [DeclaredMethod] {
        let doc = try client.call(instancePath: path, "rpc.discover", ctx: .new())
        return (doc["methods"]?.arrayValue ?? []).compactMap { m in
            guard let name = m["name"]?.stringValue else { return nil }
            let params = (m["params"]?.arrayValue ?? []).compactMap { p -> (name: String, schema: JSON)? in
                guard let n = p["name"]?.stringValue else { return nil }
                return (n, p["schema"] ?? .null)
            }
            let roles = (m["x-roles"]?.arrayValue ?? []).compactMap(\.stringValue)
            // The strongest role the method admits, so the call gets past the role check.
            let role = ["admin", "system", "merchant"].first { roles.contains($0) }
            return DeclaredMethod(name: name, params: params, role: role)
        }
    }

    static func ctx(_ role: String?) -> JSON {
        var c: [String: JSON] = ["requestId": "fuzz", "timeoutMs": 15_000]
        if let role { c["actor"] = ["userId": "fuzz-user", "role": .string(role)] }
        return .object(c)
    }

    static func line(id: JSON, method: JSON, params: JSON) -> [UInt8] {
        // Keys sorted on output: "id" comes first, as clients write it.
        JSON.object(["jsonrpc": "2.0", "id": id, "method": method, "params": params]).serializedBytes()
    }

    static func hostileValue(_ rng: inout SplitMix64) -> JSON {
        var deep: JSON = 1
        for _ in 0..<Int.random(in: 1...60, using: &rng) { deep = Bool.random(using: &rng) ? .array([deep]) : .object(["a": deep]) }
        let pool: [JSON] = [
            "", .string(String(repeating: "x", count: Int.random(in: 1...20_000, using: &rng))), "\u{0}", "a\u{0}b", "💥\u{7}\u{1F}",
            .int(.max), .int(.min), .int(-1), 0, .int(Int64.random(in: .min ... .max, using: &rng)),
            .double(1e308), .double(-1e308), .double(1.5), .double(-0.0), .double(9.3e18), .double(-9.3e18), .double(4_503_599_627_370_497),
            true, false, .null, [], [1, "a", nil], [:], ["$gt": ""], ["__proto__": ["x": 1]], deep,
            .array(Array(repeating: .int(.max), count: 1000)),
        ]
        return pool.randomElement(using: &rng)!
    }

    /// Number texts that no serializer writes but a client may send.
    static let rawNumbers = ["1e400", "-1e400", "123456789012345678901234567890", "-9223372036854775809", "9223372036854775808",
                             "-0", "0.0000001", "1E+2", "1e-400", "00", "01", "-", "1.", ".5", "+1", "NaN", "Infinity", "0x10"]

    /// A value whose JSON type differs from the one `schema` declares (any value for a schema
    /// without a type).
    static func mistyped(_ schema: JSON, _ rng: inout SplitMix64) -> JSON {
        let byType: [(String, JSON)] = [
            ("string", .int(.max)), ("string", [:]), ("string", ["a"]), ("string", true),
            ("integer", "12"), ("integer", .double(1.5)), ("integer", .double(1e300)), ("integer", [1]), ("integer", false),
            ("number", "1"), ("number", [:]), ("boolean", "true"), ("boolean", 1), ("array", "[]"), ("array", ["a": 1]),
            ("object", "{}"), ("object", [1, 2]), ("object", .int(.min)), ("null", 0),
        ]
        let declared = schema["type"]?.stringValue ?? schema["anyOf"]?.arrayValue?.first?["type"]?.stringValue
        let fitting = byType.filter { $0.0 != declared && !(declared == "number" && $0.0 == "integer") }.map(\.1)
        return fitting.randomElement(using: &rng)!
    }

    static func everyParamMistyped(_ methods: [DeclaredMethod], _ rng: inout SplitMix64) -> [FuzzCase] {
        methods.flatMap { m in
            m.params.map { param -> FuzzCase in
                let id = JSON.string("t-\(rng.next())")
                var p: [String: JSON] = ["ctx": ctx(m.role)]
                p[param.name] = mistyped(param.name == "ctx" ? ["type": "object"] : param.schema, &rng)
                return FuzzCase(what: "\(m.name) \(param.name) mistyped", bytes: line(id: id, method: .string(m.name), params: .object(p)), expect: .id(id))
            }
        }
    }

    static func randomCase(_ methods: [DeclaredMethod], _ rng: inout SplitMix64) -> FuzzCase {
        let m = methods.randomElement(using: &rng)!
        let id: JSON = Bool.random(using: &rng) ? .int(Int64.random(in: 1...Int64.max, using: &rng)) : .string("c-\(rng.next())")
        let names = m.params.map(\.name)
        let param = names.randomElement(using: &rng) ?? "x"
        let valid = line(id: id, method: .string(m.name), params: .object(["ctx": ctx(m.role)]))
        switch Int.random(in: 0..<12, using: &rng) {
        case 0, 1, 2:
            // A wrong type (or a hostile value) in one declared parameter, ctx included.
            var p: [String: JSON] = ["ctx": ctx(m.role)]
            p[param] = hostileValue(&rng)
            if Bool.random(using: &rng), let other = names.randomElement(using: &rng), other != "ctx" { p[other] = hostileValue(&rng) }
            return FuzzCase(what: "\(m.name) \(param) hostile", bytes: line(id: id, method: .string(m.name), params: .object(p)), expect: .id(id))
        case 3:
            // A number as text no serializer would write.
            let raw = rawNumbers.randomElement(using: &rng)!
            let text = "{\"id\":\(id.serialized()),\"jsonrpc\":\"2.0\",\"method\":\(JSON.string(m.name).serialized()),\"params\":{\"\(param == "ctx" ? "limit" : param)\":\(raw),\"ctx\":\(ctx(m.role).serialized())}}"
            return FuzzCase(what: "\(m.name) \(param)=\(raw)", bytes: Array(text.utf8), expect: .idOrNull(id))
        case 4:
            // ctx itself hostile.
            let hostileCtx: [JSON] = ["x", 5, [], ["timeoutMs": .double(1e300)], ["timeoutMs": -5], ["timeoutMs": .int(.min)],
                                      ["actor": "admin"], ["actor": ["role": "root", "userId": 5]], ["requestId": .string(String(repeating: "r", count: 5000))],
                                      ["actor": ["userId": "", "role": "system"]], hostileValue(&rng)]
            return FuzzCase(what: "\(m.name) hostile ctx", bytes: line(id: id, method: .string(m.name), params: ["ctx": hostileCtx.randomElement(using: &rng)!]),
                            expect: .id(id))
        case 5:
            // Envelopes that break the protocol but keep a valid id.
            let envelopes: [(String, [String: JSON])] = [
                ("no jsonrpc", ["id": id, "method": .string(m.name)]),
                ("jsonrpc 1.0", ["jsonrpc": "1.0", "id": id, "method": .string(m.name)]),
                ("jsonrpc number", ["jsonrpc": 2, "id": id, "method": .string(m.name)]),
                ("method number", ["jsonrpc": "2.0", "id": id, "method": 42]),
                ("no method", ["jsonrpc": "2.0", "id": id]),
                ("unknown method", ["jsonrpc": "2.0", "id": id, "method": "no.such.method"]),
                ("long method", ["jsonrpc": "2.0", "id": id, "method": .string(String(repeating: "m", count: 10_000))]),
                ("params string", ["jsonrpc": "2.0", "id": id, "method": .string(m.name), "params": "p"]),
                ("params number", ["jsonrpc": "2.0", "id": id, "method": .string(m.name), "params": 7]),
                ("params array", ["jsonrpc": "2.0", "id": id, "method": .string(m.name), "params": [1, 2]]),
                ("params null", ["jsonrpc": "2.0", "id": id, "method": .string(m.name), "params": nil]),
                ("extra members", ["jsonrpc": "2.0", "id": id, "method": .string(m.name), "result": 1, "error": ["code": 1]]),
            ]
            let (what, o) = envelopes.randomElement(using: &rng)!
            return FuzzCase(what: "envelope: \(what)", bytes: JSON.object(o).serializedBytes(), expect: .id(id))
        case 6:
            // No usable id, or not a request at all: answered with id null.
            let texts = [#"{"jsonrpc":"2.0","id":{"a":1},"method":"rpc.health"}"#, #"{"jsonrpc":"2.0","id":[1],"method":"rpc.health"}"#,
                         #"{"jsonrpc":"2.0","id":true,"method":"rpc.health"}"#, "42", #""str""#, "null", "true", "[]", "{}"]
            let t = texts.randomElement(using: &rng)!
            return FuzzCase(what: "no usable id: \(t)", bytes: Array(t.utf8), expect: .nullId)
        case 7:
            // A batch: each request in it is answered inside one array.
            let id2: JSON = .string("b-\(rng.next())")
            let text = "[" + String(decoding: valid, as: UTF8.self) + "," + String(decoding: line(id: id2, method: "rpc.health", params: [:]), as: UTF8.self) + ",5]"
            return FuzzCase(what: "batch", bytes: Array(text.utf8), expect: .batch([id, id2, .null]))
        case 8:
            // Malformed JSON: a valid line cut short.
            let cut = Int.random(in: 1..<valid.count, using: &rng)
            return FuzzCase(what: "cut at \(cut)", bytes: Array(valid[0..<cut]), expect: .nullId)
        case 9:
            // Deep nesting, around the parser's depth limit.
            let depth = Int.random(in: 200...400, using: &rng)
            let text = "{\"id\":\(id.serialized()),\"jsonrpc\":\"2.0\",\"method\":\(JSON.string(m.name).serialized()),\"params\":{\"\(param)\":"
                + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}}"
            return FuzzCase(what: "nesting \(depth)", bytes: Array(text.utf8), expect: .idOrNull(id))
        case 10:
            // Invalid UTF-8, lone surrogates and NUL bytes inside a string parameter.
            let bad: [[UInt8]] = [[0xFF], [0xC3, 0x28], [0xE2, 0x82], [0xF0, 0x28, 0x8C, 0x28], [0xED, 0xA0, 0x80], [0x00], [0x01, 0x00, 0x1F],
                                  Array(#"\ud800"#.utf8), Array(#"\udfff\ud800"#.utf8), Array(#"\u0000"#.utf8), [0xC0, 0xAF]]
            let head = "{\"id\":\(id.serialized()),\"jsonrpc\":\"2.0\",\"method\":\(JSON.string(m.name).serialized()),\"params\":{\"\(param)\":\"a"
            let bytes = Array(head.utf8) + bad.randomElement(using: &rng)! + Array("b\",\"ctx\":\(ctx(m.role).serialized())}}".utf8)
            return FuzzCase(what: "bad string in \(m.name).\(param)", bytes: bytes, expect: .idOrNull(id))
        default:
            // A valid line with random bytes changed, inserted or removed (never a newline) after
            // its leading id, so that it is answered with that id or, when no longer JSON, null.
            var b = valid
            let keep = Array("{\"id\":\(id.serialized()),".utf8).count
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                var byte = UInt8.random(in: 0...255, using: &rng)
                if byte == 0x0A { byte = 0x00 }
                let at = Int.random(in: keep..<b.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: b[at] = byte
                case 1: b.insert(byte, at: at)
                default: if b.count > keep + 1 { b.remove(at: at) }
                }
            }
            return FuzzCase(what: "mutated \(m.name)", bytes: b, expect: .idOrNull(id))
        }
    }

    static func oversized(maxLine: Int, idFirst: Bool, _ rng: inout SplitMix64) -> FuzzCase {
        let id = JSON.int(Int64.random(in: 1...1_000_000, using: &rng))
        let pad = String(repeating: "x", count: maxLine + Int.random(in: 1...100_000, using: &rng))
        if idFirst {
            return FuzzCase(what: "oversized, id first", bytes: Array((#"{"id":\#(id.serialized()),"jsonrpc":"2.0","method":"rpc.health","params":{"p":""# + pad + "\"}}").utf8),
                            expect: .id(id))
        }
        return FuzzCase(what: "oversized, id last", bytes: Array((#"{"jsonrpc":"2.0","method":"rpc.health","params":{"p":""# + pad + #""},"id":\#(id.serialized())}"#).utf8),
                        expect: .nullId)
    }

    /// A well-formed JSON-RPC 2.0 response object; nil when it is one, else what is wrong.
    static func malformation(_ a: JSON) -> String? {
        guard let o = a.objectValue else { return "not an object" }
        guard o["jsonrpc"] == "2.0" else { return "no jsonrpc 2.0" }
        guard let id = o["id"] else { return "no id" }
        switch id {
        case .string, .int, .double, .null: break
        default: return "id of a wrong kind"
        }
        switch (o["result"], o["error"]) {
        case (_?, nil): return nil
        case (nil, let e?):
            guard let code = e["code"]?.intValue, e["message"]?.stringValue != nil else { return "error without code and message" }
            if code == Int64(ErrorCode.internalError.rawValue) { return "internal error (bad input must get a clear error)" }
            return nil
        default: return "result and error both or neither"
        }
    }

    /// Sends each case, then a sentinel call, on one raw connection, and checks what came back
    /// for the case. Returns the failures (empty when all passed).
    static func run(_ cases: [FuzzCase], on path: String, until budget: Deadline) -> (failures: [String], outcomes: [String: Int]) {
        var failures: [String] = []
        var outcomes: [String: Int] = [:]
        var fd: Int32 = -1
        var lb = LineBuffer(maxLine: 64 << 20)
        func connect() {
            if fd >= 0 { close(fd) }
            fd = (try? UnixSocket.connect(path)) ?? -1
            if fd >= 0 { UnixSocket.setTimeout(fd, option: SO_RCVTIMEO, ms: 200) }
            lb = LineBuffer(maxLine: 64 << 20)
        }
        connect()
        defer { if fd >= 0 { close(fd) } }
        var buf = [UInt8](repeating: 0, count: 65536)
        for (n, c) in cases.enumerated() {
            if budget.hasPassed {
                print("RPC fuzz: time budget reached; \(cases.count - n) of \(cases.count) cases skipped")
                break
            }
            guard fd >= 0 else {
                failures.append("case \(n) (\(c.what)): cannot connect")
                connect()
                continue
            }
            let sentinel = JSON.string("sentinel-\(n)")
            let bytes = c.bytes + [0x0A] + line(id: sentinel, method: "rpc.health", params: [:]) + [0x0A]
            guard bytes.withUnsafeBytes({ UnixSocket.writeAll(fd, $0) }) else {
                failures.append("case \(n) (\(c.what)): the server closed the connection")
                connect()
                continue
            }
            var answers: [JSON] = []
            var sawSentinel = false
            var problem: String?
            func satisfied() -> Bool {
                switch c.expect {
                case .id(let id): return answers.contains { $0["id"] == id }
                case .nullId: return !answers.isEmpty
                case .idOrNull: return !answers.isEmpty
                case .batch: return answers.contains { $0.arrayValue != nil }
                }
            }
            let deadline = Deadline.after(ms: 20_000)
            reading: while !(sawSentinel && satisfied()) {
                if deadline.hasPassed {
                    problem = "no answer within 20 s (sentinel \(sawSentinel ? "answered" : "not answered"), got \(answers.count))"
                    break
                }
                let r = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if r == 0 {
                    problem = "the server closed the connection"
                    break
                }
                if r < 0 { continue }
                lb.append(Array(buf[0..<r]))
                while let ev = lb.next() {
                    guard case .line(let l) = ev, let a = try? JSONParser.parse(l) else {
                        problem = "an answer that is not JSON"
                        break reading
                    }
                    if a["id"] == sentinel {
                        sawSentinel = true
                        if a["result"] == nil { problem = "the sentinel failed: \(a)" }
                        continue
                    }
                    answers.append(a)
                }
            }
            if problem == nil {
                let items = answers.flatMap { $0.arrayValue ?? [$0] }
                for a in items { outcomes[a["error"]?["code"]?.intValue.map { String($0) } ?? "ok", default: 0] += 1 }
                if let bad = items.lazy.compactMap({ a in malformation(a).map { "\($0): \(a.serialized().prefix(200))" } }).first {
                    problem = bad
                } else {
                    switch c.expect {
                    case .id(let id):
                        if answers.count != 1 || answers[0]["id"] != id { problem = "expected one answer with id \(id), got \(answers)" }
                    case .nullId:
                        if answers.count != 1 || answers[0]["id"] != .null { problem = "expected one answer with id null, got \(answers)" }
                    case .idOrNull(let id):
                        if answers.count != 1 || (answers[0]["id"] != id && answers[0]["id"] != .null) {
                            problem = "expected one answer with id \(id) or null, got \(answers)"
                        }
                    case .batch(let ids):
                        let got = answers.first?.arrayValue?.compactMap { $0["id"] }.map { $0.serialized() }.sorted()
                        if answers.count != 1 || got != ids.map({ $0.serialized() }).sorted() { problem = "expected a batch answer with ids \(ids), got \(answers)" }
                    }
                }
            }
            if let p = problem {
                failures.append("case \(n) (\(c.what)): \(p); sent \(String(decoding: c.bytes.prefix(300), as: UTF8.self).debugDescription)")
                // Whatever is still on its way would be taken for the next case's answers.
                connect()
            }
        }
        return (failures, outcomes)
    }
}
