import Foundation
import JSON
import RPC
import Runtime
import Store
import Queue
import Domain
import Crypto

/// Order creation and cancellation, crash-proof without multi-document transactions.
///
/// An order moves through `stage`: `accepted` (stored; the wallet may or may not be debited yet)
/// → `enqueued` (debited with reference `order:<id>:charge`, and a `create-order` job with id
/// `create-<orderId>` exists). Each step is idempotent — the charge by its reference, the job by
/// its id, the stage by compare-and-set — so whoever finds an order part-way (a concurrent
/// duplicate request, a client retry, or the recovery pass that runs at start and every few
/// seconds) simply drives it on: charging again answers with the first charge. A refused charge
/// deletes the still-`accepted` order, so an order is either enqueued with its charge or does not
/// exist with no charge. (Releases before 2026-11 also wrote a `charged` stage between the two;
/// such orders are driven on the same way.)
///
/// Two reads are saved per new order: the duplicate check is the insert itself (the unique index
/// on `(userId, clientOrderId)` finds the first order), and a KYC approval, which is final in
/// AuthSvc (it only moves from `submitted`), is remembered once seen.
final class OrderService: Sendable {
    let repo: OrderRepository
    let wallet: RPCClient
    let auth: RPCClient
    let createQueue: JobQueue
    let cancelQueue: JobQueue
    let log: Logger
    /// Merchants whose KYC this process has seen approved; bounded, forgotten wholesale when full.
    private let kycApproved = Locked<Set<String>>([])
    static let kycApprovedMax = 100_000

    init(repo: OrderRepository, wallet: RPCClient, auth: RPCClient, createQueue: JobQueue, cancelQueue: JobQueue, log: Logger) {
        self.repo = repo
        self.wallet = wallet
        self.auth = auth
        self.createQueue = createQueue
        self.cancelQueue = cancelQueue
        self.log = log
    }

    static func fingerprint(_ payload: JSON) -> String {
        Sodium.hex(Sodium.sha256(payload.serializedBytes()))
    }

    func storeFailure(_ e: Error, _ ctx: RPCContext) -> RPCError {
        log.error("store failure", requestId: ctx.requestId, ["error": .string(String(describing: e))])
        return RPCError.unavailable("Order store unavailable")
    }

    // MARK: create

    func create(_ payload: JSON, ctx: RPCContext) throws(RPCError) -> (created: Bool, order: JSON) {
        guard let actor = ctx.actor, actor.role == .merchant else { throw RPCError.forbidden() }
        try OrderValidation.check(payload)
        let userId = actor.userId
        let clientOrderId = payload["clientOrderId"]!.stringValue!
        let fp = Self.fingerprint(payload)

        // A merchant with orders has an approved KYC, so a replay passes this check too; it
        // needs no money check: the insert below finds the first order and answers with it.
        try requireApprovedKYC(userId, ctx)
        let pkg = payload["package"]!
        let pay = payload["payment"]!
        let isCOD = pay["mode"] == "cod"
        let charge = RateCard.chargePaise(
            weightGrams: pkg["weightGrams"]!.intValue!, lengthCm: pkg["lengthCm"]!.intValue!,
            widthCm: pkg["widthCm"]!.intValue!, heightCm: pkg["heightCm"]!.intValue!,
            express: payload["expressType"] == "air", codAmountPaise: isCOD ? pay["codAmountPaise"]?.intValue : nil)

        let now = Clock.wallMillis()
        let nowISO = Clock.iso8601(millis: now)
        let id = ID.make("ord")
        var doc: [String: JSON] = [
            "_id": .string(id), "id": .string(id), "userId": .string(userId), "clientOrderId": .string(clientOrderId),
            "fingerprint": .string(fp), "stage": "accepted", "status": "pending", "providerSyncStatus": "pending",
            "parcelxRequestRefId": .null, "parcelxResponseRefId": .null, "awbNumber": .null, "courierName": .null,
            "chargePaise": .int(charge), "consignee": payload["consignee"]!, "pickupAddressId": payload["pickupAddressId"]!,
            "payment": ["mode": pay["mode"]!, "codAmountPaise": .int(isCOD ? pay["codAmountPaise"]?.intValue ?? 0 : 0)],
            "package": pkg, "items": payload["items"]!, "expressType": payload["expressType"] ?? "surface",
            "history": [["status": "pending", "at": .string(nowISO), "by": .string(userId), "note": "order accepted"]],
            "requestId": .string(ctx.requestId),
            "createdAt": .string(nowISO), "updatedAt": .string(nowISO), "createdAtMs": .int(now), "updatedAtMs": .int(now),
        ]
        doc["cancelEnqueued"] = false
        let inserted: InsertResult
        do { inserted = try repo.insert(.object(doc)) } catch { throw storeFailure(error, ctx) }
        switch inserted {
        case .duplicate(let existing):
            // The same (user, clientOrderId) arrived at the same instant elsewhere.
            return (false, try replay(existing, fingerprint: fp, ctx))
        case .created(let order):
            do {
                let o = OrderView.public(try drive(order, ctx))
                Metrics.shared.increment("oops_orders_created_total")
                Metrics.shared.increment("oops_order_charges_paise_total", by: charge)
                return (true, o)
            } catch {
                Metrics.shared.increment("oops_orders_refused_total", ["reason": error.reason ?? "error"])
                throw error
            }
        }
    }

