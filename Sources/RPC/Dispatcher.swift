import JSON
import Runtime

/// The protocol core of a service: turns one JSON-RPC text into its answer (or nothing, for
/// notifications). Pure with respect to transport, so the specification's examples are tested
/// without sockets. Handlers run on the calling thread.
public final class Dispatcher: Sendable {
    public let service: String
    public let instance: Int
    public let version: String
    private let methods: [String: Method]
    private let log: Logger
    private let startedAt = Clock.monotonicNanos()
    private let draining = Locked(false)
    public let stats = RPCStats()

    public init(service: String, instance: Int, version: String = "0.1.0", methods: [Method], log: Logger,
                healthChecks: @escaping @Sendable () -> [String: JSON] = { [:] }) {
        self.service = service
        self.instance = instance
        self.version = version
        self.log = log
        var m: [String: Method] = [:]
        for x in methods { m[x.name] = x }
        self.methods = m
        // Built-ins, declared like any other method (their bodies are in `builtin`, as they need self).
        let discover = Method("rpc.discover", summary: "OpenRPC document of this service", roles: [], params: .empty,
                              result: .anything) { _, _ in .null }
        let health = Method("rpc.health", summary: "Health of this instance and its dependencies", roles: [], params: .empty,
                            result: .object([("status", .string(oneOf: ["ok", "degraded"])), ("service", .string()), ("instance", .int()),
                                             ("version", .string()), ("uptimeMs", .int()), ("checks", .anything)])) { _, _ in .null }
        let metrics = Method("rpc.metrics", summary: "Call counters and latency histograms of this instance", roles: [.admin, .system],
                             params: .empty, result: .anything) { _, _ in .null }
        self.builtins = ["rpc.discover": discover, "rpc.health": health, "rpc.metrics": metrics]
        self.table = Locked(m.merging(builtins) { a, _ in a })
        self.checks = Locked(healthChecks)
    }

    private let table: Locked<[String: Method]>
    private var methodsWithBuiltins: [String: Method] { table.current }
    private let builtins: [String: Method]

    public var methodNames: [String] { methodsWithBuiltins.keys.sorted() }

    /// Replaces the service's own methods (a service that started degraded gets its real
    /// methods once its dependencies are reachable); the built-ins stay.
    public func install(methods: [Method], healthChecks: (@Sendable () -> [String: JSON])? = nil) {
        var m: [String: Method] = [:]
        for x in methods { m[x.name] = x }
        let all = m.merging(builtins) { a, _ in a }
        table.withLock { $0 = all }
        if let h = healthChecks { checks.withLock { $0 = h } }
    }
    private let checks: Locked<@Sendable () -> [String: JSON]>

    public func startDraining() { draining.withLock { $0 = true } }
    private let starting = Locked(false)
    /// While starting, unknown methods are answered -32050 instead of -32601.
    public func setStarting(_ on: Bool) { starting.withLock { $0 = on } }
    public var isDraining: Bool { draining.current }

    public func health() -> JSON {
        let checks = self.checks.current()
        let ok = checks.values.allSatisfy { $0["ok"]?.boolValue ?? true }
        return ["status": .string(ok ? "ok" : "degraded"), "service": .string(service), "instance": .int(Int64(instance)),
                "version": .string(version), "uptimeMs": .int(Int64((Clock.monotonicNanos() - startedAt) / 1_000_000)),
                "checks": .object(checks)]
    }

    public func openRPC() -> JSON {
        let ms: [JSON] = methodsWithBuiltins.keys.sorted().map { name in
            let m = methodsWithBuiltins[name]!
            var paramList: [JSON] = []
            if case .object(let props, let req, _) = m.params {
                for (k, s) in props {
                    paramList.append(["name": .string(k), "required": .bool(req.contains(k)), "schema": s.json])
                }
            }
            paramList.append(["name": "ctx", "required": false, "schema": ["$ref": "#/components/schemas/Context"]])
            return [
                "name": .string(name), "summary": .string(m.summary), "paramStructure": "by-name",
                "params": .array(paramList),
                "result": ["name": "result", "schema": m.result.json],
                "errors": .array(m.errors.map { ["code": .int(Int64($0)), "message": .string(Dispatcher.errorNames[$0] ?? "error")] }),
                "x-roles": .array(m.roles.map { .string($0.rawValue) }.sorted { $0.stringValue! < $1.stringValue! }),
            ]
        }
        return [
            "openrpc": "1.3.2",
            "info": ["title": .string("OOPS \(service)"), "version": .string(version)],
            "methods": .array(ms),
            "components": ["schemas": ["Context": .object([
                "type": "object",
                "properties": ["requestId": ["type": "string"], "timeoutMs": ["type": "integer"],
                               "actor": ["type": "object", "properties": ["userId": ["type": "string"], "role": ["enum": ["merchant", "admin", "system"]]]]],
            ])]],
        ]
    }

