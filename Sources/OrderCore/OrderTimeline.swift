import JSON
import RPC
import Runtime
import Domain

/// An order's story in time order (`orders.timeline`, GET /orders/{id}/timeline): its status
/// changes (the first is its creation), tracking changes, its charge and refund from the ledger
/// (WalletSvc), the jobs that worked on it and every provider call (ParcelXSvc), and every
/// webhook delivery attempt. The owner and
/// admins only; provider bodies only for admins. A part whose service does not answer is left
/// out and named in `incomplete`, rather than failing the whole read.
struct OrderTimeline: Sendable {
    let repo: OrderRepository
    let wallet: any RPCCalling
    let parcelx: any RPCCalling
    let log: Logger

    func timeline(orderId: String, ctx: RPCContext) throws(RPCError) -> JSON {
        guard let actor = ctx.actor else { throw RPCError.unauthenticated() }
        let doc: JSON?
        do { doc = try repo.get(orderId) } catch { throw RPCError.unavailable("Order store unavailable") }
        guard let doc, actor.role == .admin || doc["userId"]?.stringValue == actor.userId else { throw RPCError.notFound("Order not found") }
        let order: Order
        do { order = try Order(json: doc) } catch { throw RPCError.unavailable("Order store unavailable") }
        let admin = actor.role == .admin
        let sys = RPCContext(requestId: ctx.requestId, actor: .system, deadline: ctx.deadline)

        var events: [JSON] = []
        for (i, h) in order.history.enumerated() {
            var e: [String: JSON] = ["at": .string(h.at), "type": .string(i == 0 ? "created" : "status"), "status": h.status.json, "by": .string(h.by)]
            if let n = h.note { e["note"] = .string(n) }
            if let m = h.providerMessage { e["providerMessage"] = .string(m) }
            events.append(.object(e))
        }
        for t in order.tracking {
            var e: [String: JSON] = ["at": .string(t.at), "type": "tracking", "providerCode": .int(Int64(t.providerCode)), "providerTitle": .string(t.providerTitle)]
            if let s = t.status { e["trackingStatus"] = .string(s.rawValue) }
            if let v = t.eventAt { e["providerEventAt"] = .string(v) }
            if let v = t.location { e["location"] = .string(v) }
            if let v = t.remark { e["remark"] = .string(v) }
            events.append(.object(e))
        }
        var incomplete: [JSON] = []
        // Webhook deliveries: every attempt of every event of the order (the newest 20 per event).
        if let sent = try? repo.store.find(WebhookService.events, where: .eq("orderId", .string(orderId)), sort: [.asc("seq")], limit: 500) {
            for ev in sent {
                for a in ev["attempts"]?.arrayValue ?? [] {
                    var e: [String: JSON] = ["at": a["at"] ?? .null, "type": "webhook", "eventId": ev["_id"] ?? .null, "eventType": ev["type"] ?? .null]
                    for k in ["httpStatus", "error", "durationMs"] where a[k] != nil { e[k] = a[k] }
                    events.append(.object(e))
                }
            }
        } else {
            incomplete.append("webhooks")
        }
        do {
            let entries = try wallet.call("wallet.orderEntries", ["orderId": .string(orderId)], ctx: sys)["items"]?.arrayValue ?? []
            for x in entries {
                let kind = x["reason"] == "order_refund" ? "refund" : "charge"
                events.append(["at": x["createdAt"] ?? .null, "type": .string(kind), "amountPaise": x["amountPaise"] ?? .null,
                               "balanceAfterPaise": x["balanceAfterPaise"] ?? .null, "entryId": x["id"] ?? .null])
            }
        } catch {
            log.warn("timeline without the ledger", requestId: ctx.requestId, ["orderId": .string(orderId), "error": .string(error.message)])
            incomplete.append("ledger")
        }
        do {
            let a = try parcelx.call("parcelx.orderActivity", ["orderId": .string(orderId), "bodies": .bool(admin)], ctx: sys)
            for j in a["jobs"]?.arrayValue ?? [] {
                let common: [String: JSON] = ["queue": j["queue"] ?? .null, "jobId": j["id"] ?? .null, "name": j["name"] ?? .null]
                events.append(.object(common.merging(["at": j["addedAt"] ?? .null, "type": "job_added"]) { a, _ in a }))
                if let fin = j["finishedAt"], fin != .null {
                    events.append(.object(common.merging(["at": fin, "type": "job_finished", "state": j["state"] ?? .null,
                                                          "attemptsMade": j["attemptsMade"] ?? .null, "attempts": j["attempts"] ?? .null,
                                                          "failedReason": j["failedReason"] ?? .null]) { a, _ in a }))
                }
            }
            for c in a["calls"]?.arrayValue ?? [] {
                var e = c.objectValue ?? [:]
                e["type"] = "provider_call"
                events.append(.object(e))
            }
        } catch {
            log.warn("timeline without provider calls and jobs", requestId: ctx.requestId, ["orderId": .string(orderId), "error": .string(error.message)])
            incomplete.append("provider")
        }
        // Time order; events at the same instant keep the order they were gathered in.
        let sorted = events.enumerated().sorted { a, b in
            let x = a.element["at"]?.stringValue ?? "", y = b.element["at"]?.stringValue ?? ""
            return x == y ? a.offset < b.offset : x < y
        }.map(\.element)
        return ["orderId": .string(orderId), "status": order.status.json,
                "trackingStatus": order.trackingStatus.map { .string($0.rawValue) } ?? .null,
                "events": .array(sorted), "incomplete": .array(incomplete)]
    }

    /// The admin's search: the orders whose id, `clientOrderId` or AWB is `q`.
    func find(_ q: String, ctx: RPCContext) throws(RPCError) -> JSON {
        guard ctx.actor?.role == .admin || ctx.actor?.role == .system else { throw RPCError.forbidden() }
        let rows: [JSON]
        do { rows = try repo.find(q, limit: 50) } catch { throw RPCError.unavailable("Order store unavailable") }
        return ["items": .array(rows.map(Order.publicView))]
    }
}

extension OrderHandlers {
    static let timelineEvent = Schema.object([
        ("at", .string()),
        ("type", .string(oneOf: ["created", "status", "tracking", "charge", "refund", "job_added", "job_finished", "provider_call", "webhook"])),
    ], required: ["at", "type"], additional: true)

    static func timelineMethods(_ t: OrderTimeline) -> [Method] {
        [
            Method("orders.timeline", summary: "Every event of one order in time order (owner or admin; provider bodies for admins)",
                   roles: [.merchant, .admin], params: OrderSchemas.orderId,
                   result: .object([("orderId", .string()), ("status", OrderStatus.schema), ("trackingStatus", .nullable(TrackingStatus.schema)),
                                    ("events", .array(timelineEvent)), ("incomplete", .array(.string(oneOf: ["ledger", "provider", "webhooks"])))]),
                   errors: [.notFound]) { p, ctx throws in
                try t.timeline(orderId: p.requiredString("orderId"), ctx: ctx)
            },
            Method("orders.find", summary: "Orders whose id, clientOrderId or AWB is q (admins)", roles: [.admin],
                   params: .object([("q", .string(min: 1, max: 64))], required: ["q"]),
                   result: .object([("items", .array(OrderSchemas.order))])) { p, ctx throws in
                try t.find(p.requiredString("q"), ctx: ctx)
            },
        ]
    }
}
