import JSON
import Runtime
import Synchronization

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
    /// Read on every call: an atomic flag rather than a lock.
    private let draining = Atomic<Bool>(false)
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
        self.unknownSeries = stats.series(for: "unknown")
        self.table = Locked([:])
        self.checks = Locked(healthChecks)
        table.withLock { $0 = entries(m) }
    }

    private let table: Locked<[String: Entry]>
    private let builtins: [String: Method]
    private let unknownSeries: RPCStats.Series

    private func entries(_ own: [String: Method]) -> [String: Entry] {
        own.merging(builtins) { a, _ in a }.mapValues { Entry(method: $0, series: stats.series(for: $0.name)) }
    }

    public var methodNames: [String] { table.current.keys.sorted() }

    /// Replaces the service's own methods (a service that started degraded gets its real
    /// methods once its dependencies are reachable); the built-ins stay.
    public func install(methods: [Method], healthChecks: (@Sendable () -> [String: JSON])? = nil) {
        var m: [String: Method] = [:]
        for x in methods { m[x.name] = x }
        let all = entries(m)
        table.withLock { $0 = all }
        if let h = healthChecks { checks.withLock { $0 = h } }
    }
    private let checks: Locked<@Sendable () -> [String: JSON]>

    public func startDraining() { draining.store(true, ordering: .releasing) }
    private let starting = Atomic<Bool>(false)
    /// While starting, unknown methods are answered -32050 instead of -32601.
    public func setStarting(_ on: Bool) { starting.store(on, ordering: .releasing) }
    public var isDraining: Bool { draining.load(ordering: .acquiring) }

    public func health() -> JSON {
        let checks = self.checks.current()
        let ok = checks.values.allSatisfy { $0["ok"]?.boolValue ?? true }
        return ["status": .string(ok ? "ok" : "degraded"), "service": .string(service), "instance": .int(Int64(instance)),
                "version": .string(version), "uptimeMs": .int(Int64((Clock.monotonicNanos() - startedAt) / 1_000_000)),
                "checks": .object(checks)]
    }

    public func openRPC() -> JSON {
        let table = self.table.current
        let ms: [JSON] = table.keys.sorted().map { name in
            let m = table[name]!.method
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
                "errors": .array(m.errors.map { ["code": .int(Int64($0.rawValue)), "message": .string($0.title)] }),
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

    /// A line read off the wire: either already answered (it was not JSON) or a message to run.
    public enum Incoming {
        case answered([UInt8])
        /// `inline`: every method it calls is declared `inline`, so it may run on the reader thread.
        case message(Message, inline: Bool)
    }

    /// A parsed message: a single request or notification read straight into its fields, or
    /// anything else (a batch, or not an object).
    public enum Message: Sendable {
        case single(Request)
        case other(JSON)
    }

    /// One request or notification as read: the members it had (a missing `id` makes a
    /// notification), `params` without `ctx`, the context, and the method it names. A class,
    /// so that handing it from the reader to the handler pool copies one reference; it is only
    /// changed while its line is read.
    public final class Request: @unchecked Sendable {
        enum Params: Sendable {
            case absent
            case object([String: JSON])
            case other(JSON)
        }
        var id: JSON?
        /// `"jsonrpc": "2.0"` was there.
        var isV2 = false
        var method: JSON?
        var params = Params.absent
        var ctx: RPCContext?
        var entry: Entry?
        /// When the line was read (monotonic): the clock reading its deadline was set from, and
        /// for an inline method the start of the call.
        var receivedAt: UInt64 = 0

        /// From an object already parsed (a batch item).
        init(object o: [String: JSON], entry: (JSON?) -> Entry?) {
            id = o["id"]
            isV2 = o["jsonrpc"] == .string("2.0")
            method = o["method"]
            switch o["params"] {
            case nil: break
            case .object(var p)?:
                ctx = RPCContext.from(p.removeValue(forKey: "ctx"))
                params = .object(p)
            case let other?: params = .other(other)
            }
            self.entry = entry(method)
            receivedAt = Clock.monotonicNanos()
        }

        init() {}
    }

    /// A method as the table holds it, with its metrics series found once.
    final class Entry: Sendable {
        let method: Method
        let series: RPCStats.Series

        init(method: Method, series: RPCStats.Series) {
            self.method = method
            self.series = series
        }
    }

    /// Parses one line. Parsing is cheap and done where the line is read; running it may then go
    /// to the handler pool.
    public func parse(line: UnsafeBufferPointer<UInt8>) -> Incoming {
        do {
            let req = Request()
            let now = Clock.monotonicNanos()
            req.receivedAt = now
            let isObject = try JSONParser.readObject(line) { key, p throws(JSONParseError) in
                switch key {
                case "jsonrpc":
                    if let v = try p.readStringKey() { req.isV2 = v == "2.0" } else { req.isV2 = false; _ = try p.readValue() }
                case "id": req.id = try p.readValue()
                case "method": req.method = try p.readValue()
                case "params":
                    var members: [String: JSON]?
                    var ctx: RPCContext?
                    let isObject = try p.readObject { k, p throws(JSONParseError) in
                        if k == "ctx" {
                            ctx = try RPCContext.read(&p, now: now)
                        } else {
                            if members == nil { members = [String: JSON](minimumCapacity: 6) }
                            members![k.string] = try p.readValue()
                        }
                    }
                    if isObject {
                        req.params = .object(members ?? [:])
                        req.ctx = ctx
                    } else {
                        req.params = .other(try p.readValue())
                        req.ctx = nil
                    }
                default: _ = try p.readValue()
                }
            }
            if isObject {
                req.entry = entry(req.method)
                return .message(.single(req), inline: req.entry?.method.inline ?? false)
            }
            let msg = try JSONParser.parse(line)
            guard case .array(let items) = msg, !items.isEmpty else { return .message(.other(msg), inline: false) }
            return .message(.other(msg), inline: items.allSatisfy { entry($0["method"])?.method.inline ?? false })
        } catch {
            return .answered(Dispatcher.response(id: .null, error: .parseError("Parse error: \(error.description)")))
        }
    }

    /// The answer to a line that was too long to read: -32600 with the request's `id` when the
    /// line's beginning names it (a client writes it first), otherwise with id null.
    public static func tooLongAnswer(prefix: [UInt8], limit: Int) -> [UInt8] {
        response(id: leadingId(prefix) ?? .null, error: .lineTooLong(limit: limit))
    }

    /// The top-level `id` of a JSON object cut short, if it comes before the cut (and before any
    /// member that the cut interrupts). Only a valid id kind: string, number or null.
    public static func leadingId(_ prefix: [UInt8]) -> JSON? {
        var id: JSON?
        // A number cut by the end of the prefix still parses: a numeric id counts only once the
        // member after it has begun, which shows the number's end was seen.
        var unconfirmed: JSON?
        let whole = try? prefix.withUnsafeBufferPointer { b throws(JSONParseError) in
            try JSONParser.readObject(b) { key, p throws(JSONParseError) in
                if unconfirmed != nil { (id, unconfirmed) = (unconfirmed, nil) }
                switch key {
                case "id":
                    let v = try p.readValue()
                    if case .string = v { id = v } else if v.isNull { id = v } else { unconfirmed = v }
                default: _ = try p.readValue()
                }
            }
        }
        if whole == true, unconfirmed != nil { id = unconfirmed }
        switch id {
        case .string?, .int?, .double?, .null?: return id
        default: return nil
        }
    }

    private func entry(_ method: JSON?) -> Entry? {
        guard case .string(let name)? = method else { return nil }
        return table.current[name]
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
        var out: [UInt8] = []
        return handle(message: message, into: &out) ? out : nil
    }

    /// Runs a parsed message and appends its answer (without newline) to `out`; false when there
    /// is none (notifications).
    public func handle(message: Message, into out: inout [UInt8]) -> Bool {
        switch message {
        case .single(let r):
            return handleOne(r, into: &out)
        case .other(.array(let items)):
            if items.isEmpty {
                Dispatcher.write(id: .null, error: .invalidRequest("Invalid Request: empty batch"), to: &out)
                return true
            }
            let start = out.count
            out.append(UInt8(ascii: "["))
            var any = false
            for item in items {
                let mark = out.count
                if any { out.append(UInt8(ascii: ",")) }
                let wrote: Bool
                if case .object(let o) = item {
                    wrote = handleOne(Request(object: o, entry: entry), into: &out)
                } else {
                    Dispatcher.write(id: .null, error: .invalidRequest(), to: &out)
                    wrote = true
                }
                if wrote { any = true } else { out.removeSubrange(mark...) }
            }
            if !any {
                out.removeSubrange(start...)
                return false
            }
            out.append(UInt8(ascii: "]"))
            return true
        case .other:
            Dispatcher.write(id: .null, error: .invalidRequest(), to: &out)
            return true
        }
    }

    public func handle(line: [UInt8]) -> [UInt8]? {
        line.withUnsafeBufferPointer { handle(line: $0) }
    }

    private func handleOne(_ r: Request, into out: inout [UInt8]) -> Bool {
        var id: JSON = .null
        if let i = r.id {
            switch i {
            case .string, .int, .double, .null: id = i
            default:
                Dispatcher.write(id: .null, error: .invalidRequest("Invalid Request: id must be a string, number or null"), to: &out)
                return true
            }
        }
        let isNotification = r.id == nil
        guard r.isV2, case .string(let name)? = r.method else {
            Dispatcher.write(id: id, error: .invalidRequest(), to: &out)
            return true
        }
        let params: [String: JSON]
        switch r.params {
        case .absent: params = [:]
        case .object(let p): params = p
        case .other(.array(let a)) where a.isEmpty: params = [:]
        case .other:
            if isNotification { return false }
            Dispatcher.write(id: id, error: .invalidParams(path: "$", "params must be a by-name object"), to: &out)
            return true
        }
        let ctx = r.ctx ?? RPCContext.from(nil)
        // An inline call starts as its line is read; one that waited for the pool starts now.
        let start = r.entry?.method.inline == true ? r.receivedAt : Clock.monotonicNanos()
        let result = call(name, entry: r.entry, params: .object(params), ctx: ctx, startedAt: start)
        if isNotification { return false }
        switch result {
        case .success(let v): Dispatcher.write(id: id, result: v, to: &out)
        case .failure(var e):
            if e.code == ErrorCode.internalError.rawValue || e.data?["requestId"] == nil {
                var d = e.data?.objectValue ?? [:]
                d["requestId"] = .string(ctx.requestId)
                e.data = .object(d)
            }
            Dispatcher.write(id: id, error: e, to: &out)
        }
        return true
    }

    /// Runs a method with the checks every call gets: existence, draining, deadline, role, params.
    public func call(_ name: String, params: JSON, ctx: RPCContext) -> Result<JSON, RPCError> {
        call(name, entry: table.current[name], params: params, ctx: ctx, startedAt: Clock.monotonicNanos())
    }

    private func call(_ name: String, entry: Entry?, params: JSON, ctx: RPCContext, startedAt t0: UInt64) -> Result<JSON, RPCError> {
        let r = callUnmeasured(name, entry: entry, params: params, ctx: ctx, now: t0)
        let dt = Clock.monotonicNanos() - t0
        let code: Int?
        switch r {
        case .success: code = nil
        case .failure(let e): code = e.code
        }
        (entry?.series ?? unknownSeries).record(code: code, nanos: dt)
        if log.minLevel <= .debug {
            log.debug("rpc call", requestId: ctx.requestId, ["method": .string(name), "outcome": .string(code.map { String($0) } ?? "ok"),
                                                            "durationUs": .int(Int64(dt / 1000)),
                                                            "actor": .string(ctx.actor.map { "\($0.role.rawValue):\($0.userId)" } ?? "none")])
        }
        return r
    }

    private func callUnmeasured(_ name: String, entry: Entry?, params: JSON, ctx: RPCContext, now: UInt64) -> Result<JSON, RPCError> {
        guard let m = entry?.method else {
            // Until its dependencies are reachable a service knows only rpc.*: say "try again".
            if starting.load(ordering: .acquiring) { return .failure(.unavailable("Service is starting")) }
            return .failure(.methodNotFound(name))
        }
        if isDraining && !name.hasPrefix("rpc.") { return .failure(.unavailable("Service is shutting down")) }
        if now >= ctx.deadline.nanos { return .failure(.deadlineExceeded()) }
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
        } catch let e as any RPCErrorConvertible {
            // The one place a library's error (store, Redis, queue, provider) becomes what the
            // caller sees; the full error, details included, stays in this log line.
            let r = RPCError(e)
            let fields: [String: JSON] = ["method": .string(name), "error": .string(String(reflecting: e))]
            if r.code == ErrorCode.internalError.rawValue { log.error("handler failed", requestId: ctx.requestId, fields) }
            else { log.warn("handler failed", requestId: ctx.requestId, fields) }
            return .failure(r)
        } catch {
            log.error("handler failed", requestId: ctx.requestId, ["method": .string(name), "error": .string(String(describing: error))])
            return .failure(.internalError())
        }
    }

    static func write(id: JSON, result: JSON, to out: inout [UInt8]) {
        out.append(literal: #"{"jsonrpc":"2.0","id":"#)
        id.write(to: &out)
        out.append(literal: #","result":"#)
        result.write(to: &out, sortKeys: false)
        out.append(UInt8(ascii: "}"))
    }

    static func write(id: JSON, error: RPCError, to out: inout [UInt8]) {
        out.append(literal: #"{"jsonrpc":"2.0","id":"#)
        id.write(to: &out)
        out.append(literal: #","error":"#)
        error.json.write(to: &out)
        out.append(UInt8(ascii: "}"))
    }

    static func response(id: JSON, error: RPCError) -> [UInt8] {
        var out: [UInt8] = []
        write(id: id, error: error, to: &out)
        return out
    }
}
