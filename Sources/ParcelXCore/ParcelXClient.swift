import Foundation
import HTTPClient
import JSON
import ParcelXAPI
import Runtime

/// A non-2xx answer from the provider. 401 means bad keys: retrying cannot help.
struct HttpError: Error, CustomStringConvertible {
    let status: Int
    let message: String
    var description: String { "ParcelX HTTP \(status): \(message)" }
}

/// What a caller sees of a failed provider call: the provider is a dependency, so any failure of
/// it is an outage (503); its answer text stays in the audit log.
extension HttpError: RPCErrorConvertible {
    var errorCode: ErrorCode { .unavailable }
    var publicMessage: String { "The provider refused the call (HTTP \(status))" }
}

/// The provider did not answer in time or the connection broke: the call may or may not have
/// reached it, so the next attempt must look before it creates again.
struct UncertainOutcome: Error, CustomStringConvertible {
    let reason: String
    var description: String { "ParcelX outcome unknown: \(reason)" }
}

extension UncertainOutcome: RPCErrorConvertible {
    var errorCode: ErrorCode { .unavailable }
    var publicMessage: String { "The provider did not answer in time" }
}

/// One provider exchange as it is logged: what was sent (secret redacted) and what came back.
struct ProviderExchange: Sendable {
    var operation: ParcelXOperation
    var method: String
    var url: String
    var requestHeaders: [(String, String)]
    var requestBody: JSON?
    var httpStatus: Int?
    var responseBody: JSON?
    var responseText: String?
    var durationMs: Int
    var error: String?
    var timedOut: Bool
}

/// The ParcelX HTTP client: typed operations over an `HTTPTransport` (in service, one
/// `CurlHTTPClient` whose single loop thread carries every call in flight), the `access-token`
/// header on every call. It never logs; callers store the exchange in the audit log.
final class ParcelXClient: Sendable {
    let baseURL: String
    private let token: String
    let transport: any HTTPTransport
    /// Set for the calls of cancellation jobs: they go before creates wherever calls wait.
    @TaskLocal static var urgent = false

    init(baseURL: String, accessKey: String, secretKey: String, transport: any HTTPTransport) {
        self.baseURL = baseURL
        token = ParcelXAuth.accessToken(accessKey: accessKey, secretKey: secretKey)
        self.transport = transport
    }

    /// The exchange as it is logged before the call: what will be sent, secret redacted.
    func request(_ op: ParcelXOperation, body: JSON?, queryValue: String? = nil) -> ProviderExchange {
        ProviderExchange(operation: op, method: op.endpoint.method, url: op.endpoint.url(baseURL: baseURL, value: queryValue),
                         requestHeaders: [(ParcelXAuth.headerName, ParcelXAuth.redactedValue), ("Content-Type", "application/json")],
                         requestBody: body, httpStatus: nil, responseBody: nil, responseText: nil, durationMs: 0, error: nil, timedOut: false)
    }

    /// Starts one operation; `completion` gets the exchange (for the log) with the parsed body or
    /// an error. It runs on the transport's thread: hand anything slow elsewhere.
    func start(_ op: ParcelXOperation, body: JSON?, queryValue: String? = nil, completion: @escaping @Sendable (ProviderExchange) -> Void) {
        let ex = request(op, body: body, queryValue: queryValue)
        let call = HTTPCall(method: ex.method, url: ex.url,
                            headers: [(ParcelXAuth.headerName, token), ("Content-Type", "application/json"), ("Accept", "application/json")],
                            body: body.map { $0.serializedBytes() }, urgent: Self.urgent)
        transport.start(call) { answer in completion(Self.exchange(ex, answer)) }
    }

    /// Performs one operation; always returns the exchange. The calling task is suspended, not
    /// its thread, while the provider answers.
    func perform(_ op: ParcelXOperation, body: JSON?, queryValue: String? = nil) async -> ProviderExchange {
        await withCheckedContinuation { (k: CheckedContinuation<ProviderExchange, Never>) in
            start(op, body: body, queryValue: queryValue) { k.resume(returning: $0) }
        }
    }

    /// The logged exchange for an answer: a timeout or a broken call is an error (outcome unknown),
    /// otherwise the status and the body, parsed as JSON when it is JSON.
    static func exchange(_ sent: ProviderExchange, _ answer: HTTPAnswer) -> ProviderExchange {
        var ex = sent
        ex.durationMs = Int(answer.durationNanos / 1_000_000)
        if let f = answer.failure {
            ex.error = f.description
            ex.timedOut = f == .timedOut
            return ex
        }
        ex.httpStatus = answer.status
        if !answer.body.isEmpty {
            if let j = try? JSONParser.parse(answer.body, maxDepth: 32) { ex.responseBody = j } else { ex.responseText = String(decoding: answer.body.prefix(4096), as: UTF8.self) }
        }
        return ex
    }
}