    private func requireApprovedKYC(_ userId: String, _ ctx: RPCContext) throws(RPCError) {
        if kycApproved.withLock({ $0.contains(userId) }) { return }
        let kyc = try auth.call("kyc.status", ["userId": .string(userId)], ctx: systemCtx(ctx))
        guard kyc["status"] == "approved" else {
            throw RPCError.business("kyc_not_approved", "KYC must be approved before creating orders")
        }
        kycApproved.withLock {
            if $0.count >= Self.kycApprovedMax { $0.removeAll() }
            $0.insert(userId)
        }
    }

    private func replay(_ existing: JSON, fingerprint: String, _ ctx: RPCContext) throws(RPCError) -> JSON {
        Metrics.shared.increment("oops_orders_replayed_total", ["sameFingerprint": existing["fingerprint"]?.stringValue == fingerprint ? "true" : "false"])
        guard existing["fingerprint"]?.stringValue == fingerprint else {
            throw RPCError.conflict("client_order_id_reused", "clientOrderId was already used with a different payload")
        }
        return OrderView.public(try drive(existing, ctx))
    }

    private func systemCtx(_ ctx: RPCContext) -> RPCContext {
        RPCContext(requestId: ctx.requestId, actor: .system, deadline: ctx.deadline)
    }

    /// Takes an order from whatever stage it is in to `enqueued`. Idempotent.
    func drive(_ order: JSON, _ ctx: RPCContext) throws(RPCError) -> JSON {
        var o = order
        let id = o["_id"]!.stringValue!
        if o["stage"] == "accepted" {
            do {
                _ = try wallet.call("wallet.charge", ["userId": o["userId"]!, "orderId": .string(id), "amountPaise": o["chargePaise"]!], ctx: systemCtx(ctx))
            } catch let e where e.reason == "insufficient_balance" {
                do { _ = try repo.deleteUncharged(id) } catch { throw storeFailure(error, ctx) }
                throw e
            }
        }
        if o["stage"] == "accepted" || o["stage"] == "charged" {
            do {
                _ = try createQueue.add(name: QueueNames.createJob, dataJSON: JSON.object(["orderId": .string(id), "requestId": .string(ctx.requestId)]).serialized(),
                                        options: JobOptions(jobId: "create-\(id)"))
            } catch {
                log.error("enqueue failed; the recovery pass will retry", requestId: ctx.requestId, ["orderId": .string(id), "error": .string(String(describing: error))])
                throw RPCError.unavailable("Queue unavailable")
            }
            let moved: JSON?
            do {
                moved = try repo.update(id, where: .in("stage", ["accepted", "charged"]), Update(set: ["stage": "enqueued"])) ?? repo.get(id)
            } catch { throw storeFailure(error, ctx) }
            guard let m = moved else {
                // Another driver of this order (a duplicate request, the recovery pass) had its
                // charge refused and deleted the order, and a top-up landed before ours went
                // through. The order does not exist, so the money goes back.
                do {
                    _ = try wallet.call("wallet.refund", ["userId": o["userId"]!, "orderId": .string(id)], ctx: systemCtx(ctx))
                } catch let e where e.reason == "not_charged" {}
                log.warn("an order was deleted after its charge; refunded", requestId: ctx.requestId, ["orderId": .string(id)])
                throw RPCError.business("insufficient_balance", "The wallet balance is too low for this debit")
            }
            o = m
        }
        if o["status"] == "cancel_requested" && o["cancelEnqueued"] != true {
            try enqueueCancel(o, ctx)
            o = (try? repo.get(id)) ?? o
        }
        return o
    }

