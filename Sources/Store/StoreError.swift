import Runtime

/// Why a store operation failed. `description` is safe to show a client; `detail` (driver
/// messages, paths, SQL) belongs only in server logs.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    /// The few cases a caller reacts to differently.
    public enum Kind: String, Sendable {
        /// The SQLite file exists but is not a database (wrong file, or corrupt header).
        case notADatabase
        /// The store was written by a newer binary; running an older one could corrupt it.
        case schemaTooNew
        /// The backend cannot be reached or is busy past its timeout; retry later (/readyz shows it).
        case unavailable
        /// The caller asked for something malformed: bad path, bad document, unknown collection.
        case invalid
        /// An update would give a document a key that a unique index already holds elsewhere.
        case conflict
        /// Anything else the backend reported.
        case `internal`
    }

    public let kind: Kind
    public let message: String
    public let detail: String?

    public init(_ kind: Kind, _ message: String, detail: String? = nil) {
        self.kind = kind
        self.message = message
        self.detail = detail
    }

    public var description: String { "\(kind.rawValue): \(message)" }

    /// Everything known, for the server log only.
    public var debugDescription: String { detail.map { "\(description) (\($0))" } ?? description }
}

extension StoreError: TransientStartError {
    public var isTransient: Bool { kind == .unavailable }
}

extension StoreError: CustomDebugStringConvertible {}

/// What a caller sees of a store failure: an unreachable store is an outage the caller may
/// retry (503); a unique key taken elsewhere is a conflict (409); anything else — a malformed
/// query, a file that is not a database, a document that does not decode — is this service's
/// fault (500), never reported as an outage.
extension StoreError: RPCErrorConvertible {
    public var errorCode: ErrorCode {
        switch kind {
        case .unavailable: return .unavailable
        case .conflict: return .conflict
        case .notADatabase, .schemaTooNew, .invalid, .internal: return .internalError
        }
    }

    public var publicMessage: String {
        switch kind {
        case .unavailable: return "The store is unavailable; retry shortly"
        case .conflict: return "A unique key is already taken"
        default: return ErrorCode.internalError.title
        }
    }
}
