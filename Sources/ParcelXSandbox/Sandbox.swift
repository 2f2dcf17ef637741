import Foundation
import HTTPServer
import JSON
import ParcelXAPI
import Runtime

/// The sandbox's behaviour: serves the ParcelX endpoints from memory, with the faults and
/// inspection endpoints tests and load runs use. One instance per process.
final class Sandbox: Sendable {
    private let accessKey: String
    private let secretKey: String
    private let defaults: SandboxConfig
    /// When true a create must name a warehouse made through `create_warehouse`; off by
    /// default so the platform can book against the sandbox without provisioning pickups.
    private let strictWarehouses: Bool
    private let log: Logger
    private let state: Locked<SandboxState>
    private let stopping = Locked(false)

    init(accessKey: String, secretKey: String, defaults: SandboxConfig, strictWarehouses: Bool, log: Logger) {
        self.accessKey = accessKey
        self.secretKey = secretKey
        self.defaults = defaults
        self.strictWarehouses = strictWarehouses
        self.log = log
        self.state = Locked(SandboxState(config: defaults))
    }

    /// Wakes every sleeping request (latency, timeout fault) so shutdown is not held up by them.
    func beginShutdown() { stopping.withLock { $0 = true } }

    func handle(_ req: HTTPRequest) -> HTTPResponse {
        if req.path == "/healthz" { return .json(200, JSON.object(["status": "ok", "service": "sandbox"]).serializedBytes()) }
        if req.path.hasPrefix("/__sandbox/") { return admin(req) }
        guard let op = ParcelXOperation(method: req.method, path: req.path) else {
            if ParcelXOperation.allCases.contains(where: { $0.endpoint.path == req.path }) {
                return envelope(405, false, .text("Method Not Allowed"))
            }
            state.withLock { $0.record("unknown", "not_found") }
            return envelope(404, false, .text("Not Found"))
        }
        let began = Clock.monotonicNanos()
        let (response, outcome, meta) = serve(op, req)
        state.withLock { $0.record(op.rawValue, outcome) }
        var m = meta
        m["operation"] = .string(op.rawValue)
        m["outcome"] = .string(outcome)
        m["status"] = .int(Int64(response.status))
        m["durationMs"] = .int(Int64((Clock.monotonicNanos() - began) / 1_000_000))
        log.info("provider call", m)
        return response
    }

    private typealias Served = (HTTPResponse, String, [String: JSON])

    private func serve(_ op: ParcelXOperation, _ req: HTTPRequest) -> Served {
        let config = state.withLock { $0.config }
        if config.latencyMs > 0 { pause(ms: config.latencyMs) }
        guard ParcelXAuth.matches(req.header(ParcelXAuth.headerName), accessKey: accessKey, secretKey: secretKey) else {
            return (unauthorized(), "unauthorized", [:])
        }
        if config.throttleCalls > 0, state.withLock({ s -> Bool in
            guard s.config.throttleCalls > 0 else { return false }
            s.config.throttleCalls -= 1
            return true
        }) {
            var r = envelope(429, false, .text("Too many requests: slow down."))
            r.headers.append(("Retry-After", String(config.retryAfterS)))
            return (r, "throttled", [:])
        }
        if config.failureRate > 0 && Double.random(in: 0..<1) < config.failureRate {
            return (serverError(), "random_failure", [:])
        }
        switch op {
        case .createOrder: return createOrder(req, config)
        case .cancelOrder: return cancelOrder(req)
        case .trackOrder: return track(awb: req.query["awb"])
        case .trackByClientOrderId: return track(clientOrderId: req.query["channel_order_no"])
        case .createWarehouse: return createWarehouse(req)
        case .warehouseList: return warehouseList()
        case .removeWarehouse: return removeWarehouse(req)
        }
    }

    // MARK: orders

