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
///
/// Time is read from the repository's `clock`, so a unit test can move it.
final class OrderService: Sendable {
    let repo: OrderRepository
    /// WalletSvc and AuthSvc: an `RPCClient` in the process, a `Dispatcher` in unit tests.
    let wallet: any RPCCalling
    let auth: any RPCCalling
    let createQueue: any JobAdding
    let cancelQueue: any JobAdding
    let log: Logger
    /// Signed webhooks to merchants: told of every status and tracking change (docs/webhooks.md).
    let webhooks: WebhookService?
    /// Test-only crash switch (`Failpoint`); nil in every real deployment.
    let failpoint: Failpoint?

    /// `OOPS_ORDER_FAILPOINT=after_change:<clientOrderId>:<n>`, for crash tests only: the process
    /// kills itself right after storing the change of that order whose webhook event is number
    /// `n`, before the event is recorded.
    struct Failpoint: Sendable, Equatable {
        var clientOrderId: String
        var seq: Int

        init?(_ spec: String) {
            let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0] == "after_change", !parts[1].isEmpty, let n = Int(parts[2]), n > 0 else { return nil }
            clientOrderId = String(parts[1])
            seq = n
        }
    }
    /// Merchants whose KYC this process has seen approved; bounded, forgotten wholesale when full.
    private let kycApproved = Locked<Set<String>>([])
    static let kycApprovedMax = 100_000

    init(repo: OrderRepository, wallet: any RPCCalling, auth: any RPCCalling, createQueue: any JobAdding, cancelQueue: any JobAdding, log: Logger,
         webhooks: WebhookService? = nil, failpoint: Failpoint? = nil) {
        self.webhooks = webhooks
        self.failpoint = failpoint
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

    // MARK: create

    func create(_ payload: JSON, ctx: RPCContext) throws -> (created: Bool, order: JSON) {
        guard let actor = ctx.actor, actor.role == .merchant else { throw RPCError.forbidden() }
        try OrderValidation.check(payload)
        let request: OrderRequest
        do { request = try JSONValueDecoder.decode(OrderRequest.self, from: payload) } catch {
            // The schema admits only what OrderRequest reads; this is a schema that drifted from it.
            log.error("create params passed the schema but do not decode", requestId: ctx.requestId, ["error": .string(String(describing: error))])
            throw RPCError.invalidParams(path: "", "does not describe an order")
        }
        let userId = actor.userId
        let fp = Self.fingerprint(payload)

        // A merchant with orders has an approved KYC, so a replay passes this check too; it
        // needs no money check: the insert below finds the first order and answers with it.
        try requireApprovedKYC(userId, ctx)
        let pkg = request.package
        let charge = RateCard.chargePaise(
            weightGrams: pkg.weightGrams, lengthCm: pkg.lengthCm, widthCm: pkg.widthCm, heightCm: pkg.heightCm,
            express: request.expressType == "air", codAmountPaise: request.payment.isCOD ? request.payment.codAmountPaise : nil)

        let now = repo.clock.nowMillis()
        var order = Order(id: ID.make("ord"), userId: userId, request: request, fingerprint: fp, chargePaise: charge,
                          requestId: ctx.requestId, nowMs: now, nowISO: Clock.iso8601(millis: now))
        // The creation's webhook event is owed from the insert on; it is recorded once the order
        // is past acceptance (a refused charge deletes the order, and its event with it).
        if webhooks != nil, let e = OwedWebhook.of(before: nil, after: order, atMs: now) { order.webhookOutbox = [e] }
        let doc = order.json
        switch try repo.insert(doc) {
        case .duplicate(let existing):
            // The same (user, clientOrderId) arrived at the same instant elsewhere.
            return (false, try replay(existing, fingerprint: fp, ctx))
        case .created:
            do {
                let driven = try drive(order, ctx)
                let o = Order.publicView(driven.document(updating: doc, from: order))
                Metrics.shared.increment("oops_orders_created_total")
                Metrics.shared.increment("oops_order_charges_paise_total", by: charge)
                return (true, o)
            } catch {
                Metrics.shared.increment("oops_orders_refused_total", ["reason": (error as? RPCError)?.reason ?? "error"])
                throw error
            }
        }
    }

    private func requireApprovedKYC(_ userId: String, _ ctx: RPCContext) throws {
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

    private func replay(_ existing: JSON, fingerprint: String, _ ctx: RPCContext) throws -> JSON {
        Metrics.shared.increment("oops_orders_replayed_total", ["sameFingerprint": existing["fingerprint"]?.stringValue == fingerprint ? "true" : "false"])
        guard existing["fingerprint"]?.stringValue == fingerprint else {
            throw RPCError.conflict("client_order_id_reused", "clientOrderId was already used with a different payload")
        }
        return try drive(try Order(json: existing), ctx).publicJSON
    }

    private func systemCtx(_ ctx: RPCContext) -> RPCContext {
        RPCContext(requestId: ctx.requestId, actor: .system, deadline: ctx.deadline)
    }

    /// Takes an order from whatever stage it is in to `enqueued`: the charge, the create job, the
    /// stage. Idempotent.
    func drive(_ order: Order, _ ctx: RPCContext) throws -> Order {
        do { _ = try apply(order.id, .accepted, ctx, current: order) } catch let e as RPCError where e.reason == "insufficient_balance" {
            _ = try apply(order.id, .chargeRefused, ctx, current: order)
            throw e
        }
        _ = try apply(order.id, .charged, ctx, current: order)
        guard let done = try apply(order.id, .enqueued, ctx, current: order) else {
            // Another driver of this order (a duplicate request, the recovery pass) had its
            // charge refused and deleted the order, and a top-up landed before ours went
            // through. The order does not exist, so the money goes back.
            try run(.refund, order, ctx)
            log.warn("an order was deleted after its charge; refunded", requestId: ctx.requestId, ["orderId": .string(order.id)])
            throw RPCError.business("insufficient_balance", "The wallet balance is too low for this debit")
        }
        return done.stored
    }

    // MARK: cancel

    func cancel(orderId: String, ctx: RPCContext) throws -> JSON {
        guard let actor = ctx.actor else { throw RPCError.unauthenticated() }
        guard var o = try load(orderId, ctx), actor.role == .admin || o.userId == actor.userId else {
            throw RPCError.notFound("Order not found")
        }
        if o.stage != .enqueued {
            // Still being accepted (its request is in flight, or a crash interrupted it): finish
            // that first, so the charge is settled before a cancel can refund it and is never
            // taken after the refund found nothing to give back.
            do { o = try drive(o, ctx) } catch let e as RPCError where e.reason == "insufficient_balance" {
                throw RPCError.notFound("Order not found")  // refused, so it was never created
            }
        }
        guard let r = try apply(orderId, .cancelRequested, ctx, current: o) else { throw RPCError.notFound("Order not found") }
        if r.transition.outcome == .applied { Metrics.shared.increment("oops_orders_cancel_requested_total") }
        return ((try? repo.get(orderId)) ?? nil).map(Order.publicView) ?? r.stored.publicJSON
    }

    // MARK: applying events

    struct Applied {
        /// The order the event was applied to.
        let before: Order
        let transition: OrderTransition
        /// The order as stored afterwards.
        let stored: Order
        /// Ids of the jobs the effects added (or found).
        let jobs: [String]
    }

    /// Applies one event to the stored order (docs/orders.md): asks OrderLifecycle, runs the
    /// effects that precede the write (charge, refund), writes the change by compare-and-set on
    /// the status and stage the decision was made from, then runs the rest (jobs). A lost race
    /// reads the order again and decides again. Nil when the order does not exist.
    func apply(_ id: String, _ event: OrderEvent, _ ctx: RPCContext, current: Order? = nil) throws -> Applied? {
        var known = current
        let lctx = OrderLifecycle.Context(by: ctx.actor?.userId ?? "system", at: repo.clock.nowISO(), requestId: ctx.requestId)
        for _ in 0..<5 {
            let o: Order
            if let k = known { o = k; known = nil } else {
                guard let x = try load(id, ctx) else { return nil }
                o = x
            }
            let t = OrderLifecycle.apply(o, event, lctx)
            if case .rejected(let reason, let message) = t.outcome { throw RPCError.business(reason, message) }
            for e in t.effectsBeforeWrite { try run(e, o, ctx) }
            var stored = o
            if t.outcome == .applied {
                guard let x = try write(from: o, to: t.order, ctx) else { continue }  // it moved meanwhile: decide again
                stored = x
                if let f = failpoint, x.clientOrderId == f.clientOrderId, x.webhookOutbox.count > o.webhookOutbox.count, x.webhookOutbox.last?.seq == f.seq {
                    log.warn("failpoint reached, killing the process", requestId: ctx.requestId, ["orderId": .string(x.id)])
                    kill(getpid(), SIGKILL)
                }
                announce(x, requestId: ctx.requestId)
            }
            var jobs: [String] = []
            for e in t.effectsAfterWrite { if let j = try run(e, stored, ctx) { jobs.append(j) } }
            return Applied(before: o, transition: t, stored: stored, jobs: jobs)
        }
        throw RPCError.conflict("concurrent_update", "The order is changing; try again")
    }

    private func load(_ id: String, _ ctx: RPCContext) throws -> Order? {
        // A stored order that does not decode is an internal error (500), not an outage.
        guard let doc = try repo.get(id) else { return nil }
        return try Order(json: doc)
    }

    /// Writes the fields that differ, if the order still has the status and stage it had. A
    /// change of status or tracking status adds its webhook event to the order's outbox in the
    /// same update (docs/webhooks.md).
    private func write(from old: Order, to new: Order, _ ctx: RPCContext) throws -> Order? {
        let c = new.changes(from: old)
        var u = Update(set: c.set, unset: c.unset)
        if c.appended.count == 1, let line = try? JSON(encoding: c.appended[0]) {
            u.push["history"] = line
        } else if !c.appended.isEmpty {
            u.set["history"] = (try? JSON(encoding: new.history)) ?? .array([])
        }
        let owed = webhooks == nil ? nil : OwedWebhook.of(before: old, after: new, atMs: repo.clock.nowMillis())
        if let owed, let entry = try? JSON(encoding: owed) {
            u.push[Order.webhookOutboxField] = entry
            u.set[Order.webhookDueField] = true
            u.set[Order.webhookSeqField] = .int(Int64(owed.seq))
        }
        guard let updated = try repo.update(old.id, where: .and([.eq("status", old.status.json), .eq("stage", .string(old.stage.rawValue))]), u) else { return nil }
        // The after-image is the new order plus the time the repository stamped on it.
        var stored = new
        if let owed { stored.webhookOutbox.append(owed) }
        if let at = updated["updatedAt"]?.stringValue { stored.updatedAt = at }
        if let ms = updated["updatedAtMs"]?.intValue { stored.updatedAtMs = ms }
        return stored
    }

    /// Runs one effect; answers the id of the job it added.
    @discardableResult
    private func run(_ effect: OrderEffect, _ o: Order, _ ctx: RPCContext) throws -> String? {
        switch effect {
        case .charge(let paise):
            _ = try wallet.call("wallet.charge", ["userId": .string(o.userId), "orderId": .string(o.id), "amountPaise": .int(paise)], ctx: systemCtx(ctx))
        case .deleteUncharged:
            _ = try repo.deleteUncharged(o.id)
        case .refund:
            do {
                _ = try wallet.call("wallet.refund", ["userId": .string(o.userId), "orderId": .string(o.id)], ctx: systemCtx(ctx))
            } catch let e where e.reason == "not_charged" {
                // Nothing was taken; nothing to give back.
            }
        case .enqueueCreate(let job), .enqueueCancel(let job):
            do {
                _ = try (job.queue == createQueue.name ? createQueue : cancelQueue).add(name: job.name, dataJSON: job.dataJSON, options: job.options)
            } catch {
                log.error("enqueue failed; the recovery pass or the job's retry will add it again", requestId: ctx.requestId,
                          ["orderId": .string(o.id), "jobId": .string(job.id), "error": .string(String(describing: error))])
                throw RPCError.unavailable("Queue unavailable")
            }
            if job.kind == .cancel { _ = try apply(o.id, .cancelEnqueued, ctx) }
            return job.id
        }
        return nil
    }

    // MARK: reads

    func get(orderId: String, ctx: RPCContext) throws -> JSON {
        guard let actor = ctx.actor else { throw RPCError.unauthenticated() }
        guard let o = try repo.get(orderId), actor.role == .admin || actor.role == .system || o["userId"]?.stringValue == actor.userId else {
            throw RPCError.notFound("Order not found")
        }
        return Order.publicView(o)
    }

    func list(_ p: JSON, ctx: RPCContext) throws -> JSON {
        guard let actor = ctx.actor else { throw RPCError.unauthenticated() }
        let limit = Int(p["limit"]?.intValue ?? Paging.defaultLimit)
        let userId = actor.role == .merchant ? actor.userId : p["userId"]?.stringValue
        let rows = try repo.list(userId: userId, status: p["status"]?.stringValue, before: p["cursor"]?.stringValue, limit: limit + 1)
        let page = Array(rows.prefix(limit))
        let next: JSON = rows.count > limit ? (page.last?["_id"] ?? .null) : .null
        return ["items": .array(page.map(Order.publicView)), "nextCursor": next]
    }

    // MARK: provider outcomes (ParcelXSvc)

    /// A provider outcome ParcelXSvc reports (`orders.provider.*`). Reporting the same outcome
    /// again changes nothing more: the lifecycle finds the order already moved, the refund is
    /// made at most once by its ledger reference, and a job id that exists adds nothing.
    func report(_ orderId: String, _ event: OrderEvent, ctx: RPCContext) throws -> JSON {
        guard let r = try apply(orderId, event, ctx) else { throw RPCError.notFound("Order not found") }
        if r.stored.status != r.before.status { Metrics.shared.increment("oops_order_transitions_total", ["to": r.stored.status.rawValue]) }
        // `tracks`: whether the shipment is to be polled now (OrderLifecycle.tracksShipment).
        return ["applied": .bool(r.transition.outcome == .applied), "status": r.stored.status.json, "jobs": .array(r.jobs.map { .string($0) }),
                "trackingStatus": r.stored.trackingStatus.map { .string($0.rawValue) } ?? .null, "tracks": .bool(OrderLifecycle.tracksShipment(r.stored))]
    }

    // MARK: recovery

    /// How long an order is left to its own request before the recovery passes take it on.
    static let recoveryAgeMs: Int64 = 3000

    /// Finishes pipelines that a crash interrupted. Safe to run on every instance at once.
    func recoverOnce() -> Int {
        let rows: [JSON]
        do { rows = try repo.unfinished(olderThanMs: Self.recoveryAgeMs, limit: 200) } catch {
            log.warn("recovery pass cannot read the store", ["error": .string(String(describing: error))])
            return 0
        }
        var n = 0
        for doc in rows {
            let ctx = RPCContext.new(actor: .system, timeoutMs: 5000, requestId: doc["requestId"]?.stringValue)
            do {
                _ = try drive(try Order(json: doc), ctx)
                n += 1
            } catch {
                if (error as? RPCError)?.reason != "insufficient_balance" {
                    log.warn("recovery could not finish an order yet", requestId: ctx.requestId, ["orderId": doc["_id"] ?? .null, "error": .string(String(describing: error))])
                }
            }
        }
        if n > 0 {
            log.info("recovery finished interrupted orders", ["count": .int(Int64(n))])
            Metrics.shared.increment("oops_orders_recovered_total", by: Int64(n))
        }
        return n
    }

    // MARK: webhooks

    /// Records the webhook events the order owes (WebhookService.record), then takes them off the
    /// order unless a newer change added one meanwhile (that change's request, or the recovery
    /// pass, records it). When the store or Redis refuses, or the process dies first, they stay on
    /// the order and `recoverWebhooksOnce` records them. Answers whether they were all recorded.
    @discardableResult
    func announce(_ o: Order, requestId: String) -> Bool {
        guard let w = webhooks, o.stage == .enqueued, let last = o.webhookOutbox.last else { return false }
        do {
            try w.record(o, requestId: requestId)
            _ = try repo.webhooksRecorded(o.id, through: last.seq)
            return true
        } catch {
            Metrics.shared.increment("oops_webhook_events_deferred_total")
            log.warn("webhook events not recorded yet; the recovery pass will", requestId: requestId,
                     ["orderId": .string(o.id), "error": .string(String(describing: error))])
            return false
        }
    }

    /// Records the webhook events of orders that still owe some after `olderThanMs` (their request
    /// failed to, or died). Safe on every instance at once: recording is idempotent. Answers for
    /// how many orders it recorded them.
    func recoverWebhooksOnce(olderThanMs: Int64 = OrderService.recoveryAgeMs, limit: Int = 200) -> Int {
        guard webhooks != nil else { return 0 }
        let rows: [JSON]
        do { rows = try repo.owingWebhooks(olderThanMs: olderThanMs, limit: limit) } catch {
            log.warn("webhook recovery cannot read the store", ["error": .string(String(describing: error))])
            return 0
        }
        var n = 0
        for doc in rows {
            guard let o = try? Order(json: doc) else { continue }
            if announce(o, requestId: o.requestId) { n += 1 }
        }
        if n > 0 { log.info("recovery recorded owed webhook events", ["orders": .int(Int64(n))]) }
        return n
    }

    // MARK: reconciliation with the queues

    /// Where the last reconciliation page ended (nil: start from the first order).
    private let reconcileCursor = Locked<String?>(nil)

    /// Finds orders waiting on a provider job that no queue holds in any state — a job a Redis
    /// failover lost (acknowledged by the old master, never replicated), or one removed by
    /// hand — and adds it again under the same id. The worker looks the order up at the provider
    /// by its client order id before creating it, so a job that had in fact run books nothing
    /// twice. Looks at `limit` orders unchanged for `olderThanMs` per pass, paging through all of
    /// them over successive passes. Safe on every instance at once: adding an existing id is a
    /// no-op. Returns how many jobs it added.
    func reconcileJobsOnce(olderThanMs: Int64, limit: Int = 200) -> Int {
        let rows: [JSON]
        do { rows = try repo.awaitingJobs(olderThanMs: olderThanMs, after: reconcileCursor.current, limit: limit) } catch {
            log.warn("job reconciliation cannot read the store", ["error": .string(String(describing: error))])
            return 0
        }
        reconcileCursor.withLock { $0 = rows.count < limit ? nil : rows.last?["_id"]?.stringValue }
        var added = 0
        for doc in rows {
            let ctx = RPCContext.new(actor: .system, timeoutMs: 5000, requestId: doc["requestId"]?.stringValue)
            guard let order = try? Order(json: doc), let job = ProviderJob.awaited(by: order, requestId: ctx.requestId) else { continue }
            let queue = job.queue == createQueue.name ? createQueue : cancelQueue
            do {
                guard try queue.state(id: job.id) == .unknown else { continue }
                // The job may have finished and been trimmed since the read: only an order that
                // still waits on this very job gets it again.
                guard let now = try load(order.id, ctx), ProviderJob.awaited(by: now, requestId: ctx.requestId) == job else { continue }
                _ = try queue.add(name: job.name, dataJSON: job.dataJSON, options: job.options)
                added += 1
                log.warn("order's job was missing from the queue; added again", requestId: ctx.requestId,
                         ["orderId": .string(order.id), "jobId": .string(job.id)])
            } catch {
                log.warn("job reconciliation could not check an order", requestId: ctx.requestId,
                         ["orderId": .string(order.id), "error": .string(String(describing: error))])
                return added
            }
        }
        if added > 0 { Metrics.shared.increment("oops_orders_jobs_readded_total", by: Int64(added)) }
        return added
    }
}
