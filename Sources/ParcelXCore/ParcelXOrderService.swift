import Foundation
import JSON
import RPC
import Runtime
import Queue
import Domain
import OrderCore
import ParcelXAPI

/// The provider adapter: the two provider workflows of the seed, `processParcelXOrder` and
/// `processParcelXOrderCancellation`, made safe against crashes and races. A job reads the typed
/// order, maps it to the ParcelX DTOs, calls the provider (a request log before, a response log
/// after), decodes the answer into the DTOs, and reports what happened to OrderSvc
/// (`orders.provider.placed`, `.failed`, `.cancelled`, `.cancelRefused`). It never decides an
/// order's status: OrderLifecycle does, in OrderSvc (docs/orders.md).
/// - at most one shipment per order: the provider's `client_order_id` is the order id, and any
///   attempt after an uncertain one (timeout, broken connection, a worker killed mid-call, a job
///   run again) first looks the order up at the provider before creating;
/// - a cancel racing the create: a booking reported after the order was cancelled is cancelled
///   at the provider by the job OrderSvc adds for it, so no live shipment stays behind;
/// - an uncertain final failure is reported as such, and OrderSvc adds a clean-up job that
///   cancels any shipment the provider turns out to hold.
final class ParcelXOrderService: Sendable {
    let client: ParcelXClient
    let logs: ProviderLogRepository
    /// OrderSvc: an `RPCClient` in the process, its `Dispatcher` in unit tests.
    let orders: any RPCCalling
    let log: Logger
    let defaultAttempts: Int
    let tracking: TrackingPolls