    private func createOrder(_ req: HTTPRequest, _ config: SandboxConfig) -> Served {
        guard let body = try? JSONParser.parse(req.body), case .object = body else {
            return (envelope(200, false, .list(["Invalid request body: a JSON object is expected."])), "invalid", [:])
        }
        let order: ParcelXCreateOrderRequest
        do {
            order = try body.decode(ParcelXCreateOrderRequest.self)
        } catch {
            return (envelope(200, false, .list(["Invalid request body: \(Sandbox.describe(error))"])), "invalid", [:])
        }
        let coid = order.clientOrderId
        var meta: [String: JSON] = ["clientOrderId": .string(coid)]
        let name = order.consigneeName
        if name.contains("[sandbox:http500]") { return (serverError(), "fault_http500", meta) }
        if name.contains("[sandbox:http401]") { return (unauthorized(), "fault_http401", meta) }
        if name.contains("[sandbox:flaky2]") {
            let attempt = state.withLock { s -> Int in
                s.flakyAttempts[coid, default: 0] += 1
                return s.flakyAttempts[coid]!
            }
            if attempt <= 2 { return (serverError(), "fault_flaky", meta) }
        }
        var problems = CreateOrderValidation.problems(order)
        if strictWarehouses && !order.pickAddressId.isEmpty
            && !state.withLock({ s in s.warehouses.contains { $0.warehouseId == order.pickAddressId } }) {
            problems.append("The selected pick_address_id is invalid.")
        }
        if !problems.isEmpty { return (envelope(200, false, .list(problems)), "invalid", meta) }
        if name.contains("[sandbox:reject]") {
            let msg = "Pincode \(order.consigneePincode) is not serviceable by any courier partner."
            return (envelope(200, false, .list([msg])), "fault_reject", meta)
        }

        let courierCode = order.courierType == 1 ? order.courierCode : (order.expressType.lowercased() == "air" ? "PXBDE01" : "PXDEL01")
        let courierName = CreateOrderValidation.couriers[courierCode] ?? "Delhivery"
        // Check and insert under one lock: two concurrent creates for one order must not both book.
        let created: SandboxShipment? = state.withLock { s in
            if s.byClientOrderId[coid] != nil { return nil }
            let now = Clock.wallMillis()
            let shipment = SandboxShipment(
                request: order, awb: s.newAWB(), orderNumber: String(s.nextOrderNumber), pickupId: order.pickAddressId,
                courierCode: courierCode, courierName: courierName, status: ParcelXTrackStatus(.booked), createdAtMs: now, cancelledAtMs: nil,
                events: [ParcelXTrackEvent(statusTitle: ParcelXStatusCode.booked.title, eventDate: Sandbox.eventDate(now),
                                           statusLocation: "", remark: "Shipment booked")],
                path: SandboxPath.marked(in: name), movedAtMs: now)
            s.nextOrderNumber += 1
            s.byClientOrderId[coid] = s.shipments.count
            s.byAWB[shipment.awb] = s.shipments.count
            s.shipments.append(shipment)
            return shipment
        }
        guard let shipment = created else {
            return (envelope(200, false, .list(["Order already exists with client_order_id \(coid)."])), "duplicate", meta)
        }
        meta["awb"] = .string(shipment.awb)
        let data = ParcelXCreateOrderData(
            awbNumber: shipment.awb, orderNumber: shipment.orderNumber, jobId: nil, lrnum: "", waybillsNumJson: nil, lableData: nil,
            routingCode: "SBX/" + String(order.consigneePincode.prefix(3)), paymentMode: order.paymentMode, clientOrderId: coid,
            partnerDisplayName: courierName, courierCode: courierCode, pickupId: shipment.pickupId, courierName: courierName)
        let response = respond(200, ParcelXCreateOrderResponse(status: true, responsemsg: .text("Order Placed Successfully."), data: data))
        // A slow provider has usually booked the shipment before the client gives up: the
        // booking above stands, and the answer arrives too late to be read.
        if name.contains("[sandbox:timeout]") {
            pause(ms: config.timeoutMs)
            return (response, "fault_timeout", meta)
        }
        return (response, "ok", meta)
    }

