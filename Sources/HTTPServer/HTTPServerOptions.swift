import Foundation
import Runtime

/// Limits and behaviour of an `HTTPServer`; the defaults suit the Gateway and the sandbox.
/// Crossing a limit gets the JSON error body with `X-Request-Id`, and the connection is closed.
public struct HTTPServerOptions: Sendable {
    /// Concurrent connections; a connection beyond it gets 503 with `Retry-After` and is closed.
    public var connectionLimit: Int = 1024
    /// The request line plus all header lines, in bytes: beyond it 431 (414 when the target
    /// alone is longer).
    public var maxHeaderBytes: Int = 16 * 1024
    /// Header fields per request: beyond it 431.
    public var maxHeaderCount: Int = 100
    /// Idle time after which a keep-alive connection is closed; a request not completely
    /// received within this time of its first byte gets 408.
    public var connectionTimeoutSeconds: Int = 30
    /// Largest accepted request body, with Content-Length or chunked: beyond it 413. A larger
    /// declared Content-Length is refused before any body byte is read. The Gateway sets it from
    /// `Config.httpMaxBodyBytes`, from which the services' RPC line limit is also derived.
    public var maxBodyBytes: Int = Config.defaultHTTPMaxBodyBytes
    /// When false every response carries `Connection: close`.
    public var keepAlive: Bool = true
    /// How long `stop()` waits for in-flight requests before closing every connection.
    public var drainTimeoutMs: Int = 10_000
    /// Threads that read requests, answer those whose handler replies at once, and write every
    /// response.
    public var eventThreads: Int = max(2, ProcessInfo.processInfo.activeProcessorCount)
    /// Most threads that run handlers which may block (`HTTPReply.later`); started as needed.
    /// Beyond it such requests wait for a free worker, their connections idle.
    public var maxWorkers: Int = 256

    public init() {}

    public init(connectionLimit: Int = 1024, maxHeaderBytes: Int = 16 * 1024, connectionTimeoutSeconds: Int = 30,
                maxBodyBytes: Int = Config.defaultHTTPMaxBodyBytes, keepAlive: Bool = true, drainTimeoutMs: Int = 10_000) {
        self.connectionLimit = connectionLimit
        self.maxHeaderBytes = maxHeaderBytes
        self.connectionTimeoutSeconds = connectionTimeoutSeconds
        self.maxBodyBytes = maxBodyBytes
        self.keepAlive = keepAlive
        self.drainTimeoutMs = drainTimeoutMs
    }
}