    // MARK: cancel

    func cancel(orderId: String, ctx: RPCContext) throws(RPCError) -> JSON {
        guard let actor = ctx.actor else { throw RPCError.unauthenticated() }
        for _ in 0..<5 {
            var o: JSON
            do {
                guard let x = try repo.get(orderId), actor.role == .admin || x["userId"]?.stringValue == actor.userId else {
                    throw RPCError.notFound("Order not found")
                }
                o = x
            } catch let e as RPCError { throw e } catch { throw storeFailure(error, ctx) }
            if o["stage"] != "enqueued" {
                // Still being accepted (its request is in flight, or a crash interrupted it): finish
                // that first, so the charge is settled before a cancel can refund it and is never
                // taken after the refund found nothing to give back.
                do { o = try drive(o, ctx) } catch let e where e.reason == "insufficient_balance" {
                    throw RPCError.notFound("Order not found")  // refused, so it was never created
                }
            }
            let status = o["status"]?.stringValue ?? ""
            switch status {
            case "cancel_requested", "cancelled":
                // Repeating a cancel is harmless; make sure the job exists.
                if status == "cancel_requested" && o["cancelEnqueued"] != true { try enqueueCancel(o, ctx) }
                return OrderView.public((try? repo.get(orderId)) ?? o)
            case "failed":
                throw RPCError.business("not_cancellable", "A failed order cannot be cancelled")
            case "pending", "placed":
                let now = Clock.nowISO()
                let u = Update(set: ["status": "cancel_requested", "cancelFrom": .string(status), "cancelEnqueued": false],
                               push: ["history": ["status": "cancel_requested", "at": .string(now), "by": .string(actor.userId), "note": "cancel requested"]])
                let updated: JSON?
                do { updated = try repo.update(orderId, where: .eq("status", .string(status)), u) } catch { throw storeFailure(error, ctx) }
                guard let x = updated else { continue }  // it moved meanwhile: look again
                Metrics.shared.increment("oops_orders_cancel_requested_total")
                try enqueueCancel(x, ctx)
                return OrderView.public((try? repo.get(orderId)) ?? x)
            default:
                throw RPCError.business("not_cancellable", "The order cannot be cancelled in its current state")
            }
        }
        throw RPCError.conflict("concurrent_update", "The order is changing; try again")
    }

    private func enqueueCancel(_ o: JSON, _ ctx: RPCContext) throws(RPCError) {
        let id = o["_id"]!.stringValue!
        do {
            // A fresh id per cancel request, so a cancel after an earlier refused one is not a no-op.
            let attempt = o["history"]?.arrayValue?.filter { $0["status"] == "cancel_requested" }.count ?? 1
            _ = try cancelQueue.add(name: QueueNames.cancelJob, dataJSON: JSON.object(["orderId": .string(id), "requestId": .string(ctx.requestId)]).serialized(),
                                    options: JobOptions(jobId: "cancel-\(id)-\(attempt)"))
            _ = try repo.update(id, where: .eq("status", "cancel_requested"), Update(set: ["cancelEnqueued": true]))
        } catch {
            log.error("cancel enqueue failed; the recovery pass will retry", requestId: ctx.requestId, ["orderId": .string(id), "error": .string(String(describing: error))])
            throw RPCError.unavailable("Queue unavailable")
        }
    }

    // MARK: reads

    func get(orderId: String, ctx: RPCContext) throws(RPCError) -> JSON {
        guard let actor = ctx.actor else { throw RPCError.unauthenticated() }
        let o: JSON?
        do { o = try repo.get(orderId) } catch { throw storeFailure(error, ctx) }
        guard let o, actor.role == .admin || actor.role == .system || o["userId"]?.stringValue == actor.userId else {
            throw RPCError.notFound("Order not found")
        }
        return OrderView.public(o)
    }