    private func cancelOrder(_ req: HTTPRequest) -> Served {
        guard let body = try? JSONParser.parse(req.body), let cancel = try? body.decode(ParcelXCancelOrderRequest.self),
              !cancel.awb.isEmpty else {
            return (envelope(200, false, .list(["The awb field is required."])), "invalid", [:])
        }
        let meta: [String: JSON] = ["awb": .string(cancel.awb)]
        enum Result { case notFound, alreadyCancelled, notCancellable, cancelled }
        let result: Result = state.withLock { s in
            guard let i = s.byAWB[cancel.awb] else { return .notFound }
            let now = Clock.wallMillis()
            s.catchUp(i, nowMs: now, eventDate: Sandbox.eventDate)
            if s.shipments[i].status.code == .cancelled { return .alreadyCancelled }
            if !(s.shipments[i].status.code?.isCancellable ?? false) { return .notCancellable }
            s.shipments[i].cancelledAtMs = now
            s.shipments[i].set(ParcelXTrackStatus(.cancelled), nowMs: now, eventDate: Sandbox.eventDate(now), remark: "Cancelled by seller")
            return .cancelled
        }
        switch result {
        case .notFound: return (envelope(200, false, .list(["AWB number \(cancel.awb) not found."])), "not_found", meta)
        case .alreadyCancelled: return (envelope(200, false, .list(["Order is already cancelled."])), "already_cancelled", meta)
        case .notCancellable: return (envelope(200, false, .list(["Order cannot be cancelled at this stage."])), "not_cancellable", meta)
        case .cancelled: return (envelope(200, true, .text("Order Cancelled Successfully.")), "ok", meta)
        }
    }

    private func track(awb: String?) -> Served {
        guard let awb, !awb.isEmpty else { return (envelope(200, false, .list(["The awb field is required."])), "invalid", [:]) }
        let shipment = state.withLock { s in s.byAWB[awb].map { s.current($0) } }
        return trackAnswer(shipment, ["awb": .string(awb)])
    }

    private func track(clientOrderId: String?) -> Served {
        guard let coid = clientOrderId, !coid.isEmpty else {
            return (envelope(200, false, .list(["The channel_order_no field is required."])), "invalid", [:])
        }
        let shipment = state.withLock { s in s.byClientOrderId[coid].map { s.current($0) } }
        return trackAnswer(shipment, ["clientOrderId": .string(coid)])
    }

    private func trackAnswer(_ shipment: SandboxShipment?, _ meta: [String: JSON]) -> Served {
        guard let sh = shipment else {
            return (respond(200, ParcelXTrackResponse(status: false, responsemsg: .list(["No record found."]))), "not_found", meta)
        }
        let expected = Sandbox.eventDate(sh.createdAtMs + 4 * 86_400_000).prefix(10)
        let answer = ParcelXTrackResponse(
            status: true, responsemsg: .text("Success"), awbNumber: sh.awb, clientOrderId: sh.request.clientOrderId,
            orderId: sh.orderNumber, courierName: sh.courierName, currentStatus: sh.status,
            origin: sh.pickupId, destination: sh.request.consigneePincode, expectedDeliveryDate: String(expected),
            data: sh.events.reversed())
        return (respond(200, answer), "ok", meta)
    }

    // MARK: warehouses

    private func createWarehouse(_ req: HTTPRequest) -> Served {
        guard let body = try? JSONParser.parse(req.body), let w = try? body.decode(ParcelXCreateWarehouseRequest.self) else {
            return (envelope(200, false, .list(["Invalid request body: a JSON object is expected."])), "invalid", [:])
        }
        var problems: [String] = []
        if w.addressTitle.trimmingCharacters(in: .whitespaces).isEmpty { problems.append("The address_title field is required.") }
        if w.senderName.trimmingCharacters(in: .whitespaces).isEmpty { problems.append("The sender_name field is required.") }
        if w.fullAddress.trimmingCharacters(in: .whitespaces).isEmpty { problems.append("The full_address field is required.") }
        if w.phone.count != 10 || !w.phone.allSatisfy(\.isASCIIDigit) { problems.append("The phone must be 10 digits.") }
        if w.pincode.count != 6 || !w.pincode.allSatisfy(\.isASCIIDigit) { problems.append("The pincode must be a valid 6 digit pincode.") }
        if !problems.isEmpty { return (envelope(200, false, .list(problems)), "invalid", [:]) }
        let id: String? = state.withLock { s in
            if s.warehouses.contains(where: { $0.title.lowercased() == w.addressTitle.lowercased() }) { return nil }
            let id = String(s.nextWarehouseId)
            s.nextWarehouseId += 1
            let (city, st) = Sandbox.region(w.pincode)
            s.warehouses.append(ParcelXWarehouse(warehouseId: id, title: w.addressTitle, addressee: w.senderName, phone: w.phone,
                                                 fullAddress: w.fullAddress, city: city, state: st, pincode: w.pincode))
            return id
        }
        guard let id else {
            return (envelope(200, false, .list(["The address title has already been taken."])), "duplicate", [:])
        }
        let answer = ParcelXCreateWarehouseResponse(status: true, responsemsg: .text("Warehouse created successfully."),
                                                    data: ParcelXCreateWarehouseData(pickAddressId: id))
        return (respond(200, answer), "ok", ["warehouseId": .string(id)])
    }

