import Foundation
import JSON
import RPC
import Runtime
import Store
import Queue
import Domain
import Crypto
import HTTPClient

/// Webhook settings (README, Configuration).
struct WebhookSettings: Sendable {
    /// `host:port` test receivers that skip the address check and may use http.
    var allowedHosts: Set<String>
    var attempts: Int
    var backoffMs: Int
    /// Failed delivery attempts in a row after which an endpoint is disabled.
    var disableAfter: Int
    var timeoutMs: Int
    var maxInFlight: Int
    /// Events (and their attempts) are kept this many days.
    var retentionDays: Int

    init(_ c: Config) {
        allowedHosts = Set(c.string("OOPS_WEBHOOK_ALLOW_HOSTS", default: "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { !$0.isEmpty })
        attempts = c.int("OOPS_WEBHOOK_ATTEMPTS", default: 12, range: 1...50)
        backoffMs = c.int("OOPS_WEBHOOK_BACKOFF_MS", default: 10_000, range: 10...3_600_000)
        disableAfter = c.int("OOPS_WEBHOOK_DISABLE_AFTER", default: 50, range: 1...100_000)
        timeoutMs = c.int("OOPS_WEBHOOK_TIMEOUT_MS", default: 10_000, range: 100...120_000)
        maxInFlight = c.int("OOPS_WEBHOOK_MAX_IN_FLIGHT", default: 64, range: 1...10_000)
        retentionDays = c.int("OOPS_WEBHOOK_RETENTION_DAYS", default: 30, range: 1...3650)
    }
}

/// Signed webhooks to merchants (docs/webhooks.md). A merchant registers one HTTPS endpoint and
/// gets its secret once. Every change of an order's status or tracking status becomes an event
/// (id `evt_<orderId>_<n>`, n the number of history and tracking lines after the change, so the
/// same change always has the same id) stored in `webhook_events`, and a job on
/// `merchant-webhooks-queue` sends it. A job first sends the order's earlier events still
/// pending, in order, so a merchant never receives an order's events out of order; a failure
/// retries with exponential backoff. Endpoints failing `disableAfter` attempts in a row are disabled.
final class WebhookService: Sendable {
    let store: any DocumentStore
    let queue: any JobAdding
    let http: CurlHTTPClient
    let settings: WebhookSettings
    let log: Logger

    static let endpoints = "webhook_endpoints"
    static let events = "webhook_events"
    static let queueName = "merchant-webhooks-queue"
    static let jobName = "deliver-webhook"
    /// Attempts kept per event (the newest).
    static let attemptsKept = 20

    init(store: any DocumentStore, queue: any JobAdding, http: CurlHTTPClient, settings: WebhookSettings, log: Logger) {
        self.store = store
        self.queue = queue
        self.http = http
        self.settings = settings
        self.log = log
    }

    func prepare() throws {
        try store.prepare([
            CollectionSpec(Self.endpoints, indexes: []),
            CollectionSpec(Self.events, indexes: [IndexSpec(["userId", "createdAtMs"], name: "whev_user"), IndexSpec(["orderId", "seq"], name: "whev_order"),
                                                  IndexSpec(["createdAtMs"], name: "whev_created")]),
        ], schemaVersion: OrderRepository.schemaVersion)
    }

    private func merchant(_ ctx: RPCContext) throws(RPCError) -> String {
        guard let a = ctx.actor, a.role == .merchant else { throw RPCError.forbidden() }
        return a.userId
    }

    private func guarded<R>(_ body: () throws -> R) throws(RPCError) -> R {
        do { return try body() } catch let e as RPCError { throw e } catch {
            log.error("webhook store failure", ["error": .string(String(describing: error))])
            throw RPCError.unavailable("Webhook store unavailable")
        }
    }

    // MARK: the merchant's endpoint

    /// Registers (or replaces) the merchant's endpoint; answers it with a new secret, the only
    /// time the secret is shown. Registering again re-enables a disabled endpoint.
    func register(url: String, ctx: RPCContext) throws(RPCError) -> JSON {
        let userId = try merchant(ctx)
        switch WebhookTarget.check(url, allowed: settings.allowedHosts) {
        case .failure(let r): throw RPCError.business("webhook_url_refused", "The webhook URL is refused: \(r)")
        case .success: break
        }
        let secret = "whsec_" + Sodium.hex(Sodium.randomBytes(24))
        let now = Clock.nowISO()
        let doc: JSON = ["_id": .string(userId), "url": .string(url), "secret": .string(secret), "enabled": true, "failures": 0,
                         "createdAt": .string(now), "updatedAt": .string(now)]
        try guarded {
            _ = try store.delete(Self.endpoints, where: .id(userId))
            _ = try store.insert(Self.endpoints, doc)
        }
        var out = Self.publicEndpoint(doc)
        out["secret"] = .string(secret)
        return .object(out)
    }

    func endpoint(ctx: RPCContext) throws(RPCError) -> JSON {
        let userId = try merchant(ctx)
        guard let doc = try guarded({ try store.get(Self.endpoints, id: userId) }) else { throw RPCError.notFound("No webhook endpoint registered") }
        return .object(Self.publicEndpoint(doc))
    }

    /// The endpoint of a merchant, for the profile's notice (system callers).
    func endpointOf(_ userId: String) throws(RPCError) -> JSON {
        guard let doc = try guarded({ try store.get(Self.endpoints, id: userId) }) else { return .null }
        return .object(Self.publicEndpoint(doc))
    }

    func remove(ctx: RPCContext) throws(RPCError) -> JSON {
        let userId = try merchant(ctx)
        let n = try guarded { try store.delete(Self.endpoints, where: .id(userId)) }
        guard n > 0 else { throw RPCError.notFound("No webhook endpoint registered") }
        return ["removed": true]
    }

    static func publicEndpoint(_ doc: JSON) -> [String: JSON] {
        var o: [String: JSON] = ["url": doc["url"] ?? .null, "enabled": doc["enabled"] ?? false, "consecutiveFailures": doc["failures"] ?? 0,
                                 "createdAt": doc["createdAt"] ?? .null]
        if doc["enabled"] == false {
            o["disabledAt"] = doc["disabledAt"] ?? .null
            o["disabledReason"] = doc["disabledReason"] ?? .null
        }
        return o
    }

    // MARK: deliveries

    func deliveries(limit: Int, ctx: RPCContext) throws(RPCError) -> JSON {
        let userId = try merchant(ctx)
        let rows = try guarded { try store.find(Self.events, where: .eq("userId", .string(userId)), sort: [.desc("createdAtMs"), .desc("seq")], limit: limit) }
        return ["items": .array(rows.map(Self.publicEvent))]
    }

    static func publicEvent(_ d: JSON) -> JSON {
        ["id": d["_id"] ?? .null, "orderId": d["orderId"] ?? .null, "type": d["type"] ?? .null, "state": d["state"] ?? .null,
         "createdAt": d["createdAt"] ?? .null, "deliveredAt": d["deliveredAt"] ?? .null, "attempts": d["attempts"] ?? .array([]),
         "event": (try? JSONParser.parse(d["body"]?.stringValue ?? "")) ?? .null]
    }

    /// Sends one event again, as it was (same id and body, a new signature).
    func replay(eventId: String, ctx: RPCContext) throws(RPCError) -> JSON {
        let userId = try merchant(ctx)
        guard let ev = try guarded({ try store.get(Self.events, id: eventId) }), ev["userId"]?.stringValue == userId else {
            throw RPCError.notFound("No such delivery")
        }
        let jobId = "wh-\(eventId)-replay-\(Clock.wallMillis())"
        try guarded { _ = try queue.add(name: Self.jobName, dataJSON: JSON.object(["eventId": .string(eventId), "replay": true]).serialized(), options: jobOptions(jobId)) }
        return ["replayed": .string(eventId), "jobId": .string(jobId)]
    }

    private func jobOptions(_ id: String) -> JobOptions {
        JobOptions(jobId: id, attempts: settings.attempts, backoff: .exponential(delayMs: settings.backoffMs))
    }

    // MARK: events

    /// Stores the events the order owes (`Order.webhookOutbox`, written by the same update as the
    /// change each one tells of) and queues their delivery, when the merchant has an enabled
    /// endpoint; without one nothing is stored or queued. All are stored before any is queued, so
    /// a job always finds the order's earlier events. Repeating is harmless: an event is inserted
    /// if absent by its id, a job added if absent by `wh-<eventId>`. Throws when the store or Redis
    /// refuses; the events stay on the order and OrderService tries again.
    func record(_ order: Order, requestId: String) throws {
        guard !order.webhookOutbox.isEmpty, let ep = try store.get(Self.endpoints, id: order.userId), ep["enabled"] == true else { return }
        let owed = order.webhookOutbox.sorted { $0.seq < $1.seq }
        for e in owed {
            let id = e.eventId(order.id)
            let at = Clock.iso8601(millis: e.atMs)
            let body: JSON = [
                "id": .string(id), "type": .string(e.type), "createdAt": .string(at),
                "data": [
                    "orderId": .string(order.id), "clientOrderId": .string(order.clientOrderId), "awbNumber": JSON(e.awbNumber),
                    "previousStatus": e.previousStatus.map(\.json) ?? .null, "status": e.status.json,
                    "previousTrackingStatus": e.previousTrackingStatus.map { .string($0.rawValue) } ?? .null,
                    "trackingStatus": e.trackingStatus.map { .string($0.rawValue) } ?? .null,
                ],
            ]
            _ = try store.insert(Self.events, ["_id": .string(id), "userId": .string(order.userId), "orderId": .string(order.id), "seq": .int(Int64(e.seq)),
                                               "type": .string(e.type), "body": .string(body.serialized()), "state": "pending",
                                               "createdAt": .string(at), "createdAtMs": .int(e.atMs), "attempts": .array([])])
        }
        for e in owed {
            let id = e.eventId(order.id)
            _ = try queue.add(name: Self.jobName, dataJSON: JSON.object(["eventId": .string(id), "requestId": .string(requestId)]).serialized(),
                              options: jobOptions("wh-\(id)"))
        }
    }

    /// Runs one delivery job: the order's earlier pending events first, then this one.
    func process(_ job: Job) async throws -> JSON {
        let data = job.data
        guard let eventId = data["eventId"]?.stringValue, let ev = try store.get(Self.events, id: eventId) else {
            throw UnrecoverableError("webhook job names no stored event")
        }
        let replay = data["replay"] == true
        guard replay || ev["state"] == "pending" else { return ["skipped": true, "state": ev["state"] ?? .null] }
        guard let userId = ev["userId"]?.stringValue, let ep = try store.get(Self.endpoints, id: userId), ep["enabled"] == true else {
            if !replay { try markGivenUp(eventId, reason: "no enabled endpoint") }
            return ["stopped": true, "reason": "no enabled endpoint"]
        }
        let isLast = job.attemptsMade + 1 >= job.maxAttempts
        do {
            if !replay, let orderId = ev["orderId"]?.stringValue, let seq = ev["seq"]?.intValue {
                let earlier = try store.find(Self.events, where: .and([.eq("orderId", .string(orderId)), .lt("seq", .int(seq)), .eq("state", "pending")]),
                                             sort: [.asc("seq")], limit: 100)
                for e in earlier { try await send(e, ep) }
            }
            try await send(ev, ep)
        } catch {
            if isLast && !replay { try markGivenUp(eventId, reason: String(describing: error)) }
            throw error
        }
        return ["delivered": .string(eventId)]
    }

    struct DeliveryFailed: Error, CustomStringConvertible {
        let description: String
    }

    /// Sends one event to the endpoint and records the attempt; throws unless it got a 2xx.
    private func send(_ ev: JSON, _ ep: JSON) async throws {
        guard let id = ev["_id"]?.stringValue, let body = ev["body"]?.stringValue, let url = ep["url"]?.stringValue,
              let secret = ep["secret"]?.stringValue, let userId = ep["_id"]?.stringValue else { throw UnrecoverableError("malformed webhook records") }
        let started = Clock.wallMillis()
        var attempt: [String: JSON] = ["at": .string(Clock.iso8601(millis: started))]
        var ok = false
        switch WebhookTarget.check(url, allowed: settings.allowedHosts) {
        case .failure(let r):
            attempt["error"] = .string("refused: \(r)")
        case .success(let target):
            let bytes = Array(body.utf8)
            let call = HTTPCall(method: "POST", url: target.url, headers: [
                ("Content-Type", "application/json"), ("User-Agent", "OOPS-Webhooks/1"), ("OOPS-Event-Id", id),
                (WebhookSignature.header, WebhookSignature.value(secret: secret, timestamp: started / 1000, body: bytes)),
            ], body: bytes, resolve: target.pin)
            let answer = await withCheckedContinuation { (k: CheckedContinuation<HTTPAnswer, Never>) in http.start(call) { k.resume(returning: $0) } }
            attempt["durationMs"] = .int(Int64(answer.durationNanos / 1_000_000))
            if let f = answer.failure {
                attempt["error"] = .string(f.description)
            } else {
                let status = answer.status ?? 0
                attempt["httpStatus"] = .int(Int64(status))
                attempt["response"] = .string(String(decoding: answer.body.prefix(500), as: UTF8.self))
                ok = (200..<300).contains(status)
                if (300..<400).contains(status) { attempt["error"] = "redirects are not followed" }
            }
        }
        // The attempt on the event (the newest `attemptsKept`), then the endpoint's failure count.
        var attempts = ev["attempts"]?.arrayValue ?? []
        if let fresh = try store.get(Self.events, id: id) { attempts = fresh["attempts"]?.arrayValue ?? attempts }
        attempts = Array((attempts + [.object(attempt)]).suffix(Self.attemptsKept))
        var set: [String: JSON] = ["attempts": .array(attempts)]
        if ok {
            set["state"] = "delivered"
            set["deliveredAt"] = .string(Clock.nowISO())
        }
        _ = try store.update(Self.events, where: .id(id), Update(set: set))
        Metrics.shared.increment("oops_webhook_attempts_total", ["outcome": ok ? "delivered" : "failed"])
        if ok {
            _ = try store.update(Self.endpoints, where: .and([.id(userId), .gt("failures", 0)]), Update(set: ["failures": 0]))
            return
        }
        let after = try store.update(Self.endpoints, where: .id(userId), Update(inc: ["failures": 1]))
        if let n = after?["failures"]?.intValue, n >= Int64(settings.disableAfter), after?["enabled"] == true {
            let reason = "disabled after \(n) failed delivery attempts in a row; register the endpoint again to re-enable it"
            _ = try store.update(Self.endpoints, where: .and([.id(userId), .eq("enabled", true)]),
                                 Update(set: ["enabled": false, "disabledAt": .string(Clock.nowISO()), "disabledReason": .string(reason)]))
            log.warn("webhook endpoint disabled", ["userId": .string(userId), "failures": .int(n)])
        }
        throw DeliveryFailed(description: "webhook \(id) not delivered: \(attempt["error"]?.stringValue ?? "HTTP \(attempt["httpStatus"]?.intValue ?? 0)")")
    }

    /// Removes events created before `ms` (the retention sweep); answers how many went.
    func removeEvents(olderThanMs ms: Int64) throws -> Int {
        try store.delete(Self.events, where: .lt("createdAtMs", .int(ms)))
    }

    private func markGivenUp(_ id: String, reason: String) throws {
        _ = try store.update(Self.events, where: .and([.id(id), .eq("state", "pending")]),
                             Update(set: ["state": "failed", "failedReason": .string(String(reason.prefix(500)))]))
    }
}

/// An event an order owes its merchant (docs/webhooks.md). OrderService writes it on the order
/// (`webhookOutbox`) in the same update as the change it tells of, so a crash cannot keep the
/// change and lose the event; `WebhookService.record` stores it, then OrderService takes it off
/// the order.
public struct OwedWebhook: Sendable, Equatable, Codable {
    /// The number of status and tracking lines of the order after the change: the event id's n.
    public var seq: Int
    public var type: String
    /// When the change was made.
    public var atMs: Int64
    public var previousStatus: OrderStatus?
    public var status: OrderStatus
    public var previousTrackingStatus: TrackingStatus?
    public var trackingStatus: TrackingStatus?
    public var awbNumber: String?

    /// The event of the change from `before` (nil: the order's creation) to `after`; nil when
    /// neither the status nor the tracking status moved.
    public static func of(before: Order?, after: Order, atMs: Int64) -> OwedWebhook? {
        guard before == nil || before?.status != after.status || before?.trackingStatus != after.trackingStatus else { return nil }
        let type = before == nil ? "order.created" : before?.status != after.status ? "order.status_changed" : "order.tracking_changed"
        return OwedWebhook(seq: after.history.count + after.tracking.count, type: type, atMs: atMs, previousStatus: before?.status, status: after.status,
                           previousTrackingStatus: before?.trackingStatus, trackingStatus: after.trackingStatus, awbNumber: after.awbNumber)
    }

    /// `evt_<orderId>_<seq>`: the same change always has the same id.
    public func eventId(_ orderId: String) -> String { "evt_\(orderId)_\(seq)" }
}

extension OrderHandlers {
    static func webhookMethods(_ w: WebhookService) -> [Method] {
        [
            Method("webhooks.register", summary: "Register (or replace) the merchant's webhook endpoint; answers its secret, once", roles: [.merchant],
                   params: .object([("url", .string(min: 8, max: WebhookTarget.maxURLLength))], required: ["url"]),
                   result: .object([("url", .string()), ("secret", .string()), ("enabled", .boolean)], additional: true),
                   errors: [.businessRule]) { p, ctx throws in
                try w.register(url: p.requiredString("url"), ctx: ctx)
            },
            Method("webhooks.get", summary: "The merchant's webhook endpoint (without its secret)", roles: [.merchant], params: .empty,
                   result: .anything, errors: [.notFound]) { _, ctx throws in
                try w.endpoint(ctx: ctx)
            },
            Method("webhooks.status", summary: "A merchant's webhook endpoint (without its secret), or null: a merchant's own, or any for the system",
                   roles: [.merchant, .system], params: .object([("userId", .id)], required: ["userId"]), result: .anything) { p, ctx throws in
                let uid = try p.requiredString("userId")
                guard ctx.actor?.role == .system || ctx.actor?.userId == uid else { throw RPCError.forbidden() }
                return try w.endpointOf(uid)
            },
            Method("webhooks.remove", summary: "Remove the merchant's webhook endpoint", roles: [.merchant], params: .empty,
                   result: .anything, errors: [.notFound]) { _, ctx throws in
                try w.remove(ctx: ctx)
            },
            Method("webhooks.deliveries", summary: "The merchant's recent webhook events with every attempt and response, newest first",
                   roles: [.merchant], params: .object([("limit", Paging.limit)]), result: .anything) { p, ctx throws in
                try w.deliveries(limit: Int(p["limit"]?.intValue ?? Paging.defaultLimit), ctx: ctx)
            },
            Method("webhooks.replay", summary: "Send one webhook event again (same id and body)", roles: [.merchant],
                   params: .object([("eventId", .string(min: 1, max: 128, pattern: "^evt_[A-Za-z0-9_]+$"))], required: ["eventId"]),
                   result: .anything, errors: [.notFound]) { p, ctx throws in
                try w.replay(eventId: p.requiredString("eventId"), ctx: ctx)
            },
        ]
    }
}
