import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import JSON
import ParcelXAPI

/// A non-2xx answer from the provider. 401 means bad keys: retrying cannot help.
struct HttpError: Error, CustomStringConvertible {
    let status: Int
    let message: String
    var description: String { "ParcelX HTTP \(status): \(message)" }
}

/// The provider did not answer in time or the connection broke: the call may or may not have
/// reached it, so the next attempt must look before it creates again.
struct UncertainOutcome: Error, CustomStringConvertible {
    let reason: String
    var description: String { "ParcelX outcome unknown: \(reason)" }
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

/// The ParcelX HTTP client: one URLSession with connect/idle and total timeouts, the
/// `access-token` header on every call, typed operations. It never logs; callers store the
/// exchange in the audit log.
final class ParcelXClient: Sendable {
    let baseURL: String
    private let token: String
    private let session: URLSession
    let requestTimeoutS: Double

    init(baseURL: String, accessKey: String, secretKey: String, requestTimeoutS: Double, totalTimeoutS: Double, maxConnections: Int) {
        self.baseURL = baseURL
        token = ParcelXAuth.accessToken(accessKey: accessKey, secretKey: secretKey)
        session = URLSession(configuration: ParcelXSession.configuration(maxConnections: maxConnections, requestTimeoutS: requestTimeoutS,
                                                                          totalTimeoutS: totalTimeoutS))
        self.requestTimeoutS = requestTimeoutS
    }

    /// Performs one operation; always returns the exchange (for the log), and the parsed body or an error.
    func perform(_ op: ParcelXOperation, body: JSON?, queryValue: String? = nil) -> ProviderExchange {
        let ep = op.endpoint
        let url = ep.url(baseURL: baseURL, value: queryValue)
        var req = URLRequest(url: URL(string: url)!)
        req.httpMethod = ep.method
        req.setValue(token, forHTTPHeaderField: ParcelXAuth.headerName)
        req.setValue("application/json", forHTTPHeaderField: "Content-Type")
        req.setValue("application/json", forHTTPHeaderField: "Accept")
        if let b = body { req.httpBody = Data(b.serializedBytes()) }
        var ex = ProviderExchange(operation: op, method: ep.method, url: url,
                                  requestHeaders: [(ParcelXAuth.headerName, ParcelXAuth.redactedValue), ("Content-Type", "application/json")],
                                  requestBody: body, httpStatus: nil, responseBody: nil, responseText: nil, durationMs: 0, error: nil, timedOut: false)
        let t0 = Date()
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        let task = session.dataTask(with: req) { data, resp, err in
            result.set(data: data, status: (resp as? HTTPURLResponse)?.statusCode, error: err)
            done.signal()
        }
        task.resume()
        done.wait()
        ex.durationMs = Int(Date().timeIntervalSince(t0) * 1000)
        let (data, status, err) = result.get()
        if let e = err as? URLError {
            ex.error = e.code == .timedOut ? "timeout" : "transport: \(e.code.rawValue)"
            ex.timedOut = e.code == .timedOut
            return ex
        } else if let e = err {
            ex.error = "transport: \(e.localizedDescription)"
            return ex
        }
        ex.httpStatus = status
        if let d = data {
            let bytes = [UInt8](d.prefix(1 << 20))
            if let j = try? JSONParser.parse(bytes, maxDepth: 32) { ex.responseBody = j } else { ex.responseText = String(decoding: bytes.prefix(4096), as: UTF8.self) }
        }
        return ex
    }
}

private final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data: Data?
    private var status: Int?
    private var error: Error?
    func set(data: Data?, status: Int?, error: Error?) {
        lock.lock(); defer { lock.unlock() }
        self.data = data; self.status = status; self.error = error
    }
    func get() -> (Data?, Int?, Error?) {
        lock.lock(); defer { lock.unlock() }
        return (data, status, error)
    }
}