    static let errorNames: [Int: String] = [
        -32700: "Parse error", -32600: "Invalid Request", -32601: "Method not found", -32602: "Invalid params",
        -32603: "Internal error", -32001: "Unauthenticated", -32003: "Forbidden", -32004: "Not found", -32009: "Conflict",
        -32022: "Business rule refused", -32029: "Rate limited", -32050: "Unavailable", -32054: "Deadline exceeded",
    ]

    /// A line read off the wire: either already answered (it was not JSON) or a message to run.
    public enum Incoming {
        case answered([UInt8])
        /// `inline`: every method it calls is declared `inline`, so it may run on the reader thread.
        case message(Message, inline: Bool)
    }

    /// A parsed message: a single request or notification kept as its members (no dictionary
    /// is built for an envelope read once), or anything else (a batch, or not an object).
    public enum Message: Sendable {
        case single([(key: String, value: JSON)])
        case other(JSON)
    }

    /// Parses one line. Parsing is cheap and done where the line is read; running it may then go
    /// to the handler pool.
    public func parse(line: UnsafeBufferPointer<UInt8>) -> Incoming {
        do {
            if let m = try JSONParser.parseMembers(line) {
                return .message(.single(m), inline: isInline(method: Dispatcher.member("method", of: m)))
            }
            let msg = try JSONParser.parse(line)
            guard case .array(let items) = msg, !items.isEmpty else { return .message(.other(msg), inline: false) }
            return .message(.other(msg), inline: items.allSatisfy { isInline(method: $0["method"]) })
        } catch {
            return .answered(Dispatcher.response(id: .null, error: .parseError("Parse error: \(error.description)")))
        }
    }

    private func isInline(method: JSON?) -> Bool {
        guard case .string(let name)? = method else { return false }
        return table.current[name]?.inline ?? false
    }

    /// The value of `key` (the last one, as a JSON object would keep it).
    private static func member(_ key: String, of m: [(key: String, value: JSON)]) -> JSON? {
        var i = m.count - 1
        while i >= 0 {
            if m[i].key == key { return m[i].value }
            i -= 1
        }
        return nil
    }

    /// Handles one line. Returns the bytes to send back (without newline), or nil for none.
    public func handle(line: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        switch parse(line: line) {
        case .answered(let r): return r
        case .message(let m, _): return handle(message: m)
        }
    }

    /// Runs a parsed message (a request, a notification or a batch).
    public func handle(message: Message) -> [UInt8]? {
        switch message {
        case .single(let m):
            return handleOne(m)
        case .other(.array(let items)):
            if items.isEmpty { return Dispatcher.response(id: .null, error: .invalidRequest("Invalid Request: empty batch")) }
            var out: [UInt8] = [UInt8(ascii: "[")]
            var any = false
            for item in items {
                let r: [UInt8]?
                if case .object(let o) = item { r = handleOne(Array(o)) } else { r = Dispatcher.response(id: .null, error: .invalidRequest()) }
                if let r {
                    if any { out.append(UInt8(ascii: ",")) }
                    out.append(contentsOf: r)
                    any = true
                }
            }
            if !any { return nil }
            out.append(UInt8(ascii: "]"))
            return out
        case .other:
            return Dispatcher.response(id: .null, error: .invalidRequest())
        }
    }

    public func handle(line: [UInt8]) -> [UInt8]? {
        line.withUnsafeBufferPointer { handle(line: $0) }
    }

