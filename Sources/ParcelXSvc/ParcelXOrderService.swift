import Foundation
import JSON
import RPC
import Runtime
import Queue
import Domain
import ParcelXAPI

/// The two provider workflows of the seed, `processParcelXOrder` and
/// `processParcelXOrderCancellation`, made safe against crashes and races:
/// - at most one shipment per order: the provider's `client_order_id` is the order id, and any
///   attempt after an uncertain one (timeout, broken connection, a worker killed mid-call, a job
///   run again) first looks the order up at the provider before creating;
/// - a cancel racing the create: a create that succeeds after the order was cancelled records
///   the AWB and queues another cancel, so no live shipment stays behind;
/// - money: a final failure or a successful cancel refunds the charge (at most once, by ledger
///   reference) before the order's status moves.
final class ParcelXOrderService: Sendable {
    let client: ParcelXClient
    let logs: ProviderLogRepository
    let orders: RPCClient
    let cancelQueue: JobQueue
    let createQueue: JobQueue
    let log: Logger
    let defaultAttempts: Int

    init(client: ParcelXClient, logs: ProviderLogRepository, orders: RPCClient, createQueue: JobQueue, cancelQueue: JobQueue, log: Logger, defaultAttempts: Int) {
        self.createQueue = createQueue
        self.client = client
        self.logs = logs
        self.orders = orders
        self.cancelQueue = cancelQueue
        self.log = log
        self.defaultAttempts = defaultAttempts
    }

    struct JobInfo {
        let id: String
        let attempt: Int  // 1-based
        let isLast: Bool
        let requestId: String
    }

    func jobInfo(_ job: Job) -> JobInfo {
        let attempts = Int(job.opts["attempts"]?.intValue ?? Int64(defaultAttempts))
        let data = (try? JSONParser.parse(job.dataJSON)) ?? .null
        return JobInfo(id: job.id, attempt: job.attemptsMade + 1, isLast: job.attemptsMade + 1 >= attempts,
                       requestId: data["requestId"]?.stringValue ?? ID.make("req"))
    }

    private func ctx(_ j: JobInfo) -> RPCContext { .new(actor: .system, timeoutMs: 10_000, requestId: j.requestId) }

    private func getOrder(_ id: String, _ j: JobInfo) throws -> JSON {
        let r = Result { () throws(RPCError) -> JSON in try orders.call("orders.internal.get", ["orderId": .string(id)], ctx: ctx(j)) }
        switch r {
        case .success(let o): return o
        case .failure(let e):
            if e.code == RPCError.notFoundCode { throw UnrecoverableError("order \(id) does not exist") }
            throw e
        }
    }

    @discardableResult
    private func transition(_ id: String, from: [String], to: String?, set: [String: JSON], refund: Bool = false, note: String? = nil, _ j: JobInfo) throws -> (applied: Bool, order: JSON) {
        var p: [String: JSON] = ["orderId": .string(id), "from": .array(from.map { .string($0) }), "set": .object(set), "refund": .bool(refund)]
        if let to { p["to"] = .string(to) }
        if let note { p["note"] = .string(note) }
        let r = try orders.call("orders.internal.transition", .object(p), ctx: ctx(j))
        return (r["applied"] == true, r["order"] ?? .null)
    }

    /// Calls the provider with a request log before and a response log after.
    private func call(_ op: ParcelXOperation, orderId: String, body: JSON?, query: String? = nil, _ j: JobInfo) async throws -> (ProviderExchange, String, String) {
        let pre = client.request(op, body: body, queryValue: query)
        let reqId = try logs.logRequest(orderId: orderId, exchange: pre, jobId: j.id, attempt: j.attempt, requestId: j.requestId)
        let ex = await client.perform(op, body: body, queryValue: query)
        let outcome: String
        if ex.timedOut { outcome = "timeout" }
        else if ex.error != nil { outcome = "transport_error" }
        else if let s = ex.httpStatus, !(200..<300).contains(s) { outcome = "http_error" }
        else if ex.responseBody?["status"] == true { outcome = "success" }
        else { outcome = "business_failure" }
        let msg = ex.responseBody.flatMap { ParcelXMessage.first(in: $0) } ?? ex.error
        let resId = try logs.logResponse(requestLogId: reqId, orderId: orderId, exchange: ex, outcome: outcome, message: msg)
        Metrics.shared.increment("oops_provider_calls_total", ["operation": op.rawValue, "outcome": outcome])
        Metrics.shared.observe("oops_provider_call_duration_seconds", ["operation": op.rawValue], seconds: Double(ex.durationMs) / 1000)
        log.info("provider call", requestId: j.requestId, ["orderId": .string(orderId), "operation": .string(op.rawValue), "outcome": .string(outcome),
                                                           "httpStatus": ex.httpStatus.map { .int(Int64($0)) } ?? .null, "durationMs": .int(Int64(ex.durationMs))])
        return (ex, reqId, resId)
    }