    private func warehouseList() -> Served {
        let list = state.withLock { $0.warehouses }
        return (respond(200, ParcelXWarehouseListResponse(status: true, responsemsg: .text("Success"), data: list)), "ok", [:])
    }

    private func removeWarehouse(_ req: HTTPRequest) -> Served {
        guard let body = try? JSONParser.parse(req.body), let r = try? body.decode(ParcelXRemoveWarehouseRequest.self),
              !r.warehouseId.isEmpty else {
            return (envelope(200, false, .list(["The warehouse_id field is required."])), "invalid", [:])
        }
        let removed = state.withLock { s -> Bool in
            guard let i = s.warehouses.firstIndex(where: { $0.warehouseId == r.warehouseId }) else { return false }
            s.warehouses.remove(at: i)
            return true
        }
        let meta: [String: JSON] = ["warehouseId": .string(r.warehouseId)]
        return removed ? (envelope(200, true, .text("Warehouse removed successfully.")), "ok", meta)
            : (envelope(200, false, .list(["Warehouse not found."])), "not_found", meta)
    }

    // MARK: inspection and load-run knobs

    private func admin(_ req: HTTPRequest) -> HTTPResponse {
        switch (req.method, req.path) {
        case ("GET", "/__sandbox/config"):
            return .json(200, Sandbox.configJSON(state.withLock { $0.config }).serializedBytes())
        case ("POST", "/__sandbox/config"):
            return updateConfig(req)
        case ("POST", "/__sandbox/advance"):
            return advance(req)
        case ("GET", "/__sandbox/shipments"):
            let all = state.withLock { s in s.shipments.indices.map { s.current($0) } }
            let filter = req.query["client_order_id"]
            let items: [JSON] = all.filter { filter == nil || $0.request.clientOrderId == filter }.map { sh in
                [
                    "client_order_id": .string(sh.request.clientOrderId), "awb": .string(sh.awb), "order_number": .string(sh.orderNumber),
                    "status_code": .int(Int64(sh.status.statusCode)), "status": .string(sh.status.statusTitle),
                    "path": .string(sh.path.rawValue), "step": .int(Int64(sh.step)),
                    "consignee_name": .string(sh.request.consigneeName), "courier_name": .string(sh.courierName),
                    "created_at": .string(Clock.iso8601(millis: sh.createdAtMs)),
                    "cancelled_at": sh.cancelledAtMs.map { .string(Clock.iso8601(millis: $0)) } ?? .null,
                ]
            }
            return .json(200, JSON.object(["count": .int(Int64(items.count)), "shipments": .array(items)]).serializedBytes())
        case ("GET", "/__sandbox/stats"):
            let stats = state.withLock { $0.stats }
            var endpoints: [String: JSON] = [:]
            var total = 0
            for (name, e) in stats {
                total += e.calls
                endpoints[name] = ["calls": .int(Int64(e.calls)), "outcomes": .object(e.outcomes.mapValues { .int(Int64($0)) })]
            }
            return .json(200, JSON.object(["totalCalls": .int(Int64(total)), "endpoints": .object(endpoints)]).serializedBytes())
        case ("POST", "/__sandbox/reset"):
            state.withLock { $0 = SandboxState(config: defaults) }
            log.info("sandbox reset")
            return .json(200, JSON.object(["status": "reset"]).serializedBytes())
        default:
            return .json(404, JSON.object(["error": ["code": "not_found", "message": "no such sandbox endpoint"]]).serializedBytes())
        }
    }