    func list(_ p: JSON, ctx: RPCContext) throws(RPCError) -> JSON {
        guard let actor = ctx.actor else { throw RPCError.unauthenticated() }
        let limit = Int(p["limit"]?.intValue ?? Paging.defaultLimit)
        let userId = actor.role == .merchant ? actor.userId : p["userId"]?.stringValue
        let rows: [JSON]
        do { rows = try repo.list(userId: userId, status: p["status"]?.stringValue, before: p["cursor"]?.stringValue, limit: limit + 1) } catch { throw storeFailure(error, ctx) }
        let page = Array(rows.prefix(limit))
        let next: JSON = rows.count > limit ? (page.last?["_id"] ?? .null) : .null
        return ["items": .array(page.map(OrderView.public)), "nextCursor": next]
    }

    // MARK: provider outcomes (ParcelXSvc)

    /// Compare-and-set of status and provider fields; a late or repeated job cannot move an order
    /// backwards because `from` must hold. With `refund`, the charge is refunded first (at most
    /// once, by its ledger reference) so a crash between the two leaves a retryable state.
    func transition(_ p: JSON, ctx: RPCContext) throws(RPCError) -> JSON {
        let id = p["orderId"]!.stringValue!
        let from = p["from"]!.arrayValue!
        let current: JSON
        do {
            guard let c = try repo.get(id) else { throw RPCError.notFound("Order not found") }
            current = c
        } catch let e as RPCError { throw e } catch { throw storeFailure(error, ctx) }
        guard from.contains(current["status"] ?? .null) else {
            return ["applied": false, "order": current]
        }
        if p["refund"] == true {
            do {
                _ = try wallet.call("wallet.refund", ["userId": current["userId"]!, "orderId": .string(id)], ctx: systemCtx(ctx))
            } catch let e where e.reason == "not_charged" {
                // Nothing was taken; nothing to give back.
            }
        }
        var u = Update()
        for (k, v) in p["set"]?.objectValue ?? [:] { u.set[k] = v }
        if let to = p["to"]?.stringValue {
            u.set["status"] = .string(to)
            var h: [String: JSON] = ["status": .string(to), "at": .string(Clock.nowISO()), "by": .string(ctx.actor?.userId ?? "system")]
            if let n = p["note"]?.stringValue { h["note"] = .string(n) }
            if let m = p["set"]?["providerMessage"] { h["providerMessage"] = m }
            u.push["history"] = .object(h)
        }
        let updated: JSON?
        do { updated = try repo.update(id, where: .in("status", from), u) } catch { throw storeFailure(error, ctx) }
        if let x = updated {
            if let to = p["to"]?.stringValue { Metrics.shared.increment("oops_order_transitions_total", ["to": to]) }
            return ["applied": true, "order": x]
        }
        return ["applied": false, "order": ((try? repo.get(id)) ?? nil) ?? current]
    }

    // MARK: recovery

    /// Finishes pipelines that a crash interrupted. Safe to run on every instance at once.
    func recoverOnce() -> Int {
        let rows: [JSON]
        do { rows = try repo.unfinished(olderThanMs: 3000, limit: 200) } catch {
            log.warn("recovery pass cannot read the store", ["error": .string(String(describing: error))])
            return 0
        }
        var n = 0
        for o in rows {
            let ctx = RPCContext.new(actor: .system, timeoutMs: 5000, requestId: o["requestId"]?.stringValue)
            do {
                _ = try drive(o, ctx)
                n += 1
            } catch {
                if error.reason != "insufficient_balance" {
                    log.warn("recovery could not finish an order yet", requestId: ctx.requestId, ["orderId": o["_id"] ?? .null, "error": .string(error.message)])
                }
            }
        }
        if n > 0 {
            log.info("recovery finished interrupted orders", ["count": .int(Int64(n))])
            Metrics.shared.increment("oops_orders_recovered_total", by: Int64(n))
        }
        return n
    }
}

/// What clients see of an order: internal bookkeeping stripped.
enum OrderView {
    static let hidden: Set<String> = ["_id", "fingerprint", "stage", "cancelEnqueued", "cancelFrom", "createdAtMs", "updatedAtMs", "requestId"]
    static func `public`(_ o: JSON) -> JSON {
        guard var x = o.objectValue else { return o }
        for k in hidden { x[k] = nil }
        return .object(x)
    }
}
