import Foundation
import JSON
import RPC
import Runtime

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

    static func bodySchema(_ g: Gateway, _ route: Route) -> JSON {
        guard let rpc = route.rpc, let doc = discover(g, rpc.service),
              let m = doc["methods"]?.arrayValue?.first(where: { $0["name"]?.stringValue == rpc.method })
        else { return ["type": "object"] }
        var props: [String: JSON] = [:]
        var required: [JSON] = []
        let injected: Set<String> = ["ctx", "clientAddress", "idempotencyKey", "userId", "orderId"]
        for p in m["params"]?.arrayValue ?? [] {
            guard let n = p["name"]?.stringValue, !injected.contains(n) else { continue }
            props[n] = p["schema"] ?? .object([:])
            if p["required"] == true { required.append(.string(n)) }
        }
        var s: [String: JSON] = ["type": "object", "properties": .object(props)]
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

    static func document(_ g: Gateway) -> JSON {
        var paths: [String: JSON] = [:]
        for r in g.router.routes {
            var op: [String: JSON] = ["summary": .string(r.summary), "operationId": .string(operationId(r))]
            var params: [JSON] = []
            for seg in r.segments where seg.hasPrefix("{") {
                let n = String(seg.dropFirst().dropLast())
                params.append(["name": .string(n), "in": "path", "required": true, "schema": ["type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"]])
            }
            for q in r.queryParams {
                params.append(["name": .string(q), "in": "query", "required": false, "schema": q == "limit" ? ["type": "integer", "minimum": 1, "maximum": 100] : ["type": "string"]])
            }
            if r.path == "/wallet/topup" {
                params.append(["name": "Idempotency-Key", "in": "header", "required": true, "schema": ["type": "string", "minLength": 1, "maxLength": 128]])
            }
            if !params.isEmpty { op["parameters"] = .array(params) }
            if r.requestBody {
                op["requestBody"] = ["required": true, "content": ["application/json": ["schema": bodySchema(g, r)]]]
            }
            var responses: [String: JSON] = [:]
            let ok: JSON = r.successStatus == 204 ? ["description": "Done"] :
                (r.path == "/metrics" ? ["description": "Prometheus text", "content": ["text/plain": ["schema": ["type": "string"]]]] :
                    ["description": "Success", "content": ["application/json": ["schema": ["type": "object"]]]])
            responses[String(r.successStatus)] = ok
            if r.path == "/orders/create" || r.path == "/wallet/topup" { responses["200"] = ["description": "Replay of an earlier request", "content": ["application/json": ["schema": ["type": "object"]]]] }
            let err: JSON = ["description": "Error", "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]]
            var codes = ["400", "404", "405", "429", "500", "503", "504"]
            if r.requestBody { codes += ["413", "415", "422", "409"] } else { codes += ["422", "409"] }
            if r.access != .anyone { codes += ["401", "403"] }
            if r.path == "/readyz" { responses["503"] = ["description": "Not ready", "content": ["application/json": ["schema": ["type": "object"]]]] }
            for c in codes where responses[c] == nil { responses[c] = err }
            op["responses"] = .object(responses)
            if r.access != .anyone { op["security"] = [["bearerAuth": []]] }
            op["x-access"] = .string(r.access.rawValue)
            var item = paths[r.path]?.objectValue ?? [:]
            item[r.method.lowercased()] = .object(op)
            paths[r.path] = .object(item)
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": "OOPS API", "version": "0.1.0", "description": "Shipping platform backend: accounts, KYC, wallet, orders."],
            "paths": .object(paths),
            "components": [
                "schemas": ["Error": errorSchema],
                "securitySchemes": ["bearerAuth": ["type": "http", "scheme": "bearer", "bearerFormat": "JWT"]],
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
