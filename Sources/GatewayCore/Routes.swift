import Foundation
import JSON
import RPC
import Domain

/// The route table of the HTTP API (docs/design.md section 4). Each route maps onto one RPC method; the Gateway
/// adds only HTTP concerns (status codes, headers, query strings).
enum Routes {
    static func all(_ g: Gateway) -> [Route] {
        func pass(_ service: String, _ method: String, status: Int = 200) -> (RouteContext) throws(RPCError) -> RouteResult {
            return { rc throws(RPCError) in .json(status, try g.call(service, method, rc.body, rc)) }
        }
        func pageQuery(_ rc: RouteContext, into p: inout [String: JSON]) throws(RPCError) {
            if let c = rc.query("cursor") { p["cursor"] = .string(c) }
            if let n = try RequestInt.parse(rc.query("limit"), name: "limit", in: Paging.limits) { p["limit"] = .int(n) }
            if let s = rc.query("status") { p["status"] = .string(s) }
        }
        return [
            // Load balancers.
            healthz(),
            // Only ready or not, for load balancers: which instances exist and how they fare is
            // operator data, on the admin listener.
            Route("GET", "/readyz", .anyone, "Readiness: 200 when every service, Redis and the stores can serve, else 503") { _ throws(RPCError) in
                let ready = Readiness.check(g)["status"] == "ok"
                return .json(ready ? 200 : 503, ["status": .string(ready ? "ok" : "unavailable")])
            },
            Route("GET", "/openapi.json", .anyone, "This API as an OpenAPI 3.1 document") { _ throws(RPCError) in
                .json(200, OpenAPI.document(g))
            },

            // Accounts.
            Route("POST", "/auth/register", .anyone, "Create a merchant account", rpc: (ServiceName.auth, "auth.register"), body: true, status: 201,
                  pass(ServiceName.auth, "auth.register", status: 201)),
            Route("POST", "/auth/login", .anyone, "Log in with email and password", rpc: (ServiceName.auth, "auth.login"), body: true) { rc throws(RPCError) in
                var p = rc.body.objectValue ?? [:]
                p["clientAddress"] = .string(rc.request.remoteAddress)
                return .json(200, try g.call(ServiceName.auth, "auth.login", .object(p), rc))
            },
            Route("POST", "/auth/refresh", .anyone, "Rotate a refresh token", rpc: (ServiceName.auth, "auth.refresh"), body: true,
                  pass(ServiceName.auth, "auth.refresh")),
            Route("POST", "/auth/logout", .user, "Revoke a refresh token", rpc: (ServiceName.auth, "auth.logout"), body: true, status: 204) { rc throws(RPCError) in
                _ = try g.call(ServiceName.auth, "auth.logout", rc.body, rc)
                return .noContent()
            },
            Route("GET", "/auth/me", .user, "Profile and KYC status; `notices` when the merchant's webhook endpoint was disabled",
                  rpc: (ServiceName.auth, "auth.me")) { rc throws(RPCError) in
                var me = try g.call(ServiceName.auth, "auth.me", .object([:]), rc)
                // A disabled webhook endpoint is a notice on the profile (the profile itself answers even if OrderSvc does not).
                if rc.actor?.role == .merchant, let uid = rc.actor?.userId,
                   let ep = try? g.call(ServiceName.order, "webhooks.status", ["userId": .string(uid)], rc), ep["enabled"] == false {
                    me["notices"] = [["kind": "webhook_endpoint_disabled", "message": ep["disabledReason"] ?? .null, "since": ep["disabledAt"] ?? .null]]
                }
                return .json(200, me)
            },

            // KYC.
            Route("POST", "/kyc", .merchant, "Submit KYC", rpc: (ServiceName.auth, "kyc.submit"), body: true, status: 201,
                  pass(ServiceName.auth, "kyc.submit", status: 201)),
            Route("GET", "/kyc", .merchant, "Read own KYC (masked)", rpc: (ServiceName.auth, "kyc.get"), pass(ServiceName.auth, "kyc.get")),
            Route("GET", "/admin/kyc", .admin, "KYC review queue", rpc: (ServiceName.auth, "kyc.list"), query: ["status", "cursor", "limit"]) { rc throws(RPCError) in
                var p: [String: JSON] = [:]
                try pageQuery(rc, into: &p)
                return .json(200, try g.call(ServiceName.auth, "kyc.list", .object(p), rc))
            },
            Route("POST", "/admin/kyc/{userId}/approve", .admin, "Approve a KYC submission", rpc: (ServiceName.auth, "kyc.approve")) { rc throws(RPCError) in
                .json(200, try g.call(ServiceName.auth, "kyc.approve", ["userId": .string(rc.pathParams["userId"]!)], rc))
            },
            Route("POST", "/admin/kyc/{userId}/reject", .admin, "Reject a KYC submission", rpc: (ServiceName.auth, "kyc.reject"), body: true) { rc throws(RPCError) in
                var p = rc.body.objectValue ?? [:]
                p["userId"] = .string(rc.pathParams["userId"]!)
                return .json(200, try g.call(ServiceName.auth, "kyc.reject", .object(p), rc))
            },

            // Wallet.
            Route("GET", "/wallet", .merchant, "Wallet balance", rpc: (ServiceName.wallet, "wallet.get"), pass(ServiceName.wallet, "wallet.get")),
            Route("GET", "/wallet/transactions", .merchant, "Ledger, newest first", rpc: (ServiceName.wallet, "wallet.transactions"), query: ["cursor", "limit"]) { rc throws(RPCError) in
                var p: [String: JSON] = [:]
                try pageQuery(rc, into: &p)
                p["status"] = nil
                return .json(200, try g.call(ServiceName.wallet, "wallet.transactions", .object(p), rc))
            },
            Route("POST", "/wallet/topup", .merchant, "Add money (Idempotency-Key header required)", rpc: (ServiceName.wallet, "wallet.topup"), body: true, status: 201) { rc throws(RPCError) in
                guard let key = rc.request.header("idempotency-key"), !key.isEmpty else {
                    throw RPCError.invalidParams(path: "Idempotency-Key", "header is required")
                }
                var p = rc.body.objectValue ?? [:]
                p["idempotencyKey"] = .string(key)
                let r = try g.call(ServiceName.wallet, "wallet.topup", .object(p), rc)
                return .json(r["created"] == false ? 200 : 201, r)
            },

            // Orders.
            Route("POST", "/orders/create", .merchant, "Create an order (idempotent on clientOrderId)", rpc: (ServiceName.order, "orders.create"), body: true, status: 201) { rc throws(RPCError) in
                let r = try g.call(ServiceName.order, "orders.create", rc.body, rc)
                return .json(r["created"] == false ? 200 : 201, r["order"] ?? .null)
            },
            Route("POST", "/orders/{id}/cancel", .merchant, "Cancel an order (queued)", rpc: (ServiceName.order, "orders.cancel"), status: 202) { rc throws(RPCError) in
                let r = try g.call(ServiceName.order, "orders.cancel", ["orderId": .string(rc.pathParams["id"]!)], rc)
                return .json(202, r["order"] ?? r)
            },
            Route("GET", "/orders/{id}", .user, "One order with its status history", rpc: (ServiceName.order, "orders.get")) { rc throws(RPCError) in
                .json(200, try g.call(ServiceName.order, "orders.get", ["orderId": .string(rc.pathParams["id"]!)], rc))
            },
            Route("GET", "/orders/{id}/timeline", .user, "Every event of one order in time order: created, status changes, charge, refund, jobs, provider calls (bodies for admins), tracking",
                  rpc: (ServiceName.order, "orders.timeline")) { rc throws(RPCError) in
                .json(200, try g.call(ServiceName.order, "orders.timeline", ["orderId": .string(rc.pathParams["id"]!)], rc))
            },
            Route("GET", "/admin/orders", .admin, "Find orders by id, the merchant's clientOrderId or the AWB", rpc: (ServiceName.order, "orders.find"),
                  query: ["q"]) { rc throws(RPCError) in
                guard let q = rc.query("q"), !q.isEmpty else { throw RPCError.invalidParams(path: "q", "is required") }
                return .json(200, try g.call(ServiceName.order, "orders.find", ["q": .string(q)], rc))
            },
            // Webhooks (docs/webhooks.md).
            Route("POST", "/webhooks/endpoint", .merchant, "Register (or replace) the webhook endpoint; the answer holds its secret, shown once",
                  rpc: (ServiceName.order, "webhooks.register"), body: true, status: 201, pass(ServiceName.order, "webhooks.register", status: 201)),
            Route("GET", "/webhooks/endpoint", .merchant, "The webhook endpoint, enabled or disabled (without its secret)",
                  rpc: (ServiceName.order, "webhooks.get"), pass(ServiceName.order, "webhooks.get")),
            Route("DELETE", "/webhooks/endpoint", .merchant, "Remove the webhook endpoint", rpc: (ServiceName.order, "webhooks.remove")) { rc throws(RPCError) in
                .json(200, try g.call(ServiceName.order, "webhooks.remove", .object([:]), rc))
            },
            Route("GET", "/webhooks/deliveries", .merchant, "Recent webhook events with every attempt and response, newest first",
                  rpc: (ServiceName.order, "webhooks.deliveries"), query: ["limit"]) { rc throws(RPCError) in
                var p: [String: JSON] = [:]
                if let n = try RequestInt.parse(rc.query("limit"), name: "limit", in: Paging.limits) { p["limit"] = .int(n) }
                return .json(200, try g.call(ServiceName.order, "webhooks.deliveries", .object(p), rc))
            },
            Route("POST", "/webhooks/deliveries/{eventId}/replay", .merchant, "Send one webhook event again (same id and body, new signature)",
                  rpc: (ServiceName.order, "webhooks.replay"), status: 202) { rc throws(RPCError) in
                .json(202, try g.call(ServiceName.order, "webhooks.replay", ["eventId": .string(rc.pathParams["eventId"]!)], rc))
            },
            Route("GET", "/orders", .user, "Orders, newest first", rpc: (ServiceName.order, "orders.list"), query: ["status", "cursor", "limit"]) { rc throws(RPCError) in
                var p: [String: JSON] = [:]
                try pageQuery(rc, into: &p)
                return .json(200, try g.call(ServiceName.order, "orders.list", .object(p), rc))
            },
            Route("GET", "/admin/orders/{id}/provider-logs", .admin, "Every ParcelX request and response for an order", rpc: (ServiceName.parcelx, "parcelx.providerLogs")) { rc throws(RPCError) in
                .json(200, try g.call(ServiceName.parcelx, "parcelx.providerLogs", ["orderId": .string(rc.pathParams["id"]!)], rc))
            },
        ].map(documentResult) + Dashboard.routes(g).map(documentDashboard)
    }

