import Foundation

/// One outgoing HTTP call. The body is sent as is; headers are sent in order.
public struct HTTPCall: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]?
    /// Served before other calls wherever calls wait (a `ProviderGate`): cancellations.
    public var urgent: Bool
    /// `host:port:address` entries that pin a host name to an address checked beforehand
    /// (libcurl's CURLOPT_RESOLVE), so a second DNS answer cannot send the call elsewhere.
    public var resolve: [String]

    public init(method: String, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil, urgent: Bool = false, resolve: [String] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.urgent = urgent
        self.resolve = resolve
    }
}

/// Why a call got no HTTP answer.
public enum HTTPCallFailure: Sendable, Equatable, CustomStringConvertible {
    /// The connect or total timeout passed (the request may or may not have reached the server).
    case timedOut
    /// The server's certificate could not be verified: nothing was sent.
    case untrustedCertificate(String)
    /// Anything else on the way: refused, reset, DNS, TLS handshake.
    case transport(String)
    /// Never sent (held back too long in front of the transport): the provider did not see it.
    case notSent(String)

    public var description: String {
        switch self {
        case .timedOut: return "timeout"
        case .untrustedCertificate(let m): return "transport: certificate not trusted: \(m)"
        case .transport(let m): return "transport: \(m)"
        case .notSent(let m): return "not sent: \(m)"
        }
    }
}

/// What came back: a status and body, or a failure. `durationNanos` is from hand-over to the
/// transport until the answer was complete.
public struct HTTPAnswer: Sendable {
    public var status: Int?
    /// The body, at most the transport's `maxResponseBytes` of it (the rest is read and dropped).
    public var body: [UInt8]
    /// `Retry-After` of the final response, as sent (seconds or an HTTP date), if any.
    public var retryAfter: String?
    public var failure: HTTPCallFailure?
    public var durationNanos: UInt64

    public init(status: Int?, body: [UInt8], retryAfter: String?, failure: HTTPCallFailure?, durationNanos: UInt64) {
        self.status = status
        self.body = body
        self.retryAfter = retryAfter
        self.failure = failure
        self.durationNanos = durationNanos
    }
}

/// Something that performs HTTP calls without a thread per call: `start` hands the call over
/// and returns at once; `completion` runs later on the transport's own thread and must be
/// quick (hand heavy work to another queue). `send` is the blocking form for callers that
/// have a thread to spare.
public protocol HTTPTransport: Sendable {
    func start(_ call: HTTPCall, completion: @escaping @Sendable (HTTPAnswer) -> Void)
}

extension HTTPTransport {
    public func send(_ call: HTTPCall) -> HTTPAnswer {
        let done = DispatchSemaphore(value: 0)
        let box = AnswerBox()
        start(call) { answer in
            box.answer = answer
            done.signal()
        }
        done.wait()
        return box.answer!
    }
}

/// Written once on the transport's thread before the semaphore is signalled, read after the wait.
private final class AnswerBox: @unchecked Sendable {
    var answer: HTTPAnswer?
}
