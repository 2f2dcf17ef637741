import Foundation
import JSON
import RPC
import Domain

/// The dashboard's order pages: find an order by its id, the merchant's `clientOrderId` or the
/// AWB (`orders.find`), and read its timeline (`orders.timeline`, with provider bodies, as an admin).
extension Dashboard {
    static func orderRoutes(_ g: Gateway) -> [Route] {
        [
            Route("GET", "/admin/queues/orders", .anyone, "Find an order by id, clientOrderId or AWB (HTML)", query: ["q"]) { rc throws(RPCError) in
                htmlPage(g, rc) { u throws(RPCError) in try orderSearchPage(g, rc, u) }
            },
            Route("GET", "/admin/queues/orders/{id}/timeline", .anyone, "Every event of one order in time order (HTML)") { rc throws(RPCError) in
                htmlPage(g, rc) { u throws(RPCError) in try timelinePage(g, rc, u) }
            },
        ]
    }

    static func searchForm(_ q: String = "") -> String {
        "<form method=\"get\" action=\"/admin/queues/orders\" class=\"inline search\"><label>Find an order "
            + "<input type=\"search\" name=\"q\" value=\"\(H.h(q))\" maxlength=\"64\" placeholder=\"order id, clientOrderId or AWB\" required></label> "
            + "<button type=\"submit\" class=\"primary\">Find</button></form>"
    }

    static func orderSearchPage(_ g: Gateway, _ rc: RouteContext, _ u: User) throws(RPCError) -> RouteResult {
        let q = (rc.query("q") ?? "").trimmingCharacters(in: .whitespaces)
        var c = chrome("Find an order", u, rc)
        c.crumbs = [("Queues", "/admin/queues"), ("orders", nil)]
        var s = "<h1>Find an order</h1>" + searchForm(q)
        if !q.isEmpty {
            guard q.count <= 64 else { return errorPage(400, "Bad search", "A search is at most 64 characters.", user: u) }
            let items = try g.client(ServiceName.order).call("orders.find", ["q": .string(q)], ctx: u.ctx)["items"]?.arrayValue ?? []
            if items.isEmpty {
                s += "<div class=\"card\"><p class=\"muted\" data-no-orders>No order has that id, clientOrderId or AWB.</p></div>"
            } else {
                s += "<div class=\"table-wrap\"><table class=\"jobs\" data-orders><thead><tr><th>Order</th><th>Client order id</th><th>Merchant</th>"
                    + "<th>Status</th><th>Tracking</th><th>AWB</th><th>Created</th></tr></thead><tbody>"
                for o in items {
                    let id = o["id"]?.stringValue ?? ""
                    s += "<tr data-order=\"\(H.h(id))\"><td><a href=\"/admin/queues/orders/\(H.u(id))/timeline\">\(H.h(id))</a></td>"
                        + "<td>\(H.h(o["clientOrderId"]?.stringValue ?? ""))</td><td>\(H.h(o["userId"]?.stringValue ?? ""))</td>"
                        + "<td><span class=\"badge\">\(H.h(o["status"]?.stringValue ?? ""))</span></td>"
                        + "<td>\(H.h(o["trackingStatus"]?.stringValue ?? "—"))</td><td>\(H.h(o["awbNumber"]?.stringValue ?? "—"))</td>"
                        + "<td>\(H.h(o["createdAt"]?.stringValue ?? ""))</td></tr>"
                }
                s += "</tbody></table></div>"
            }
        }
        return html(200, H.page(c, s))
    }

    static func timelinePage(_ g: Gateway, _ rc: RouteContext, _ u: User) throws(RPCError) -> RouteResult {
        let id = rc.pathParams["id"]!
        let t = try g.client(ServiceName.order).call("orders.timeline", ["orderId": .string(id)], ctx: u.ctx)
        var c = chrome("Timeline · \(id)", u, rc)
        c.crumbs = [("Queues", "/admin/queues"), ("orders", "/admin/queues/orders"), ("order \(id)", nil), ("timeline", nil)]
        var s = "<h1>Timeline of order \(H.h(id))</h1>" + orderFacts(g, u, id)
        if let missing = t["incomplete"]?.arrayValue, !missing.isEmpty {
            s += "<div class=\"alert\" role=\"alert\">Incomplete: \(H.h(missing.compactMap(\.stringValue).joined(separator: ", "))) could not be read.</div>"
        }
        s += "<div class=\"table-wrap\"><table class=\"jobs\" data-timeline><thead><tr><th>When</th><th>Event</th><th>What</th><th>Details</th></tr></thead><tbody>"
        for e in t["events"]?.arrayValue ?? [] {
            let type = e["type"]?.stringValue ?? ""
            var what = ""
            var details: JSON = .null
            switch type {
            case "created", "status": what = (e["status"]?.stringValue ?? "") + (e["note"]?.stringValue.map { " · " + $0 } ?? "")
            case "tracking": what = (e["trackingStatus"]?.stringValue ?? "unmapped") + " · \(e["providerCode"]?.intValue ?? 0) \(e["providerTitle"]?.stringValue ?? "")"
            case "charge", "refund": what = "₹" + String(format: "%.2f", Double(e["amountPaise"]?.intValue ?? 0) / 100)
            case "job_added", "job_finished":
                what = "\(e["queue"]?.stringValue ?? "") · \(e["jobId"]?.stringValue ?? "")" + (e["state"]?.stringValue.map { " · " + $0 } ?? "")
                if let r = e["failedReason"]?.stringValue { what += " · " + r }
            case "provider_call":
                what = "\(e["operation"]?.stringValue ?? "") · \(e["outcome"]?.stringValue ?? "")"
                    + (e["httpStatus"]?.intValue.map { " · HTTP \($0)" } ?? "") + (e["durationMs"]?.intValue.map { " · \(H.duration($0))" } ?? "")
                var d: [String: JSON] = [:]
                for k in ["url", "requestBody", "responseBody", "error", "message"] where e[k] != nil && e[k] != .null { d[k] = e[k] }
                if !d.isEmpty { details = .object(d) }
            default: break
            }
            s += "<tr data-event=\"\(H.h(type))\"><td>\(H.h(e["at"]?.stringValue ?? ""))</td><td><span class=\"badge\">\(H.h(type))</span></td>"
                + "<td>\(H.h(what))</td><td>\(details == .null ? "" : "<details><summary>bodies</summary>\(H.pre(details))</details>")</td></tr>"
        }
        s += "</tbody></table></div>"
        return html(200, H.page(c, s))
    }
}
