import JSON
import Store
import Runtime
import ParcelXAPI

/// The audit log of provider calls: a request log written before each call and a response log
/// after it (success, business failure, HTTP error, timeout), the secret never stored.
struct ProviderLogRepository: Sendable {
    let store: any DocumentStore
    /// Stamps the logs.
    var clock: any WallClock = SystemClock()
    static let requests = "request_logs"
    static let responses = "response_logs"

    func prepare() throws {
        try store.prepare([
            CollectionSpec(Self.requests, indexes: [IndexSpec(["orderId", "_id"], name: "reqlog_order"), IndexSpec(["createdAt"], name: "reqlog_created")]),
            CollectionSpec(Self.responses, indexes: [IndexSpec(["orderId", "_id"], name: "resplog_order"), IndexSpec(["requestLogId"], name: "resplog_req"),
                                                     IndexSpec(["createdAt"], name: "resplog_created")]),
        ], schemaVersion: 1)
    }

    /// Writes the request log; returns its id.
    func logRequest(orderId: String, exchange ex: ProviderExchange, jobId: String, attempt: Int, requestId: String?) throws -> String {
        let id = ID.make("pxreq")
        var headers: [String: JSON] = [:]
        for (k, v) in ParcelXAuth.redacted(ex.requestHeaders) { headers[k] = .string(v) }
        let doc: JSON = [
            "_id": .string(id), "orderId": .string(orderId), "operation": .string(ex.operation.rawValue),
            "method": .string(ex.method), "url": .string(ex.url), "headers": .object(headers), "body": ex.requestBody ?? .null,
            "jobId": .string(jobId), "attempt": .int(Int64(attempt)), "requestId": JSON(requestId), "createdAt": .string(clock.nowISO()),
        ]
        _ = try store.insert(Self.requests, doc)
        return id
    }

    /// Writes the response log of a finished exchange; returns its id.
    func logResponse(requestLogId: String, orderId: String, exchange ex: ProviderExchange, outcome: String, message: String?) throws -> String {
        let id = ID.make("pxres")
        let doc: JSON = [
            "_id": .string(id), "requestLogId": .string(requestLogId), "orderId": .string(orderId),
            "operation": .string(ex.operation.rawValue), "outcome": .string(outcome),
            "httpStatus": ex.httpStatus.map { .int(Int64($0)) } ?? .null,
            "body": ex.responseBody ?? (ex.responseText.map { .string($0) } ?? .null),
            "error": JSON(ex.error), "message": JSON(message), "durationMs": .int(Int64(ex.durationMs)),
            "createdAt": .string(clock.nowISO()),
        ]
        _ = try store.insert(Self.responses, doc)
        return id
    }

    /// Removes the request and response logs written before `ms` (the retention sweep); answers
    /// how many went.
    func removeOlder(thanMs ms: Int64) throws -> Int {
        let cutoff = JSON.string(Clock.iso8601(millis: ms))
        return try store.delete(Self.responses, where: .lt("createdAt", cutoff)) + store.delete(Self.requests, where: .lt("createdAt", cutoff))
    }

    func logs(orderId: String) throws -> JSON {
        let reqs = try store.find(Self.requests, where: .eq("orderId", .string(orderId)), sort: [.asc("_id")], limit: 500)
        let resps = try store.find(Self.responses, where: .eq("orderId", .string(orderId)), sort: [.asc("_id")], limit: 500)
        var byReq: [String: JSON] = [:]
        for r in resps { if let k = r["requestLogId"]?.stringValue { byReq[k] = r } }
        let entries: [JSON] = reqs.map { q in
            let id = q["_id"]?.stringValue ?? ""
            return ["request": Self.clean(q), "response": byReq[id].map(Self.clean) ?? .null]
        }
        return ["orderId": .string(orderId), "entries": .array(entries), "requestCount": .int(Int64(reqs.count)), "responseCount": .int(Int64(resps.count))]
    }

    static func clean(_ d: JSON) -> JSON {
        var x = d.objectValue ?? [:]
        x["id"] = x.removeValue(forKey: "_id")
        return .object(x)
    }
}
