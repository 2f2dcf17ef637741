import Runtime

/// One RESP reply, copied out of hiredis so it outlives the C reply object.
public enum RedisReply: Sendable, Equatable {
    /// A bulk string (decoded as UTF-8; everything this project stores is text).
    case string(String)
    case int(Int64)
    case array([RedisReply])
    case null
    case status(String)
    case error(String)

    public var stringValue: String? {
        switch self {
        case .string(let s), .status(let s): return s
        case .int(let i): return String(i)
        default: return nil
        }
    }

    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .string(let s): return Int64(s)
        default: return nil
        }
    }

    public var arrayValue: [RedisReply]? { if case .array(let a) = self { return a } else { return nil } }
    public var isNull: Bool { if case .null = self { return true } else { return false } }

    /// Array elements as strings, nil elements dropped.
    public var strings: [String] { arrayValue?.compactMap { $0.stringValue } ?? [] }

    /// A flat `[field, value, …]` array (HGETALL) as a dictionary.
    public var hash: [String: String] {
        let a = strings
        var out: [String: String] = [:]
        var i = 0
        while i + 1 < a.count { out[a[i]] = a[i + 1]; i += 2 }
        return out
    }
}

/// A Redis failure: a connection problem (the client reconnects on the next command) or an error
/// reply from the server.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// Could not connect; the command was never sent, so retrying is always safe.
        case connect
        /// The connection broke after the command may have been sent.
        case io
        /// The server answered with an error reply.
        case server
        /// The server is up but cannot run commands yet (LOADING after a restart, BUSY script,
        /// READONLY replica after a failover); nothing was executed, so retrying is safe.
        case unavailable
        /// A reply had an unexpected shape.
        case protocolViolation
        case badURL
    }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { "redis \(kind): \(message)" }
    /// True for failures of the connection itself, as opposed to an answer from the server.
    public var isConnectionError: Bool { kind == .connect || kind == .io || kind == .unavailable }
    /// True when the command certainly did not run, so even a non-idempotent one may be resent.
    public var notExecuted: Bool { kind == .connect || kind == .unavailable }

    /// Classifies an error reply: transient server states are `.unavailable`, the rest `.server`.
    public static func reply(_ text: String, context: String = "") -> RedisError {
        let transient = ["LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN"]
        let word = text.prefix { $0 != " " }
        let kind: Kind = transient.contains(String(word)) ? .unavailable : .server
        return RedisError(kind, context.isEmpty ? text : "\(context): \(text)")
    }
}

extension RedisError: TransientStartError {
    public var isTransient: Bool { isConnectionError }
}

/// What a caller sees of a Redis failure: a connection that cannot be made or broke, or a server
/// not ready yet, is an outage (503); an error reply or a malformed one is a fault (500).
extension RedisError: RPCErrorConvertible {
    public var errorCode: ErrorCode { kind == .connect || kind == .io || kind == .unavailable ? .unavailable : .internalError }
    public var publicMessage: String { errorCode == .unavailable ? "Redis unavailable" : ErrorCode.internalError.title }
}