    /// Throws the error class the queue needs: 401 fails at once, other non-2xx and uncertain
    /// outcomes retry.
    private func transportError(_ ex: ProviderExchange) -> Error {
        if let s = ex.httpStatus, !(200..<300).contains(s) {
            let m = ex.responseBody.flatMap { ParcelXMessage.first(in: $0) } ?? "HTTP \(s)"
            if s == 401 { return UnrecoverableError(HttpError(status: s, message: m).description) }
            return HttpError(status: s, message: m)
        }
        return UncertainOutcome(reason: ex.error ?? "no answer")
    }

    /// Looks the order up at the provider by its `client_order_id`. Returns the live AWB, or nil
    /// when the provider has no (live) shipment for it.
    struct Found {
        let awb: String
        let courier: String?
        let cancelled: Bool
        let refs: (String, String)
    }

    private func lookup(_ orderId: String, _ j: JobInfo) async throws -> Found? {
        let (ex, reqId, resId) = try await call(.trackByClientOrderId, orderId: orderId, body: nil, query: orderId, j)
        guard ex.error == nil, let s = ex.httpStatus, (200..<300).contains(s) else { throw transportError(ex) }
        guard let b = ex.responseBody, b["status"] == true else { return nil }
        let d = b["data"]?.objectValue.map { JSON.object($0) } ?? b
        guard let awb = (d["awb_number"] ?? d["awb"] ?? b["awb_number"])?.stringValue, !awb.isEmpty else { return nil }
        let code = (d["current_status"]?["status_code"] ?? b["current_status"]?["status_code"])?.intValue
        return Found(awb: awb, courier: (d["courier_name"] ?? b["courier_name"])?.stringValue, cancelled: code == 227, refs: (reqId, resId))
    }

    // MARK: create

    func processParcelXOrder(orderId: String, job: Job) async throws -> JSON {
        let j = jobInfo(job)
        let order = try getOrder(orderId, j)
        let status = order["status"]?.stringValue ?? ""
        guard status == "pending" else {
            return ["skipped": true, "status": .string(status)]
        }
        // An earlier attempt may have reached the provider: look before creating again.
        if job.attemptsMade > 0 || job.stalledCounter > 0 || !(order["parcelxRequestRefId"]?.isNull ?? true) {
            do {
                if let found = try await lookup(orderId, j), !found.cancelled {
                    return try placed(orderId, awb: found.awb, courier: found.courier, refs: found.refs, j)
                }
            } catch {
                // The provider cannot even be asked. On the last attempt the order fails for good.
                if error is UnrecoverableError || j.isLast {
                    try finalFailure(orderId, refs: [:], message: String(describing: error), j, uncertain: true)
                }
                throw error
            }
        }
        let body = try JSON(encoding: ParcelXOrderMapper.createRequest(order: order))
        let (ex, reqId, resId) = try await call(.createOrder, orderId: orderId, body: body, j)
        let refs: [String: JSON] = ["parcelxRequestRefId": .string(reqId), "parcelxResponseRefId": .string(resId)]
        if ex.error == nil, let s = ex.httpStatus, (200..<300).contains(s), let b = ex.responseBody {
            if b["status"] == true, let awb = b["data"]?["awb_number"]?.stringValue {
                return try placed(orderId, awb: awb, courier: b["data"]?["courier_name"]?.stringValue, refs: (reqId, resId), j)
            }
            // A refusal. If it is "already exists", an earlier attempt did create it.
            if let found = try await lookup(orderId, j), !found.cancelled {
                return try placed(orderId, awb: found.awb, courier: found.courier, refs: found.refs, j)
            }
            let msg = ParcelXMessage.first(in: b) ?? "refused by the provider"
            try finalFailure(orderId, refs: refs, message: msg, j)
            throw UnrecoverableError("provider refused the order: \(msg)")
        }
        let err = transportError(ex)
        if err is UnrecoverableError || j.isLast {
            try finalFailure(orderId, refs: refs, message: String(describing: err), j, uncertain: ex.httpStatus == nil)
        } else {
            try transition(orderId, from: ["pending"], to: nil, set: refs, j)
        }
        throw err
    }