    init(client: ParcelXClient, logs: ProviderLogRepository, orders: any RPCCalling, log: Logger, defaultAttempts: Int, tracking: TrackingPolls) {
        self.client = client
        self.logs = logs
        self.orders = orders
        self.log = log
        self.defaultAttempts = defaultAttempts
        self.tracking = tracking
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

    private func getOrder(_ id: String, _ j: JobInfo) throws -> Order {
        let r = Result { () throws(RPCError) -> JSON in try orders.call("orders.internal.get", ["orderId": .string(id)], ctx: ctx(j)) }
        switch r {
        case .success(let o):
            do { return try Order(json: o) } catch { throw UnrecoverableError("order \(id) cannot be read: \(error)") }
        case .failure(let e):
            if e.code == ErrorCode.notFound.rawValue { throw UnrecoverableError("order \(id) does not exist") }
            throw e
        }
    }

    /// Tells OrderSvc what happened; it answers `{applied, status, jobs}`.
    @discardableResult
    private func report(_ method: String, _ orderId: String, _ params: [String: JSON], refs: Refs?, _ j: JobInfo) throws -> JSON {
        var p = params
        p["orderId"] = .string(orderId)
        if let refs {
            p["parcelxRequestRefId"] = .string(refs.request)
            p["parcelxResponseRefId"] = .string(refs.response)
        }
        return try orders.call(method, .object(p), ctx: ctx(j))
    }

    /// The request and response log ids of a provider call.
    struct Refs {
        let request: String
        let response: String
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

    /// Looks the order up at the provider by its `client_order_id`. Returns the shipment the
    /// provider holds for it (live or cancelled), or nil when it holds none.
    struct Found {
        let awb: String
        let courier: String?
        let cancelled: Bool
        let refs: Refs
    }

    private func lookup(_ orderId: String, _ j: JobInfo) async throws -> Found? {
        let (ex, reqId, resId) = try await call(.trackByClientOrderId, orderId: orderId, body: nil, query: orderId, j)
        guard ex.error == nil, let s = ex.httpStatus, (200..<300).contains(s) else { throw transportError(ex) }
        guard let t = try? ex.responseBody?.decode(ParcelXTrackResponse.self), t.status, let awb = t.awbNumber, !awb.isEmpty else { return nil }
        return Found(awb: awb, courier: t.courierName, cancelled: t.currentStatus?.code == .cancelled, refs: Refs(request: reqId, response: resId))
    }

    /// A 2xx answer with a body, decoded; nil for anything else.
    private func answer<T: Decodable>(_ ex: ProviderExchange, as: T.Type) -> (T, message: String)? {
        guard ex.error == nil, let s = ex.httpStatus, (200..<300).contains(s), let b = ex.responseBody, let v = try? b.decode(T.self) else { return nil }
        return (v, ParcelXMessage.first(in: b) ?? "")
    }

    // MARK: create

    func processParcelXOrder(orderId: String, job: Job) async throws -> JSON {
        let j = jobInfo(job)
        let order = try getOrder(orderId, j)
        guard OrderLifecycle.awaitsBooking(order) else {
            // Booked by an earlier run whose report reached OrderSvc but whose job did not finish
            // (a crash in between): that run never added the first tracking poll, so this one does.
            if OrderLifecycle.tracksShipment(order), order.trackingStatus == nil {
                try tracking.add(orderId: orderId, requestId: j.requestId, poll: 1, orderCreatedAtMs: order.createdAtMs)
            }
            return ["skipped": true, "status": order.status.json]
        }
        // An earlier attempt may have reached the provider: look before creating again.
        if job.attemptsMade > 0 || job.stalledCounter > 0 || order.parcelxRequestRefId != nil {
            do {
                if let found = try await lookup(orderId, j), !found.cancelled {
                    return try placed(orderId, awb: found.awb, courier: found.courier, refs: found.refs, j)
                }
            } catch {
                // The provider cannot even be asked. On the last attempt the order fails for good.
                if error is UnrecoverableError || j.isLast {
                    try failed(orderId, .exhausted, refs: nil, message: String(describing: error), mayHaveBooked: true, j)
                }
                throw error
            }
        }
        let body = try JSON(encoding: ParcelXOrderMapper.createRequest(order: order))
        let (ex, reqId, resId) = try await call(.createOrder, orderId: orderId, body: body, j)
        let refs = Refs(request: reqId, response: resId)
        if case let (created, message)? = answer(ex, as: ParcelXEnvelope<ParcelXCreateOrderData>.self) {
            if created.status, let awb = created.data?.awbNumber {
                return try placed(orderId, awb: awb, courier: created.data?.courierName, refs: refs, j)
            }
            // A refusal. If it is "already exists", an earlier attempt did create it.
            if let found = try await lookup(orderId, j), !found.cancelled {
                return try placed(orderId, awb: found.awb, courier: found.courier, refs: found.refs, j)
            }
            let msg = message.isEmpty ? "refused by the provider" : message
            try failed(orderId, .refused, refs: refs, message: msg, mayHaveBooked: j.attempt > 1, j)
            throw UnrecoverableError("provider refused the order: \(msg)")
        }
        let err = transportError(ex)
        if err is UnrecoverableError || j.isLast {
            try failed(orderId, .exhausted, refs: refs, message: String(describing: err), mayHaveBooked: ex.httpStatus == nil || j.attempt > 1, j)
        } else {
            try failed(orderId, .retrying, refs: refs, message: String(describing: err), mayHaveBooked: false, j)
        }
        throw err
    }

    private func placed(_ orderId: String, awb: String, courier: String?, refs: Refs, _ j: JobInfo) throws -> JSON {
        var p: [String: JSON] = ["awbNumber": .string(awb)]
        if let c = courier { p["courierName"] = .string(c) }
        let r = try report("orders.provider.placed", orderId, p, refs: refs, j)
        try startTracking(orderId, r, j)
        var out: [String: JSON] = ["placed": true, "awb": .string(awb)]
        if r["applied"] != true || r["status"] != OrderStatus.placed.json { out["status"] = r["status"] ?? .null }
        if let jobs = r["jobs"]?.arrayValue, !jobs.isEmpty {
            // OrderSvc found the order cancelled meanwhile and queued a cancel of this shipment.
            log.warn("shipment booked after cancellation; cancelling it", requestId: j.requestId, ["orderId": .string(orderId), "awb": .string(awb)])
            out["cancelQueued"] = true
        }
        return .object(out)
    }

    enum FailureOutcome: String {
        /// The job will try again: OrderSvc only keeps the call's references.
        case retrying
        /// The provider refused the order.
        case refused
        /// No usable answer for the whole retry window (or a failure not worth retrying).
        case exhausted
    }

    /// Reports a failed create attempt. `mayHaveBooked`: an earlier call may have reached the
    /// provider unseen, so OrderSvc keeps a clean-up job asking the provider for a while.
    private func failed(_ orderId: String, _ outcome: FailureOutcome, refs: Refs?, message: String, mayHaveBooked: Bool, _ j: JobInfo) throws {
        try report("orders.provider.failed", orderId, ["outcome": .string(outcome.rawValue), "message": .string(String(message.prefix(2000))),
                                                       "mayHaveBooked": .bool(mayHaveBooked)], refs: refs, j)
    }

    // MARK: cancel

    func processParcelXOrderCancellation(orderId: String, job: Job) async throws -> JSON {
        let j = jobInfo(job)
        let order = try getOrder(orderId, j)
        switch OrderLifecycle.cancelWork(order) {
        case .cleanUp: return try await cleanUpFailed(orderId, j)
        case .none: return ["skipped": true, "status": order.status.json]
        case .cancel: break
        }
        var awb = order.awbNumber
        var refs: Refs?
        var foundAWB: String?
        if awb == nil {
            // No AWB recorded: the create may not have run, or may have reached the provider unseen.
            let found: Found?
            do { found = try await lookup(orderId, j) } catch {
                if error is UnrecoverableError || j.isLast {
                    try cancelRefused(orderId, refs: nil, awb: nil, message: String(describing: error), j)
                }
                throw error
            }
            if let found {
                refs = found.refs
                if !found.cancelled {
                    awb = found.awb
                    foundAWB = found.awb
                }
            }
        }
        guard let liveAWB = awb else {
            // Nothing live at the provider.
            try cancelled(orderId, atProvider: false, awb: nil, refs: refs, j)
            return ["cancelled": true, "atProvider": false]
        }
        let (ex, reqId, resId) = try await call(.cancelOrder, orderId: orderId, body: ["awb": .string(liveAWB)], j)
        refs = Refs(request: reqId, response: resId)
        if case let (r, message)? = answer(ex, as: ParcelXStatusResponse.self) {
            if r.status || Self.alreadyCancelled(message) {
                try cancelled(orderId, atProvider: true, awb: foundAWB, refs: refs, j)
                return ["cancelled": true, "atProvider": true, "awb": .string(liveAWB)]
            }
            try cancelRefused(orderId, refs: refs, awb: foundAWB, message: message, j)
            throw UnrecoverableError("provider refused the cancellation: \(message)")
        }
        let err = transportError(ex)
        if err is UnrecoverableError || j.isLast {
            try cancelRefused(orderId, refs: refs, awb: foundAWB, message: String(describing: err), j)
        }
        throw err
    }

    /// Adds the first tracking poll of a shipment OrderSvc says is to be tracked, when no poll
    /// has reported a status yet (its id is fixed, so adding it again is a no-op while the queue
    /// keeps it). The job that reported runs again after a crash and adds it then. The first poll
    /// is due one poll interval from now (the order is young; no extra read for its age).
    private func startTracking(_ orderId: String, _ report: JSON, _ j: JobInfo) throws {
        guard report["tracks"] == true, report["trackingStatus"] == nil || report["trackingStatus"] == .null else { return }
        try tracking.add(orderId: orderId, requestId: j.requestId, poll: 1, orderCreatedAtMs: Clock.wallMillis())
    }

    /// The provider's refusal that means the shipment is cancelled already.
    static func alreadyCancelled(_ message: String) -> Bool { message.lowercased().contains("already cancel") }

    private func cancelled(_ orderId: String, atProvider: Bool, awb: String?, refs: Refs?, _ j: JobInfo) throws {
        var p: [String: JSON] = ["atProvider": .bool(atProvider)]
        if let awb { p["awbNumber"] = .string(awb) }
        try report("orders.provider.cancelled", orderId, p, refs: refs, j)
    }

    /// The provider would not (or could not) cancel. `awb`: a live shipment a lookup found.
    private func cancelRefused(_ orderId: String, refs: Refs?, awb: String?, message: String, _ j: JobInfo) throws {
        var p: [String: JSON] = ["message": .string(String(message.prefix(2000)))]
        if let awb { p["awbNumber"] = .string(awb) }
        let r = try report("orders.provider.cancelRefused", orderId, p, refs: refs, j)
        // A shipment found by the lookup of a cancel that was then refused is tracked from now.
        try startTracking(orderId, r, j)
    }

    // MARK: tracking

    /// One tracking poll: asks the provider where the shipment is (audit-logged like every
    /// call), maps its status through `ParcelXTrackingMap`, reports it to OrderSvc
    /// (`orders.provider.tracked`), and adds the next poll unless OrderSvc says tracking is over.
    /// A poll that fails on its last attempt still adds the next one.
    func processTrackingPoll(orderId: String, job: Job) async throws -> JSON {
        let j = jobInfo(job)
        guard let n = job.data["poll"]?.intValue, (1...1_000_000).contains(n) else { throw UnrecoverableError("track job has no valid poll number") }
        let poll = Int(n)
        let order = try getOrder(orderId, j)
        guard OrderLifecycle.tracksShipment(order), let awb = order.awbNumber else {
            return ["stopped": true, "status": order.status.json, "trackingStatus": order.trackingStatus.map { .string($0.rawValue) } ?? .null]
        }
        let age = Clock.wallMillis() - order.createdAtMs
        guard tracking.schedule.polls(ageMs: age) else {
            log.warn("tracking stopped: the shipment is older than OOPS_TRACK_MAX_AGE_S", requestId: j.requestId,
                     ["orderId": .string(orderId), "awb": .string(awb), "polls": .int(Int64(poll))])
            return ["stopped": true, "reason": "max_age"]
        }
        do {
            let (ex, _, _) = try await call(.trackOrder, orderId: orderId, body: nil, query: awb, j)
            guard case let (t, message)? = answer(ex, as: ParcelXTrackResponse.self) else { throw transportError(ex) }
            guard t.status, let current = t.currentStatus else {
                log.warn("the provider has no tracking for the shipment yet", requestId: j.requestId,
                         ["orderId": .string(orderId), "awb": .string(awb), "message": .string(message)])
                try tracking.add(orderId: orderId, requestId: j.requestId, poll: poll + 1, orderCreatedAtMs: order.createdAtMs)
                return ["poll": .int(n), "found": false]
            }
            let mapped = ParcelXTrackingMap.status(forProviderCode: current.statusCode)
            if mapped == nil {
                Metrics.shared.increment("oops_tracking_unknown_status_total", ["code": String(current.statusCode)])
                log.warn("unknown provider tracking status: kept raw, not mapped", requestId: j.requestId,
                         ["orderId": .string(orderId), "awb": .string(awb), "providerStatusCode": .int(Int64(current.statusCode)),
                          "providerStatusTitle": .string(String(current.statusTitle.prefix(200)))])
            }
            // The latest event (the provider's dates sort as text: `YYYY-MM-DD HH:MM:SS`).
            let latest = (t.data ?? []).max { $0.eventDate < $1.eventDate }
            var p: [String: JSON] = ["providerStatusCode": .int(Int64(min(max(current.statusCode, 0), 1_000_000))),
                                     "providerStatusTitle": .string(String(current.statusTitle.prefix(200)))]
            if let mapped { p["trackingStatus"] = .string(mapped.rawValue) }
            if let e = latest {
                if !e.eventDate.isEmpty { p["eventAt"] = .string(String(e.eventDate.prefix(64))) }
                if !e.statusLocation.isEmpty { p["location"] = .string(String(e.statusLocation.prefix(200))) }
                if !e.remark.isEmpty { p["remark"] = .string(String(e.remark.prefix(2000))) }
            }
            let r = try report("orders.provider.tracked", orderId, p, refs: nil, j)
            var out: [String: JSON] = ["poll": .int(n), "providerStatusCode": .int(Int64(current.statusCode)), "trackingStatus": r["trackingStatus"] ?? .null]
            if r["tracks"] == true {
                out["next"] = .string(try tracking.add(orderId: orderId, requestId: j.requestId, poll: poll + 1, orderCreatedAtMs: order.createdAtMs))
            } else {
                out["stopped"] = true
            }
            return .object(out)
        } catch {
            if error is UnrecoverableError || j.isLast {
                // Tracking goes on at the next poll's time.
                try tracking.add(orderId: orderId, requestId: j.requestId, poll: poll + 1, orderCreatedAtMs: order.createdAtMs)
            }
            throw error
        }
    }

    /// A failed order whose provider calls were uncertain: cancel any shipment the provider
    /// turns out to hold. The order stays failed; its refund was made when it failed.
    private func cleanUpFailed(_ orderId: String, _ j: JobInfo) async throws -> JSON {
        guard let found = try await lookup(orderId, j), !found.cancelled else {
            return ["cleanup": true, "liveShipment": false]
        }
        let (ex, _, _) = try await call(.cancelOrder, orderId: orderId, body: ["awb": .string(found.awb)], j)
        if case let (r, message)? = answer(ex, as: ParcelXStatusResponse.self), r.status || Self.alreadyCancelled(message) {
            log.warn("cancelled a shipment left behind by a failed order", requestId: j.requestId, ["orderId": .string(orderId), "awb": .string(found.awb)])
            return ["cleanup": true, "liveShipment": true, "cancelled": true, "awb": .string(found.awb)]
        }
        throw transportError(ex)
    }
}