    private func handleOne(_ m: [(key: String, value: JSON)]) -> [UInt8]? {
        let idJSON = Dispatcher.member("id", of: m)
        var id: JSON = .null
        if let i = idJSON {
            switch i {
            case .string, .int, .double, .null: id = i
            default: return Dispatcher.response(id: .null, error: .invalidRequest("Invalid Request: id must be a string, number or null"))
            }
        }
        let isNotification = idJSON == nil
        guard Dispatcher.member("jsonrpc", of: m) == .string("2.0"), case .string(let name)? = Dispatcher.member("method", of: m) else {
            return Dispatcher.response(id: id, error: .invalidRequest())
        }
        var params: [String: JSON] = [:]
        switch Dispatcher.member("params", of: m) {
        case nil: break
        case .object(let p)?: params = p
        case .array(let a)? where a.isEmpty: break
        default:
            return isNotification ? nil : Dispatcher.response(id: id, error: .invalidParams(path: "$", "params must be a by-name object"))
        }
        let ctxJSON = params.removeValue(forKey: "ctx")
        let ctx = RPCContext.from(ctxJSON)
        let result = call(name, params: .object(params), ctx: ctx)
        if isNotification { return nil }
        switch result {
        case .success(let r): return Dispatcher.response(id: id, result: r)
        case .failure(var e):
            if e.code == RPCError.internalErrorCode || e.data?["requestId"] == nil {
                var d = e.data?.objectValue ?? [:]
                d["requestId"] = .string(ctx.requestId)
                e.data = .object(d)
            }
            return Dispatcher.response(id: id, error: e)
        }
    }

    /// Runs a method with the checks every call gets: existence, draining, deadline, role, params.
    public func call(_ name: String, params: JSON, ctx: RPCContext) -> Result<JSON, RPCError> {
        let t0 = Clock.monotonicNanos()
        let r = callUnmeasured(name, params: params, ctx: ctx)
        let outcome: String
        switch r {
        case .success: outcome = "ok"
        case .failure(let e): outcome = String(e.code)
        }
        let dt = Clock.monotonicNanos() - t0
        stats.record(method: methodsWithBuiltins[name] != nil ? name : "unknown", outcome: outcome, nanos: dt)
        if log.minLevel <= .debug {
            log.debug("rpc call", requestId: ctx.requestId, ["method": .string(name), "outcome": .string(outcome), "durationUs": .int(Int64(dt / 1000)),
                                                            "actor": .string(ctx.actor.map { "\($0.role.rawValue):\($0.userId)" } ?? "none")])
        }
        return r
    }

    private func callUnmeasured(_ name: String, params: JSON, ctx: RPCContext) -> Result<JSON, RPCError> {
        guard let m = methodsWithBuiltins[name] else {
            // Until its dependencies are reachable a service knows only rpc.*: say "try again".
            if starting.current { return .failure(.unavailable("Service is starting")) }
            return .failure(.methodNotFound(name))
        }
        if isDraining && !name.hasPrefix("rpc.") { return .failure(.unavailable("Service is shutting down")) }
        if ctx.deadline.hasPassed { return .failure(.deadlineExceeded()) }
        if !m.roles.isEmpty {
            guard let a = ctx.actor else { return .failure(.unauthenticated()) }
            guard m.roles.contains(a.role) else { return .failure(.forbidden()) }
        }
        let errs = m.params.validate(params)
        if !errs.isEmpty { return .failure(.invalidParams(errs)) }
        switch name {
        case "rpc.discover": return .success(openRPC())
        case "rpc.health": return .success(health())
        case "rpc.metrics":
            var m = stats.json
            m["process"] = Metrics.shared.json
            return .success(m)
        default: break
        }
        do {
            return .success(try m.handler(params, ctx))
        } catch let e as RPCError {
            return .failure(e)
        } catch {
            log.error("handler failed", requestId: ctx.requestId, ["method": .string(name), "error": .string(String(describing: error))])
            return .failure(.internalError())
        }
    }

    static func response(id: JSON, result: JSON) -> [UInt8] {
        var out: [UInt8] = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
        id.write(to: &out)
        out.append(contentsOf: #","result":"#.utf8)
        result.write(to: &out, sortKeys: false)
        out.append(UInt8(ascii: "}"))
        return out
    }

    static func response(id: JSON, error: RPCError) -> [UInt8] {
        var out: [UInt8] = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
        id.write(to: &out)
        out.append(contentsOf: #","error":"#.utf8)
        error.json.write(to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }
}
