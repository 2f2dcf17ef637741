import JSON
import RPC
import Runtime
import Queue
import Domain

/// What ParcelXSvc knows of one order, for its timeline (`orders.timeline`): every provider call
/// from the audit log (operation, outcome, HTTP status, latency; the bodies only when asked, for
/// admins), and the jobs those calls ran in, read back from Redis (added, finished, attempts,
/// failure reason). Jobs already removed by their queue's retention are missing; their calls are not.
enum OrderActivity {
    /// Jobs looked up per order at most (the newest ids first): a long-tracked shipment has many polls.
    static let maxJobs = 60

    static func method(logs: ProviderLogRepository, queues: [String: JobQueue], log: Logger) -> Method {
        Method("parcelx.orderActivity", summary: "An order's provider calls and jobs, for its timeline", roles: [.system],
               params: .object([("orderId", .id), ("bodies", .boolean)], required: ["orderId"]), result: .anything) { p, ctx throws in
            let orderId = try p.requiredString("orderId")
            let found: JSON
            do { found = try logs.logs(orderId: orderId) } catch {
                log.error("provider log read failed", requestId: ctx.requestId, ["error": .string(String(describing: error))])
                throw RPCError.unavailable("Log store unavailable")
            }
            let entries = found["entries"]?.arrayValue ?? []
            let calls = entries.map { call($0, bodies: p["bodies"] == true) }
            var ids: [String] = []
            for id in ["create-\(orderId)"] + entries.reversed().compactMap({ $0["request"]?["jobId"]?.stringValue }) where !ids.contains(id) {
                ids.append(id)
                if ids.count >= maxJobs { break }
            }
            var jobs: [JSON] = []
            for id in ids {
                guard let q = queue(of: id, queues), let j = try? q.job(id: id) else { continue }
                jobs.append(["queue": .string(q.name), "id": .string(j.id), "name": .string(j.name), "state": JSON(j.state?.rawValue),
                             "attemptsMade": .int(Int64(j.attemptsMade)), "attempts": j.opts["attempts"] ?? .null,
                             "addedAt": .string(Clock.iso8601(millis: j.timestamp)),
                             "processedAt": j.processedOn.map { .string(Clock.iso8601(millis: $0)) } ?? .null,
                             "finishedAt": j.finishedOn.map { .string(Clock.iso8601(millis: $0)) } ?? .null,
                             "failedReason": JSON(j.failedReason.map { String($0.prefix(500)) })])
            }
            return ["calls": .array(calls), "jobs": .array(jobs)]
        }
    }

    /// The queue a job id belongs to, by the id rules of `ProviderJob`.
    static func queue(of id: String, _ queues: [String: JobQueue]) -> JobQueue? {
        if id.hasPrefix("create-") { return queues[QueueNames.orders] }
        if id.hasPrefix("cancel-") { return queues[QueueNames.cancellations] }
        if id.hasPrefix("track-") { return queues[QueueNames.tracking] }
        return nil
    }

    /// One audit log pair as a timeline call.
    static func call(_ e: JSON, bodies: Bool) -> JSON {
        let q = e["request"] ?? .null, r = e["response"] ?? .null
        var o: [String: JSON] = [
            "operation": q["operation"] ?? .null, "method": q["method"] ?? .null, "at": q["createdAt"] ?? .null,
            "jobId": q["jobId"] ?? .null, "attempt": q["attempt"] ?? .null,
            "outcome": r["outcome"] ?? "no_answer_logged", "httpStatus": r["httpStatus"] ?? .null, "durationMs": r["durationMs"] ?? .null,
            "answeredAt": r["createdAt"] ?? .null, "message": r["message"] ?? .null,
        ]
        if bodies {
            o["url"] = q["url"] ?? .null
            o["requestBody"] = q["body"] ?? .null
            o["responseBody"] = r["body"] ?? .null
            o["error"] = r["error"] ?? .null
        }
        return .object(o)
    }
}
