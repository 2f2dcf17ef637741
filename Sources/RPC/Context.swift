import JSON
import Runtime

/// Who is calling. The socket is the trust boundary: only the Gateway and operators can reach
/// a service, so a service believes `ctx.actor`.
public enum Role: String, Sendable, CaseIterable {
    case merchant, admin, system
}

/// The caller of an RPC, as the Gateway verified it from a token (or `system` for workers/tools).
public struct Actor: Sendable, Equatable {
    public var userId: String
    public var role: Role
    public init(userId: String, role: Role) {
        self.userId = userId
        self.role = role
    }
    public static let system = Actor(userId: "system", role: .system)
    public var json: JSON { ["userId": .string(userId), "role": .string(role.rawValue)] }
}

/// `params.ctx`: request id, actor and deadline, handed to every handler.
public struct RPCContext: Sendable {
    public var requestId: String
    public var actor: Actor?
    public var deadline: Deadline

    public init(requestId: String, actor: Actor?, deadline: Deadline) {
        self.requestId = requestId
        self.actor = actor
        self.deadline = deadline
    }

    /// The caller, for a handler whose method declares roles (the dispatcher has then checked
    /// there is one); -32001 rather than a crash if a handler is ever reached without.
    public func requireActor() throws(RPCError) -> Actor {
        guard let actor else { throw RPCError.unauthenticated() }
        return actor
    }

    public static func new(actor: Actor? = .system, timeoutMs: Int = 2000, requestId: String? = nil) -> RPCContext {
        RPCContext(requestId: requestId ?? ID.make("req"), actor: actor, deadline: .after(ms: timeoutMs))
    }

    /// Reads `ctx` from params already parsed (a batch item's); a missing ctx gets a fresh
    /// request id, no actor and a default deadline. The same reader as a single request's
    /// (`read`): the value is written back and read off the bytes, so both paths share one rule.
    public static func from(_ ctx: JSON?, defaultTimeoutMs: Int = 5000) -> RPCContext {
        var found: RPCContext?
        let bytes = JSON.object(["ctx": ctx ?? .null]).serializedBytes()
        _ = try? bytes.withUnsafeBufferPointer { buf throws(JSONParseError) in
            try JSONParser.readObject(buf) { _, p throws(JSONParseError) in found = try read(&p, defaultTimeoutMs: defaultTimeoutMs) }
        }
        return found ?? RPCContext(requestId: ID.make("req"), actor: nil, deadline: .after(ms: defaultTimeoutMs))
    }

    /// Reads `ctx` straight off the wire, with the same rules as `from(_:)`: every call carries
    /// one, and building dictionaries for it only to read three fields costs more than the call.
    public static func read(_ p: inout JSONParser, now: UInt64 = Clock.monotonicNanos(), defaultTimeoutMs: Int = 5000) throws(JSONParseError) -> RPCContext {
        var rid: String?
        var timeout: Int64?
        var actor: Actor?
        let isObject = try p.readObject { key, p throws(JSONParseError) in
            switch key {
            case "requestId": rid = try p.readValue().stringValue
            case "timeoutMs": timeout = try p.readValue().intValue
            case "actor":
                var uid: String?
                var role: Role?
                let isActor = try p.readObject { key, p throws(JSONParseError) in
                    switch key {
                    case "userId": uid = try p.readValue().stringValue
                    case "role":
                        if let k = try p.readStringKey() {
                            role = k == "merchant" ? .merchant : k == "admin" ? .admin : k == "system" ? .system : nil
                        } else {
                            _ = try p.readValue()
                            role = nil
                        }
                    default: _ = try p.readValue()
                    }
                }
                if !isActor { _ = try p.readValue() }
                actor = uid.flatMap { u in role.map { Actor(userId: u, role: $0) } }
            default: _ = try p.readValue()
            }
        }
        if !isObject { _ = try p.readValue() }
        return RPCContext(requestId: RequestID.accept(rid), actor: actor,
                          deadline: Deadline(nanos: now + UInt64(timeout.map { Int(max(0, min($0, 600_000))) } ?? max(defaultTimeoutMs, 0)) * 1_000_000))
    }

    /// The wire form, with the time left as `timeoutMs`.
    public var json: JSON {
        var o: [String: JSON] = ["requestId": .string(requestId), "timeoutMs": .int(Int64(deadline.remainingMs))]
        if let a = actor { o["actor"] = a.json }
        return .object(o)
    }

    /// Writes `json` without building it first (every call sends one).
    public func write(to out: inout [UInt8]) {
        out.append(literal: #"{"requestId":"#)
        JSON.writeString(requestId, to: &out)
        out.append(literal: #","timeoutMs":"#)
        JSON.writeInt(Int64(deadline.remainingMs), to: &out)
        if let a = actor {
            out.append(literal: #","actor":{"userId":"#)
            JSON.writeString(a.userId, to: &out)
            out.append(literal: #","role":"#)
            JSON.writeString(a.role.rawValue, to: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(UInt8(ascii: "}"))
    }

    /// The same request and actor with a shorter deadline.
    public func with(timeoutMs: Int) -> RPCContext {
        var c = self
        let d = Deadline.after(ms: timeoutMs)
        if d < c.deadline { c.deadline = d }
        return c
    }
}