    private func placed(_ orderId: String, awb: String, courier: String?, refs: (String, String), _ j: JobInfo) throws -> JSON {
        var set: [String: JSON] = ["awbNumber": .string(awb), "providerSyncStatus": "synced",
                                   "parcelxRequestRefId": .string(refs.0), "parcelxResponseRefId": .string(refs.1)]
        if let c = courier { set["courierName"] = .string(c) }
        let r = try transition(orderId, from: ["pending"], to: "placed", set: set, note: "shipment booked", j)
        if r.applied { return ["placed": true, "awb": .string(awb)] }
        // The order was cancelled while the provider booked it: keep the AWB and cancel the shipment.
        let st = r.order["status"]?.stringValue ?? ""
        if st == "cancel_requested" || st == "cancelled" {
            try transition(orderId, from: ["cancel_requested", "cancelled"], to: nil, set: set.filter { $0.key != "providerSyncStatus" }, j)
            _ = try cancelQueue.add(name: QueueNames.cancelJob, dataJSON: JSON.object(["orderId": .string(orderId), "requestId": .string(j.requestId)]).serialized(),
                                    options: JobOptions(jobId: "cancel-\(orderId)-late-\(awb)"))
            log.warn("shipment booked after cancellation; cancelling it", requestId: j.requestId, ["orderId": .string(orderId), "awb": .string(awb)])
            return ["placed": true, "awb": .string(awb), "cancelQueued": true]
        }
        return ["placed": true, "awb": .string(awb), "status": .string(st)]
    }

    /// The order fails for good and its charge is refunded. When an earlier call may have
    /// reached the provider unseen (`uncertain`), a clean-up job keeps asking the provider for a
    /// while and cancels any shipment it finds, so a failed order never keeps a live shipment.
    private func finalFailure(_ orderId: String, refs: [String: JSON], message: String, _ j: JobInfo, uncertain: Bool = false) throws {
        var set = refs
        set["providerSyncStatus"] = "failed"
        set["providerMessage"] = .string(String(message.prefix(500)))
        let r = try transition(orderId, from: ["pending"], to: "failed", set: set, refund: true, note: "provider refused or gave up", j)
        if r.applied && (uncertain || j.attempt > 1) {
            _ = try cancelQueue.add(name: QueueNames.cancelJob,
                                    dataJSON: JSON.object(["orderId": .string(orderId), "requestId": .string(j.requestId), "cleanup": true]).serialized(),
                                    options: JobOptions(jobId: "cancel-\(orderId)-cleanup", attempts: 12, backoff: .exponential(delayMs: 5000)))
        }
    }

    // MARK: cancel

