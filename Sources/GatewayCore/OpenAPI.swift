import Foundation
import JSON
import RPC
import Runtime
import Domain

/// `/openapi.json`, generated from the route table; request body schemas come from the mapped
/// RPC method's declaration (`rpc.discover`), so the document and the checks cannot drift.
enum OpenAPI {
    private static let cache = Locked<[String: (at: UInt64, doc: JSON)]>([:])

    static func discover(_ g: Gateway, _ service: String) -> JSON? {
        let now = Clock.monotonicNanos()
        if let c = cache.current[service], Clock.elapsed(from: c.at, to: now) < 30_000_000_000 { return c.doc }
        guard let d = try? g.client(service).call("rpc.discover", ctx: .new(timeoutMs: 1000)) else { return cache.current[service]?.doc }
        cache.withLock { $0[service] = (now, d) }
        return d
    }

    /// The declaration of a route's RPC method in its service's `rpc.discover` document.
    static func method(_ g: Gateway, _ route: Route) -> JSON? {
        guard let rpc = route.rpc, let doc = discover(g, rpc.service) else { return nil }
        return doc["methods"]?.arrayValue?.first(where: { $0["name"]?.stringValue == rpc.method })
    }

    /// The schema the service declares for one of its params, for path and query parameters.
    static func paramSchema(_ m: JSON?, _ name: String) -> JSON? {
        m?["params"]?.arrayValue?.first(where: { $0["name"]?.stringValue == name })?["schema"]
    }

    static func bodySchema(_ m: JSON?) -> JSON {
        guard let m else { return ["type": "object"] }
        var props: [String: JSON] = [:]
        var required: [JSON] = []
        let injected: Set<String> = ["ctx", "clientAddress", "idempotencyKey", "userId", "orderId"]
        for p in m["params"]?.arrayValue ?? [] {
            guard let n = p["name"]?.stringValue, !injected.contains(n) else { continue }
            props[n] = p["schema"] ?? .object([:])
            if p["required"] == true { required.append(.string(n)) }
        }
        // Services refuse params they do not declare, so the document says so too.
        var s: [String: JSON] = ["type": "object", "properties": .object(props), "additionalProperties": false]
        if !required.isEmpty { s["required"] = .array(required) }
        return .object(s)
    }

    static let errorSchema: JSON = [
        "type": "object", "required": ["error"],
        "properties": ["error": [
            "type": "object", "required": ["code", "message", "requestId"],
            "properties": ["code": ["type": "string"], "message": ["type": "string"], "requestId": ["type": "string"],
                           "fields": ["type": "array", "items": ["type": "object", "properties": ["path": ["type": "string"], "message": ["type": "string"]]]],
                           "retryAfter": ["type": "integer"]],
        ]],
    ]

    /// What OOPS posts to a merchant's webhook endpoint (docs/webhooks.md).
    static let webhookEventSchema: JSON = [
        "type": "object", "required": ["id", "type", "createdAt", "data"],
        "properties": [
            "id": ["type": "string", "description": "evt_<orderId>_<n>: the same change always has the same id; deduplicate by it"],
            "type": ["type": "string", "enum": ["order.created", "order.status_changed", "order.tracking_changed"]],
            "createdAt": ["type": "string", "format": "date-time"],
            "data": [
                "type": "object", "required": ["orderId", "clientOrderId", "status"],
                "properties": [
                    "orderId": ["type": "string"], "clientOrderId": ["type": "string"], "awbNumber": ["type": ["string", "null"]],
                    "previousStatus": ["type": ["string", "null"]], "status": ["type": "string"],
                    "previousTrackingStatus": ["type": ["string", "null"]], "trackingStatus": ["type": ["string", "null"]],
                ],
            ],
        ],
    ]