    /// `POST /__sandbox/advance {awb | client_order_id, steps?, path?, statusCode?, statusTitle?}`:
    /// moves a shipment on now. `path` switches it to another tracking path first (it must be at
    /// a status of that path); `statusCode` (with an optional `statusTitle`) sets any status at
    /// all, such as one the platform does not know; otherwise it takes `steps` steps (1 by
    /// default) along its path. Answers the shipment.
    private func advance(_ req: HTTPRequest) -> HTTPResponse {
        func answer(_ status: Int, _ code: String, _ m: String) -> HTTPResponse {
            .json(status, JSON.object(["error": ["code": .string(code), "message": .string(m)]]).serializedBytes())
        }
        guard let body = try? JSONParser.parse(req.body), let o = body.objectValue else { return answer(400, "invalid", "a JSON object is expected") }
        for k in o.keys where !["awb", "client_order_id", "steps", "path", "statusCode", "statusTitle"].contains(k) {
            return answer(400, "invalid", "unknown field \(k)")
        }
        var steps = 1
        if let v = o["steps"] {
            guard let n = v.intValue, (1...100).contains(n) else { return answer(400, "invalid", "steps must be an integer in 1...100") }
            steps = Int(n)
        }
        var path: SandboxPath?
        if let v = o["path"] {
            guard let p = v.stringValue.flatMap(SandboxPath.init(rawValue:)) else {
                return answer(400, "invalid", "path must be one of \(SandboxPath.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            path = p
        }
        var setTo: ParcelXTrackStatus?
        if let v = o["statusCode"] {
            guard let n = v.intValue, (0...9999).contains(n) else { return answer(400, "invalid", "statusCode must be an integer in 0...9999") }
            let title = o["statusTitle"]?.stringValue ?? ParcelXStatusCode(rawValue: Int(n))?.title ?? "Status \(n)"
            guard title.count <= 100 else { return answer(400, "invalid", "statusTitle is at most 100 characters") }
            setTo = ParcelXTrackStatus(statusCode: Int(n), statusTitle: title)
        }
        enum Outcome { case notFound, offPath, moved(SandboxShipment) }
        let outcome: Outcome = state.withLock { s in
            guard let i = o["awb"]?.stringValue.flatMap({ s.byAWB[$0] }) ?? o["client_order_id"]?.stringValue.flatMap({ s.byClientOrderId[$0] }) else {
                return .notFound
            }
            let now = Clock.wallMillis()
            s.catchUp(i, nowMs: now, eventDate: Sandbox.eventDate)
            if let path {
                guard let at = path.codes.firstIndex(where: { $0.rawValue == s.shipments[i].status.statusCode }) else { return .offPath }
                s.shipments[i].path = path
                s.shipments[i].step = at
            }
            if let setTo {
                s.shipments[i].set(setTo, nowMs: now, eventDate: Sandbox.eventDate(now), remark: "sandbox: status set")
            } else {
                for _ in 0..<steps { guard s.shipments[i].advance(nowMs: now, eventDate: Sandbox.eventDate(now)) else { break } }
            }
            return .moved(s.shipments[i])
        }
        switch outcome {
        case .notFound: return answer(404, "not_found", "no such shipment")
        case .offPath: return answer(409, "off_path", "the shipment's status is not on that path")
        case .moved(let sh):
            log.info("sandbox shipment moved", ["awb": .string(sh.awb), "statusCode": .int(Int64(sh.status.statusCode))])
            return .json(200, JSON.object(["awb": .string(sh.awb), "client_order_id": .string(sh.request.clientOrderId),
                                           "status_code": .int(Int64(sh.status.statusCode)), "status": .string(sh.status.statusTitle),
                                           "path": .string(sh.path.rawValue), "step": .int(Int64(sh.step))]).serializedBytes())
        }
    }

    private func updateConfig(_ req: HTTPRequest) -> HTTPResponse {
        func bad(_ m: String) -> HTTPResponse {
            .json(400, JSON.object(["error": ["code": "invalid_config", "message": .string(m)]]).serializedBytes())
        }
        guard let body = try? JSONParser.parse(req.body), let o = body.objectValue else { return bad("a JSON object is expected") }
        var c = state.withLock { $0.config }
        for (k, v) in o {
            switch k {
            case "latencyMs":
                guard let n = v.intValue, n >= 0, n <= 600_000 else { return bad("latencyMs must be an integer in 0...600000") }
                c.latencyMs = Int(n)
            case "failureRate":
                guard let d = v.doubleValue, d >= 0, d <= 1 else { return bad("failureRate must be a number in 0...1") }
                c.failureRate = d
            case "timeoutMs":
                guard let n = v.intValue, n >= 0, n <= 600_000 else { return bad("timeoutMs must be an integer in 0...600000") }
                c.timeoutMs = Int(n)
            case "throttleCalls":
                guard let n = v.intValue, n >= 0, n <= 1_000_000 else { return bad("throttleCalls must be an integer in 0...1000000") }
                c.throttleCalls = Int(n)
            case "retryAfterS":
                guard let n = v.intValue, n >= 0, n <= 3600 else { return bad("retryAfterS must be an integer in 0...3600") }
                c.retryAfterS = Int(n)
            case "trackStepMs":
                guard let n = v.intValue, n >= 0, n <= 86_400_000 else { return bad("trackStepMs must be an integer in 0...86400000") }
                c.trackStepMs = Int(n)
            default:
                return bad("unknown setting \(k)")
            }
        }
        state.withLock { $0.config = c }
        log.info("sandbox config changed", ["latencyMs": .int(Int64(c.latencyMs)), "failureRate": .double(c.failureRate),
                                            "timeoutMs": .int(Int64(c.timeoutMs))])
        return .json(200, Sandbox.configJSON(c).serializedBytes())
    }

    // MARK: helpers

    /// Sleeps up to `ms`, waking early when the process shuts down.
    private func pause(ms: Int) {
        let deadline = Deadline.after(ms: ms)
        // Wakes every 200 ms at most to notice a stop: a thousand calls held for a second must
        // not cost the sandbox 50,000 wake-ups a second.
        while !deadline.hasPassed && !stopping.current { usleep(UInt32(min(deadline.remainingMs, 200)) * 1000 + 100) }
    }

    private func respond<T: Encodable>(_ status: Int, _ value: T) -> HTTPResponse {
        do {
            return .json(status, try JSON(encoding: value).serializedBytes())
        } catch {
            log.error("cannot encode answer", ["error": .string("\(error)")])
            return serverError()
        }
    }

    private func envelope(_ http: Int, _ ok: Bool, _ message: ParcelXMessage) -> HTTPResponse {
        respond(http, ParcelXStatusResponse(status: ok, responsemsg: message))
    }

    private func unauthorized() -> HTTPResponse {
        envelope(401, false, .text("Unauthorized: invalid access-token."))
    }

    /// What a provider's front proxy sends when its backend fails: HTML, not the JSON envelope.
    private func serverError() -> HTTPResponse {
        .html(500, "<html><head><title>500 Internal Server Error</title></head><body><h1>500 Internal Server Error</h1></body></html>")
    }

    private static func configJSON(_ c: SandboxConfig) -> JSON {
        ["latencyMs": .int(Int64(c.latencyMs)), "failureRate": .double(c.failureRate), "timeoutMs": .int(Int64(c.timeoutMs)),
         "throttleCalls": .int(Int64(c.throttleCalls)), "retryAfterS": .int(Int64(c.retryAfterS)), "trackStepMs": .int(Int64(c.trackStepMs))]
    }

    /// `YYYY-MM-DD HH:MM:SS` in UTC, the provider's event date style.
    static func eventDate(_ ms: Int64) -> String {
        let iso = Clock.iso8601(millis: ms)
        return String(iso.prefix(10)) + " " + String(iso.dropFirst(11).prefix(8))
    }

    /// A plausible city and state for a pincode, by its first two digits.
    private static func region(_ pincode: String) -> (String, String) {
        switch pincode.prefix(2) {
        case "11": ("New Delhi", "Delhi")
        case "40": ("Mumbai", "Maharashtra")
        case "56": ("Bengaluru", "Karnataka")
        case "60": ("Chennai", "Tamil Nadu")
        case "70": ("Kolkata", "West Bengal")
        case "50": ("Hyderabad", "Telangana")
        default: ("", "")
        }
    }

    private static func describe(_ error: Error) -> String {
        if case DecodingError.dataCorrupted(let c) = error { return c.codingPath.map(\.stringValue).joined(separator: ".") + " is malformed." }
        if case DecodingError.typeMismatch(_, let c) = error { return c.codingPath.map(\.stringValue).joined(separator: ".") + " has the wrong type." }
        return "the payload could not be read."
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