    func processParcelXOrderCancellation(orderId: String, job: Job) async throws -> JSON {
        let j = jobInfo(job)
        let order = try getOrder(orderId, j)
        let status = order["status"]?.stringValue ?? ""
        if status == "failed" {
            return try await cleanUpFailed(orderId, j)
        }
        guard status == "cancel_requested" || status == "cancelled" else {
            return ["skipped": true, "status": .string(status)]
        }
        var awb = order["awbNumber"]?.stringValue
        var refs: [String: JSON] = [:]
        if awb == nil {
            // No AWB recorded: the create may not have run, or may have reached the provider unseen.
            let found: Found?
            do { found = try await lookup(orderId, j) } catch {
                if (error is UnrecoverableError || j.isLast) && status == "cancel_requested" {
                    try refusedCancel(orderId, order: order, refs: [:], message: String(describing: error), j)
                }
                throw error
            }
            if let found {
                if found.cancelled { awb = nil } else { awb = found.awb }
                refs = ["parcelxRequestRefId": .string(found.refs.0), "parcelxResponseRefId": .string(found.refs.1)]
                if !found.cancelled { refs["awbNumber"] = .string(found.awb) }
            }
        }
        guard let liveAWB = awb else {
            // Nothing live at the provider: the order is cancelled and the charge refunded.
            var set = refs
            set["providerSyncStatus"] = "synced"
            try transition(orderId, from: ["cancel_requested", "cancelled"], to: status == "cancelled" ? nil : "cancelled", set: set, refund: true,
                           note: "cancelled before booking", j)
            return ["cancelled": true, "atProvider": false]
        }
        let (ex, reqId, resId) = try await call(.cancelOrder, orderId: orderId, body: ["awb": .string(liveAWB)], j)
        refs["parcelxRequestRefId"] = .string(reqId)
        refs["parcelxResponseRefId"] = .string(resId)
        if ex.error == nil, let s = ex.httpStatus, (200..<300).contains(s), let b = ex.responseBody {
            let msg = ParcelXMessage.first(in: b) ?? ""
            if b["status"] == true || msg.lowercased().contains("already cancel") {
                var set = refs
                set["providerSyncStatus"] = "synced"
                try transition(orderId, from: ["cancel_requested", "cancelled"], to: status == "cancelled" ? nil : "cancelled", set: set, refund: true,
                               note: "cancelled at the provider", j)
                return ["cancelled": true, "atProvider": true, "awb": .string(liveAWB)]
            }
            try refusedCancel(orderId, order: order, refs: refs, message: msg, j)
            throw UnrecoverableError("provider refused the cancellation: \(msg)")
        }
        let err = transportError(ex)
        if err is UnrecoverableError || j.isLast {
            try refusedCancel(orderId, order: order, refs: refs, message: String(describing: err), j)
        }
        throw err
    }

    /// The provider would not cancel: the order goes back to where it was, sync `failed`.
    /// The provider would not (or could not) cancel: the order goes back to where it was, sync
    /// `failed`. An order that was never booked is booked after all: with the AWB the lookup
    /// found, or by a new create job (its first one ended when it saw the cancel).
    private func refusedCancel(_ orderId: String, order: JSON, refs: [String: JSON], message: String, _ j: JobInfo) throws {
        var set = refs
        set["providerSyncStatus"] = "failed"
        set["providerMessage"] = .string(String(message.prefix(500)))
        var back = order["cancelFrom"]?.stringValue ?? "placed"
        let knownAWB = refs["awbNumber"]?.stringValue ?? order["awbNumber"]?.stringValue
        if back == "pending" && knownAWB != nil { back = "placed" }
        let r = try transition(orderId, from: ["cancel_requested"], to: back, set: set, note: "provider refused the cancellation", j)
        if r.applied && back == "pending" {
            let n = order["history"]?.arrayValue?.count ?? 0
            _ = try createQueue.add(name: QueueNames.createJob, dataJSON: JSON.object(["orderId": .string(orderId), "requestId": .string(j.requestId)]).serialized(),
                                    options: JobOptions(jobId: "create-\(orderId)-after-cancel-\(n)"))
        }
    }

    /// A failed order whose provider calls were uncertain: cancel any shipment the provider
    /// turns out to hold. The order stays failed; its refund was made when it failed.
    private func cleanUpFailed(_ orderId: String, _ j: JobInfo) async throws -> JSON {
        guard let found = try await lookup(orderId, j), !found.cancelled else {
            return ["cleanup": true, "liveShipment": false]
        }
        let (ex, _, _) = try await call(.cancelOrder, orderId: orderId, body: ["awb": .string(found.awb)], j)
        if ex.error == nil, let s = ex.httpStatus, (200..<300).contains(s), let b = ex.responseBody,
           b["status"] == true || (ParcelXMessage.first(in: b) ?? "").lowercased().contains("already cancel") {
            log.warn("cancelled a shipment left behind by a failed order", requestId: j.requestId, ["orderId": .string(orderId), "awb": .string(found.awb)])
            return ["cleanup": true, "liveShipment": true, "cancelled": true, "awb": .string(found.awb)]
        }
        throw transportError(ex)
    }
}