    static func document(_ g: Gateway) -> JSON {
        var paths: [String: JSON] = [:]
        for r in g.router.routes {
            let m = method(g, r)
            var op: [String: JSON] = ["summary": .string(r.summary), "operationId": .string(operationId(r))]
            var params: [JSON] = []
            for seg in r.segments where seg.hasPrefix("{") {
                let n = String(seg.dropFirst().dropLast())
                let schema = paramSchema(m, n == "id" ? "orderId" : n) ?? ["type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"]
                params.append(["name": .string(n), "in": "path", "required": true, "schema": schema])
            }
            for q in r.queryParams {
                let schema = paramSchema(m, q) ?? (q == "limit" ? ["type": "integer", "minimum": .int(Paging.limits.lowerBound), "maximum": .int(Paging.limits.upperBound)]
                    : q == "page" ? ["type": "integer", "minimum": .int(Dashboard.pages.lowerBound), "maximum": .int(Dashboard.pages.upperBound)] : ["type": "string"])
                params.append(["name": .string(q), "in": "query", "required": false, "schema": schema])
            }
            if r.path == "/wallet/topup" {
                params.append(["name": "Idempotency-Key", "in": "header", "required": true, "schema": ["type": "string", "minLength": 1, "maxLength": 128]])
            }
            if !params.isEmpty { op["parameters"] = .array(params) }
            if r.requestBody {
                let schema = bodySchema(m)
                // An absent body reaches the service as `{}`: required only when fields are.
                op["requestBody"] = ["required": .bool(schema["required"] != nil), "content": ["application/json": ["schema": schema]]]
            }
            var responses: [String: JSON] = [:]
            let media = r.doc.media
            let resultSchema: JSON = r.doc.resultOfRPC ? (m?["result"]?["schema"] ?? ["type": "object"]) : ["type": "object"]
            let ok: JSON = r.successStatus == 204 ? ["description": "Done"] :
                media == "application/json" ? ["description": "Success", "content": ["application/json": ["schema": resultSchema]]] :
                ["description": "Success", "content": [media: ["schema": ["type": "string"]]]]
            responses[String(r.successStatus)] = ok
            if r.doc.redirects { responses["303"] = ["description": "See Other: the browser goes on to `Location`"] }
            if r.path == "/orders/create" || r.path == "/wallet/topup" { responses["200"] = ["description": "Replay of an earlier request", "content": ["application/json": ["schema": ["type": "object"]]]] }
            var errContent: [String: JSON] = ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]
            if let em = r.doc.errorMedia { errContent[em] = ["schema": ["type": "string"]] }
            let err: JSON = ["description": "Error", "content": .object(errContent)]
            // 401 also on open routes: a failed login or a spent refresh token is unauthenticated.
            var codes = ["400", "401", "404", "405", "409", "422", "429", "500", "503", "504"]
            if r.requestBody { codes += ["413", "415"] }
            let guarded = r.access != .anyone || r.doc.guardedAs != nil
            if guarded || r.doc.errorMedia != nil { codes += ["403"] }
            if r.path == "/readyz" { responses["503"] = ["description": "Not ready", "content": ["application/json": ["schema": ["type": "object"]]]] }
            for c in codes where responses[c] == nil { responses[c] = err }
            op["responses"] = .object(responses)
            // HTML pages also take the dashboard's session cookie (and send browsers without one to
            // sign in), so a missing Authorization header alone is not a 401 there.
            if guarded { op["security"] = r.doc.redirects ? [["bearerAuth": []], ["adminSession": []]] : [["bearerAuth": []]] }
            op["x-access"] = .string((r.doc.guardedAs ?? r.access).rawValue)
            var item = paths[r.path]?.objectValue ?? [:]
            item[r.method.lowercased()] = .object(op)
            paths[r.path] = .object(item)
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": "OOPS API", "version": "0.1.0", "description": "Shipping platform backend: accounts, KYC, wallet, orders."],
            "paths": .object(paths),
            "webhooks": [
                "orderEvent": ["post": [
                    "summary": "An order's status or tracking status changed (sent to the merchant's registered endpoint)",
                    "description": .string("Headers: `OOPS-Event-Id: <id>` and `OOPS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>`. "
                        + "Any 2xx acknowledges; anything else is retried with exponential backoff. At least once, in order per order."),
                    "parameters": [
                        ["name": "OOPS-Signature", "in": "header", "required": true, "schema": ["type": "string"]],
                        ["name": "OOPS-Event-Id", "in": "header", "required": true, "schema": ["type": "string"]],
                    ],
                    "requestBody": ["required": true, "content": ["application/json": ["schema": ["$ref": "#/components/schemas/WebhookEvent"]]]],
                    "responses": ["2XX": ["description": "Received"]],
                ]],
            ],
            "components": [
                "schemas": ["Error": errorSchema, "WebhookEvent": webhookEventSchema],
                "securitySchemes": [
                    "bearerAuth": ["type": "http", "scheme": "bearer", "bearerFormat": "JWT"],
                    "adminSession": ["type": "apiKey", "in": "cookie", "name": "oops_admin_session"],
                ],
            ],
        ]
    }

    static func operationId(_ r: Route) -> String {
        let words = r.path.split(separator: "/").map { s -> String in
            s.hasPrefix("{") ? "By" + s.dropFirst().dropLast().capitalized : s.replacingOccurrences(of: ".", with: "_").capitalized
        }
        return r.method.lowercased() + words.joined()
    }
}
