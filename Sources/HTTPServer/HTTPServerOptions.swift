import Foundation
import Runtime

/// Limits and behaviour of an `HTTPServer`; the defaults suit the Gateway and the sandbox.
public struct HTTPServerOptions: Sendable {
    /// Concurrent connections; further ones are refused by libmicrohttpd.
    public var connectionLimit: Int = 1024
    /// libmicrohttpd's per-connection memory pool: bounds the request line plus headers
    /// (a request whose headers do not fit gets 431/413 from libmicrohttpd).
    public var connectionMemoryLimitBytes: Int = 16 * 1024
    /// Idle time after which a connection is closed (also a silent client mid-request).
    public var connectionTimeoutSeconds: Int = 30
    /// Largest accepted request body. A larger declared Content-Length is answered 413 before
    /// any body byte is read; a chunked body that grows past it gets 413 when libmicrohttpd
    /// allows an answer mid-upload, and otherwise has its connection closed. The Gateway sets it
    /// from `Config.httpMaxBodyBytes`, from which the services' RPC line limit is also derived.
    public var maxBodyBytes: Int = Config.defaultHTTPMaxBodyBytes
    /// When false every response carries `Connection: close`.
    public var keepAlive: Bool = true
    /// How long `stop()` waits for in-flight requests before closing every connection.
    public var drainTimeoutMs: Int = 10_000
    /// Threads that run libmicrohttpd's event loops (epoll): they read requests, answer those
    /// whose handler replies at once, and write every response.
    public var eventThreads: Int = max(2, ProcessInfo.processInfo.activeProcessorCount)
    /// Most threads that run handlers which may block (`HTTPReply.later`); started as needed.
    /// Beyond it such requests wait for a free worker, their connections suspended.
    public var maxWorkers: Int = 256
    /// libmicrohttpd's own error messages on stderr; off in production, where they would
    /// bypass the structured log.
    public var errorLog: Bool = false

    public init() {}

    public init(connectionLimit: Int = 1024, connectionMemoryLimitBytes: Int = 16 * 1024, connectionTimeoutSeconds: Int = 30,
                maxBodyBytes: Int = Config.defaultHTTPMaxBodyBytes, keepAlive: Bool = true, drainTimeoutMs: Int = 10_000, errorLog: Bool = false) {
        self.connectionLimit = connectionLimit
        self.connectionMemoryLimitBytes = connectionMemoryLimitBytes
        self.connectionTimeoutSeconds = connectionTimeoutSeconds
        self.maxBodyBytes = maxBodyBytes
        self.keepAlive = keepAlive
        self.drainTimeoutMs = drainTimeoutMs
        self.errorLog = errorLog
    }
}