    /// Routes that answer their RPC method's result as it is, so `/openapi.json` shows its schema.
    static let answeredAsResult: Set<String> = ["/orders/{id}/timeline", "/admin/orders"]
    static func documentResult(_ r: Route) -> Route {
        var r = r
        if answeredAsResult.contains(r.path) { r.doc.resultOfRPC = true }
        return r
    }

    /// `/healthz`, on both listeners: the process is up and serving HTTP.
    static func healthz() -> Route {
        let body = JSON.object(["status": "ok", "service": "gateway"]).serializedBytes()
        return Route("GET", "/healthz", .anyone, "Liveness of the Gateway itself", inline: true) { _ throws(RPCError) in
            var r = RouteResult(status: 200, body: nil)
            r.raw = .json(200, body)
            return r
        }
    }

    /// The operator listener (`OOPS_ADMIN_ADDR`, loopback by default): reaching it is the trust
    /// boundary, like the service sockets, so these routes ask for no credential.
    static func admin(_ g: Gateway) -> [Route] {
        [
            healthz(),
            Route("GET", "/readyz", .anyone, "Readiness of every service instance, Redis and the stores, with details and firing alerts") { _ throws(RPCError) in
                let r = Readiness.check(g)
                return .json(r["status"] == "ok" ? 200 : 503, r)
            },
            Route("GET", "/metrics", .anyone, "Prometheus metrics of the whole system") { _ throws(RPCError) in
                var r = RouteResult(status: 200, body: nil)
                r.raw = .text(200, MetricsExporter.render(g), headers: [("Content-Type", "text/plain; version=0.0.4")])
                return r
            },
        ]
    }

    /// The dashboard's routes are open at the Gateway and check the admin themselves; most answer
    /// HTML, assets or redirects. Recorded here so `/openapi.json` describes what they really send.
    static func documentDashboard(_ r: Route) -> Route {
        var r = r
        let p = r.path
        if p.hasPrefix("/admin/queues/assets/") {
            r.doc.media = p.hasSuffix(".css") ? "text/css" : "text/javascript"
        } else if p.hasPrefix("/admin/queues/api/") {
            r.doc.guardedAs = .admin
        } else if p == "/admin/login" || p == "/admin/logout" {
            r.doc.media = "text/html"
            r.doc.errorMedia = "text/html"
            r.doc.redirects = true
        } else {
            r.doc.media = "text/html"
            r.doc.errorMedia = "text/html"
            r.doc.guardedAs = .admin
            r.doc.redirects = true
        }
        return r
    }
}
