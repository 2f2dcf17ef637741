import Foundation
import JSON

public enum LogLevel: String, Sendable, Comparable {
    case debug, info, warn, error
    var rank: Int {
        switch self {
        case .debug: 0
        case .info: 1
        case .warn: 2
        case .error: 3
        }
    }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rank < b.rank }
}

/// Structured logs: one JSON object per line on stderr with time, level, service, instance,
/// message and request id. Dynamic values go in metadata, never into the message text.
public final class Logger: Sendable {
    public let service: String
    public let instance: Int
    public let minLevel: LogLevel
    private let lock = Locked<Void>(())

    public init(service: String, instance: Int, level: LogLevel) {
        self.service = service
        self.instance = instance
        self.minLevel = level
    }

    public func log(_ level: LogLevel, _ message: String, requestId: String? = nil, _ meta: [String: JSON] = [:]) {
        guard level >= minLevel else { return }
        var o: [String: JSON] = meta
        o["time"] = .string(Clock.nowISO())
        o["level"] = .string(level.rawValue)
        o["service"] = .string(service)
        o["instance"] = .int(Int64(instance))
        o["msg"] = .string(message)
        if let r = requestId { o["requestId"] = .string(r) }
        var bytes = JSON.object(o).serializedBytes()
        bytes.append(0x0A)
        lock.withLock { _ in
            bytes.withUnsafeBytes { p in
                var off = 0
                while off < p.count {
                    let n = write(2, p.baseAddress! + off, p.count - off)
                    if n <= 0 { if errno == EINTR { continue }; break }
                    off += n
                }
            }
        }
    }

    public func debug(_ m: String, requestId: String? = nil, _ meta: [String: JSON] = [:]) { log(.debug, m, requestId: requestId, meta) }
    public func info(_ m: String, requestId: String? = nil, _ meta: [String: JSON] = [:]) { log(.info, m, requestId: requestId, meta) }
    public func warn(_ m: String, requestId: String? = nil, _ meta: [String: JSON] = [:]) { log(.warn, m, requestId: requestId, meta) }
    public func error(_ m: String, requestId: String? = nil, _ meta: [String: JSON] = [:]) { log(.error, m, requestId: requestId, meta) }
}
