import Foundation
import JSON
import RPC
import Runtime
import Domain
import Queue
import HTTPServer

/// The queue dashboard at /admin/queues (docs/dashboard.md): server-rendered HTML with a little
/// plain JavaScript, Bull Board's features over ParcelXSvc's `queues.*` methods. Admins only,
/// by bearer token (scripts) or by the session cookie of `/admin/login` (browsers).
enum Dashboard {
    static let queues = QueueNames.all
    static let states = JobState.shown.map(\.rawValue)
    static let cleanable = JobState.cleanable.map(\.rawValue)
    static let pageSize = 20
    /// Pages of a job list: 1 up to the last one `queues.jobs` can reach. A `page` outside them
    /// (or not a number) is a 400, on the HTML list as on its JSON twin.
    static let pages: ClosedRange<Int64> = 1...(Paging.maxJobOffset / Int64(pageSize) + 1)

    /// The `page` query parameter of a job list (1 when absent).
    static func pageParam(_ rc: RouteContext) throws(RPCError) -> Int64 {
        try RequestInt.parse(rc.query("page"), name: "page", in: pages, default: 1)
    }

    typealias H = DashboardHTML

    /// A verified admin on a dashboard request.
    struct User {
        let actor: Actor
        let token: String
        let viaCookie: Bool
        let csrf: String
        let ctx: RPCContext
    }

    static func routes(_ g: Gateway) -> [Route] {
        // Specific paths first: the router takes the first template that matches, and
        // /admin/queues/{queue}/{state} would also match /admin/queues/api/overview.
        [
            Route("GET", "/admin/login", .anyone, "Dashboard sign-in page (HTML)", query: ["next"]) { rc throws(RPCError) in
                if case .admin = DashboardSession.verdict(g, rc.request) { return redirect(safeNext(rc.query("next"))) }
                return html(200, loginPage(next: safeNext(rc.query("next")), message: rc.query("done") == "signed-out" ? ("Signed out.", false) : nil))
            },
            Route("POST", "/admin/login", .anyone, "Dashboard sign-in: sets the admin session cookie") { rc throws(RPCError) in
                login(g, rc)
            },
            Route("POST", "/admin/logout", .anyone, "Dashboard sign-out: clears the session cookie") { rc throws(RPCError) in
                logout(g, rc)
            },
            Route("GET", "/admin/queues/assets/app.js", .anyone, "Dashboard script", inline: true) { _ throws(RPCError) in
                asset(DashboardAssets.js, type: "text/javascript; charset=utf-8")
            },
            Route("GET", "/admin/queues/assets/app.css", .anyone, "Dashboard style sheet", inline: true) { _ throws(RPCError) in
                asset(DashboardAssets.css, type: "text/css; charset=utf-8")
            },
            Route("GET", "/admin/queues/api/overview", .anyone, "Every queue: counts per state and the paused flag (JSON)") { rc throws(RPCError) in
                let u = try apiUser(g, rc)
                return api(["queues": try overview(g, u), "at": .int(Clock.wallMillis())])
            },
            Route("GET", "/admin/queues/api/{queue}/{state}", .anyone, "Jobs in one state, newest first (JSON)", query: ["page"]) { rc throws(RPCError) in
                let u = try apiUser(g, rc)
                let (q, st) = (rc.pathParams["queue"]!, rc.pathParams["state"]!)
                guard queues.contains(q), states.contains(st) else { throw RPCError.notFound("No such queue or state") }
                return api(try jobs(g, u, queue: q, state: st, page: try pageParam(rc)))
            },
            Route("GET", "/admin/queues/api/{queue}/jobs/{jobId}", .anyone, "One job with everything (JSON)") { rc throws(RPCError) in
                let u = try apiUser(g, rc)
                let q = rc.pathParams["queue"]!
                guard queues.contains(q) else { throw RPCError.notFound("No such queue") }
                return api(try g.client(ServiceName.parcelx).call("queues.job", ["queue": .string(q), "jobId": .string(rc.pathParams["jobId"]!)], ctx: u.ctx))
            },
        ] + orderRoutes(g) + [
            Route("GET", "/admin/queues/orders/{id}/provider-logs", .anyone, "Every ParcelX call of an order (HTML)") { rc throws(RPCError) in
                htmlPage(g, rc) { u throws(RPCError) in try providerLogsPage(g, rc, u) }
            },
            Route("GET", "/admin/queues", .anyone, "The queue dashboard (HTML)") { rc throws(RPCError) in
                htmlPage(g, rc) { u throws(RPCError) in try overviewPage(g, rc, u) }
            },
            Route("GET", "/admin/queues/{queue}/{state}", .anyone, "The jobs of one state, newest first (HTML)", query: ["page"]) { rc throws(RPCError) in
                // Checked before the session: a bad `page` is a 400 (JSON, like every refusal
                // of the Gateway), not a detour through the sign-in page.
                let page = try pageParam(rc)
                return htmlPage(g, rc) { u throws(RPCError) in try listPage(g, rc, u, page: page) }
            },
            Route("GET", "/admin/queues/{queue}/jobs/{jobId}", .anyone, "One job (HTML)") { rc throws(RPCError) in
                htmlPage(g, rc) { u throws(RPCError) in try jobPage(g, rc, u) }
            },
            Route("POST", "/admin/queues/{queue}/jobs/{jobId}/{action}", .anyone, "Retry, promote or remove one job (form; CSRF token)") { rc throws(RPCError) in
                act(g, rc)
            },
            Route("POST", "/admin/queues/{queue}/actions/{action}", .anyone, "Retry all failed, clean, pause or resume a queue (form; CSRF token)") { rc throws(RPCError) in
                act(g, rc)
            },
        ]
    }

    // MARK: - responses

    static func raw(_ r: HTTPResponse) -> RouteResult {
        var res = RouteResult(status: r.status, body: nil)
        var x = r
        x.headers += H.securityHeaders
        res.raw = x
        return res
    }

    static func html(_ status: Int, _ text: String, headers: [(String, String)] = []) -> RouteResult {
        raw(.html(status, text, headers: headers))
    }

    static func redirect(_ location: String, headers: [(String, String)] = []) -> RouteResult {
        raw(HTTPResponse(status: 303, headers: [("Location", location)] + headers))
    }

    static func api(_ body: JSON) -> RouteResult {
        raw(.json(200, body.serializedBytes()))
    }

    static func asset(_ text: String, type: String) -> RouteResult {
        var r = raw(HTTPResponse(status: 200, headers: [("Content-Type", type)], body: Array(text.utf8)))
        // The assets are public and change only with a deploy; a short cache keeps polling pages cheap.
        r.raw!.headers = r.raw!.headers.map { $0.0 == "Cache-Control" ? ("Cache-Control", "public, max-age=300") : $0 }
        return r
    }

    static func errorPage(_ status: Int, _ title: String, _ message: String, user: User? = nil) -> RouteResult {
        var c = H.Chrome(title: title, user: user?.actor.userId, csrf: user?.csrf)
        c.crumbs = [("Queues", "/admin/queues")]
        let login = status == 401 ? " <a href=\"/admin/login\">Sign in</a>." : ""
        return html(status, H.page(c, "<div class=\"card\"><h1>\(H.h(title))</h1><p>\(H.h(message))\(login)</p></div>"))
    }

    // MARK: - who is asking

    static func user(_ g: Gateway, _ rc: RouteContext, _ a: Actor, token: String, viaCookie: Bool) -> User {
        User(actor: a, token: token, viaCookie: viaCookie, csrf: DashboardSession.csrfToken(g, sessionToken: token),
             ctx: RPCContext(requestId: rc.requestId, actor: a, deadline: rc.ctx.deadline))
    }

    /// JSON routes: 401 and 403 as JSON errors, like the rest of the API.
    static func apiUser(_ g: Gateway, _ rc: RouteContext) throws(RPCError) -> User {
        switch DashboardSession.verdict(g, rc.request) {
        case .anonymous: throw RPCError.unauthenticated("An admin bearer token or dashboard session is required")
        case .forbidden: throw RPCError.forbidden("The queue dashboard is for admins")
        case .unavailable: throw RPCError.unavailable("Dashboard sessions are unavailable (Redis); try again")
        case .admin(let a, let t, let c):
            if let wait = g.userLimiter.take(a.userId) { throw RPCError.rateLimited(retryAfterSeconds: wait) }
            return user(g, rc, a, token: t, viaCookie: c)
        }
    }

    /// HTML routes: anonymous browsers go to the sign-in page and come back afterwards.
    static func htmlPage(_ g: Gateway, _ rc: RouteContext, _ body: (User) throws(RPCError) -> RouteResult) -> RouteResult {
        switch DashboardSession.verdict(g, rc.request) {
        case .anonymous:
            var here = rc.request.path
            if let p = rc.query("page") { here += "?page=\(H.u(p))" }
            return redirect("/admin/login?next=\(H.u(here))")
        case .forbidden:
            return errorPage(403, "Admins only", "The queue dashboard is for administrators. Your account cannot see queue data.")
        case .unavailable:
            return sessionsUnavailable()
        case .admin(let a, let t, let c):
            let u = user(g, rc, a, token: t, viaCookie: c)
            if let wait = g.userLimiter.take(a.userId) {
                var r = errorPage(429, "Slow down", "Too many requests; try again in \(wait) s.", user: u)
                r.raw!.headers.append(("Retry-After", String(wait)))
                return r
            }
            do { return try body(u) } catch {
                let status = ErrorMapping.status(for: error.code)
                let msg = status == 404 ? "No such queue, state or job (it may have been removed)."
                    : status >= 500 ? "A service the dashboard needs is unavailable: \(error.code == ErrorCode.internalError.rawValue ? "internal error" : error.message)."
                    : error.message
                return errorPage(status, status == 404 ? "Not found" : "Something went wrong", msg, user: u)
            }
        }
    }

    /// The session store (Redis) did not answer: say so, rather than sign the admin out.
    static func sessionsUnavailable() -> RouteResult {
        var r = errorPage(503, "Unavailable", "Dashboard sessions are kept in Redis, which is not answering. Try again shortly.")
        r.raw!.headers.append(("Retry-After", "1"))
        return r
    }

    /// Where to go after signing in: only pages of the dashboard itself, so the parameter cannot
    /// send an admin to another site.
    static func safeNext(_ next: String?) -> String {
        guard let n = next, n.hasPrefix("/admin/queues"), n.count < 300, !n.contains("//"), !n.contains("\\"),
              n.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F })
        else { return "/admin/queues" }
        return n
    }

    // MARK: - data

    static func overview(_ g: Gateway, _ u: User) throws(RPCError) -> JSON {
        try g.client(ServiceName.parcelx).call("queues.overview", .object([:]), ctx: u.ctx)
    }

    /// One page of a job list; `page` is within `pages`, so the offset cannot overflow.
    static func jobs(_ g: Gateway, _ u: User, queue: String, state: String, page: Int64) throws(RPCError) -> JSON {
        try g.client(ServiceName.parcelx).call("queues.jobs", ["queue": .string(queue), "state": .string(state),
                                                               "offset": .int((page - 1) * Int64(pageSize)), "limit": .int(Int64(pageSize))], ctx: u.ctx)
    }

    static func count(_ ov: JSON, _ queue: String, _ state: String) -> Int64 {
        ov.arrayValue?.first { $0["name"]?.stringValue == queue }?["counts"]?[state]?.intValue ?? 0
    }

    static func isPaused(_ ov: JSON, _ queue: String) -> Bool {
        ov.arrayValue?.first { $0["name"]?.stringValue == queue }?["paused"]?.boolValue ?? false
    }

    // MARK: - pages

    static func chrome(_ title: String, _ u: User, _ rc: RouteContext) -> H.Chrome {
        var c = H.Chrome(title: title, user: u.actor.userId, csrf: u.csrf)
        c.flash = flash(rc)
        c.bodyData = [("poll-counts", "1")]
        return c
    }

    static func countTiles(_ ov: JSON, _ q: String, current: String? = nil) -> String {
        "<div class=\"counts\">" + states.map { st in
            "<a class=\"s-\(st)\(st == current ? " current" : "")\" href=\"/admin/queues/\(H.u(q))/\(st)\">"
                + "<span class=\"n\" data-count=\"\(H.h(q)):\(st)\">\(count(ov, q, st))</span><span class=\"label\">\(st)</span></a>"
        }.joined() + "</div>"
    }

    static func pauseBadge(_ ov: JSON, _ q: String) -> String {
        "<span class=\"badge paused\" data-paused=\"\(H.h(q))\"\(isPaused(ov, q) ? "" : " hidden")>paused</span>"
    }

    static func pauseForms(_ ov: JSON, _ q: String, _ u: User, back: String) -> String {
        let paused = isPaused(ov, q)
        return "<span data-running=\"\(H.h(q))\"\(paused ? " hidden" : "")>"
            + H.actionForm("/admin/queues/\(H.u(q))/actions/pause", label: "Pause", confirm: "Pause \(q)? Workers take no new jobs until it is resumed.", csrf: u.csrf, back: back)
            + "</span><span data-paused=\"\(H.h(q))\"\(paused ? "" : " hidden")>"
            + H.actionForm("/admin/queues/\(H.u(q))/actions/resume", label: "Resume", confirm: "Resume \(q)?", csrf: u.csrf, back: back)
            + "</span>"
    }

    static func cleanForm(_ q: String, _ u: User, back: String, state: String? = nil) -> String {
        let options = cleanable.map { "<option value=\"\($0)\"\($0 == (state ?? "completed") ? " selected" : "")>\($0)</option>" }.joined()
        return "<form method=\"post\" action=\"/admin/queues/\(H.u(q))/actions/clean\" class=\"inline\" "
            + "data-confirm=\"Remove {state} jobs of \(H.h(q)) older than {age} {unit} for good?\">"
            + H.csrfField(u.csrf) + "<input type=\"hidden\" name=\"back\" value=\"\(H.h(back))\">"
            + "<button type=\"submit\" class=\"danger\">Clean</button> <select name=\"state\" aria-label=\"state\">\(options)</select>"
            + " older than <input type=\"number\" name=\"age\" min=\"0\" value=\"1\" aria-label=\"age\">"
            + " <select name=\"unit\" aria-label=\"unit\"><option value=\"minutes\">minutes</option><option value=\"hours\">hours</option>"
            + "<option value=\"days\" selected>days</option></select></form>"
    }

    static func overviewPage(_ g: Gateway, _ rc: RouteContext, _ u: User) throws(RPCError) -> RouteResult {
        let ov = try overview(g, u)
        var s = "<h1>Queues <span class=\"muted\" data-updated>updated \(H.h(Clock.nowISO()))</span></h1>\n" + searchForm() + "\n"
        // The failed-job spike alert, as ParcelXSvc reports it.
        let alerts = (try? g.client(ServiceName.parcelx).call("queues.alerts", .object([:]), ctx: u.ctx))?.arrayValue ?? []
        for a in alerts where a["firing"] == true {
            s += "<div class=\"alert\" role=\"alert\" data-alert=\"\(H.h(a["name"]?.stringValue ?? "alert"))\"><strong>Alert: failed-job spike.</strong> "
                + "\(a["failuresInWindow"]?.intValue ?? 0) failed job attempts in the last \(a["windowSeconds"]?.intValue ?? 0) s "
                + "(threshold \(a["threshold"]?.intValue ?? 0))\(a["since"]?.stringValue.map { ", since " + H.h($0) } ?? ""). "
                + "See the failed jobs below and the provider logs.</div>\n"
        }
        // The provider gate of a ParcelXSvc instance: calls in flight, held back, breaker, latency.
        if let p = try? g.client(ServiceName.parcelx).call("parcelx.provider", .object([:]), ctx: u.ctx) {
            let breaker = p["breaker"]?.stringValue ?? "?"
            func ms(_ k: String) -> String { String(format: "%.0f ms", (p["latencySeconds"]?[k]?.doubleValue ?? 0) * 1000) }
            s += "<section class=\"card\" id=\"provider\" data-provider-breaker=\"\(H.h(breaker))\"><header><h2>Provider (ParcelX)</h2></header><dl>"
            s += "<dt>Breaker</dt><dd>\(H.h(breaker))</dd>"
            s += "<dt>Calls in flight</dt><dd data-provider-in-flight>\(p["inFlight"]?.intValue ?? 0)</dd>"
            s += "<dt>Calls held back</dt><dd>\(p["waiting"]?.intValue ?? 0)\((p["pausedForMs"]?.intValue ?? 0) > 0 ? " (paused by Retry-After)" : "")</dd>"
            s += "<dt>Latency p50 / p90 / p99</dt><dd>\(ms("p50")) / \(ms("p90")) / \(ms("p99"))</dd></dl>"
            s += "<figure class=\"chart\">" + latencyCharts(g, u) + "<figcaption class=\"muted\">Provider latency p50 (green), p90 (amber), "
                + "p99 (red) over the latest answers, sampled each minute with calls</figcaption></figure></section>\n"
        }
        for q in queues {
            s += "<section class=\"card\" id=\"\(H.h(q))\"><header><h2><a href=\"/admin/queues/\(H.u(q))/waiting\">\(H.h(q))</a></h2>"
            s += pauseBadge(ov, q) + "<span class=\"spacer\"></span>" + pauseForms(ov, q, u, back: "/admin/queues") + "</header>"
            s += countTiles(ov, q)
            s += "<figure class=\"chart\">" + queueChart(g, u, q) + "<figcaption class=\"muted\">Completed (green) and failed (red) jobs per minute, "
                + "the last \(chartMinutes) minutes</figcaption></figure>"
            s += "<div class=\"actions\">"
            s += H.actionForm("/admin/queues/\(H.u(q))/actions/retry-all", label: "Retry all failed", confirm: "Retry every failed job of \(q)?", csrf: u.csrf, back: "/admin/queues")
            s += cleanForm(q, u, back: "/admin/queues")
            s += "</div></section>\n"
        }
        return html(200, H.page(chrome("Queues", u, rc), s))
    }

    static func listPage(_ g: Gateway, _ rc: RouteContext, _ u: User, page: Int64) throws(RPCError) -> RouteResult {
        let (q, st) = (rc.pathParams["queue"]!, rc.pathParams["state"]!)
        guard queues.contains(q), states.contains(st) else { throw RPCError.notFound("No such queue or state") }
        let ov = try overview(g, u)
        let list = try jobs(g, u, queue: q, state: st, page: page)
        let total = max(count(ov, q, st), 0)
        let pages = max(total / Int64(pageSize) + (total % Int64(pageSize) == 0 ? 0 : 1), 1)
        let here = "/admin/queues/\(H.u(q))/\(st)" + (page > 1 ? "?page=\(page)" : "")
        var c = chrome("\(st) · \(q)", u, rc)
        c.crumbs = [("Queues", "/admin/queues"), (q, "/admin/queues#\(q)"), (st, nil)]
        var s = "<h1>\(H.h(q)) \(pauseBadge(ov, q)) <span class=\"muted\" data-updated></span></h1>\n"
        s += "<section class=\"card\">" + countTiles(ov, q, current: st)
        s += "<div class=\"actions\">" + pauseForms(ov, q, u, back: here)
        if st == "failed" {
            s += H.actionForm("/admin/queues/\(H.u(q))/actions/retry-all", label: "Retry all failed", confirm: "Retry every failed job of \(q)?", csrf: u.csrf, back: here)
        }
        if cleanable.contains(st) { s += cleanForm(q, u, back: here, state: st) }
        s += "</div></section>\n"
        let rows = list["jobs"]?.arrayValue ?? []
        if rows.isEmpty {
            s += "<div class=\"card\"><p class=\"muted\">No \(st) jobs\(page > 1 ? " on this page" : "").</p></div>"
        } else {
            let now = Clock.wallMillis()
            s += "<div class=\"table-wrap\"><table class=\"jobs\"><thead><tr><th>Job</th><th>Name</th><th>Attempts</th><th>Created</th><th>Finished</th><th>Failure reason</th></tr></thead><tbody>\n"
            for j in rows {
                let id = j["id"]?.stringValue ?? ""
                s += "<tr><td><a href=\"/admin/queues/\(H.u(q))/jobs/\(H.u(id))\">\(H.h(id))</a></td>"
                s += "<td>\(H.h(j["name"]?.stringValue ?? ""))</td>"
                s += "<td>\(j["attemptsMade"]?.intValue ?? 0) / \(j["attempts"]?.intValue.map(String.init) ?? "—")</td>"
                s += "<td>\(H.time(j["timestamp"]?.intValue, now: now))</td>"
                s += "<td>\(H.time(j["finishedOn"]?.intValue, now: now))</td>"
                let reason = j["failedReason"]?.stringValue ?? ""
                let short = reason.count > 160 ? String(reason.prefix(160)) + "…" : reason
                s += "<td class=\"reason\" title=\"\(H.h(reason))\">\(H.h(short))</td></tr>\n"
            }
            s += "</tbody></table></div>\n"
        }
        s += "<nav class=\"pager\">"
        s += page > 1 ? "<a href=\"/admin/queues/\(H.u(q))/\(st)?page=\(page - 1)\" rel=\"prev\">← Newer</a>" : "<span class=\"muted\">← Newer</span>"
        s += "<span>Page \(page) of \(pages) · \(total) jobs</span>"
        s += page < pages ? "<a href=\"/admin/queues/\(H.u(q))/\(st)?page=\(page + 1)\" rel=\"next\">Older →</a>" : "<span class=\"muted\">Older →</span>"
        s += "</nav>"
        return html(200, H.page(c, s))
    }

    static func jobPage(_ g: Gateway, _ rc: RouteContext, _ u: User) throws(RPCError) -> RouteResult {
        let (q, id) = (rc.pathParams["queue"]!, rc.pathParams["jobId"]!)
        guard queues.contains(q) else { throw RPCError.notFound("No such queue") }
        let j = try g.client(ServiceName.parcelx).call("queues.job", ["queue": .string(q), "jobId": .string(id)], ctx: u.ctx)
        let state = j["state"]?.stringValue ?? "unknown"
        let here = "/admin/queues/\(H.u(q))/jobs/\(H.u(id))"
        let now = Clock.wallMillis()
        var c = chrome("Job \(id)", u, rc)
        c.bodyData = [("poll-job", "/admin/queues/api/\(H.u(q))/jobs/\(H.u(id))")]
        c.crumbs = [("Queues", "/admin/queues"), (q, "/admin/queues#\(q)"), (state, "/admin/queues/\(H.u(q))/\(H.u(state))"), (id, nil)]

        var s = "<h1>Job \(H.h(id)) <span class=\"badge \(H.h(state))\" data-job-state=\"\(H.h(state))\">\(H.h(state))</span></h1>\n"
        s += "<div class=\"actions\">"
        if state == "failed" {
            s += H.actionForm(here + "/retry", label: "Retry", confirm: "Retry job \(id)?", csrf: u.csrf, back: here)
        }
        if state == "delayed" {
            s += H.actionForm(here + "/promote", label: "Promote (run now)", confirm: "Run delayed job \(id) now?", csrf: u.csrf, back: here)
        }
        if state != "active" {
            s += H.actionForm(here + "/remove", label: "Remove", confirm: "Remove job \(id) for good?", csrf: u.csrf,
                              back: "/admin/queues/\(H.u(q))/\(H.u(state))", danger: true)
        }
        s += "</div>\n"

        // Facts.
        let ts = j["timestamp"]?.intValue, started = j["processedOn"]?.intValue, finished = j["finishedOn"]?.intValue
        let delay = j["delay"]?.intValue ?? 0
        s += "<section class=\"card\"><dl class=\"facts\">"
        s += "<dt>Name</dt><dd>\(H.h(j["name"]?.stringValue ?? ""))</dd>"
        s += "<dt>Queue</dt><dd><a href=\"/admin/queues#\(H.h(q))\">\(H.h(q))</a></dd>"
        s += "<dt>Attempts</dt><dd><span data-job-attempts>\(j["attemptsMade"]?.intValue ?? 0)</span> made of \(j["attempts"]?.intValue.map(String.init) ?? "1") allowed</dd>"
        s += "<dt>Created</dt><dd>\(H.time(ts, now: now))</dd>"
        if delay > 0 { s += "<dt>Delay</dt><dd>\(H.duration(delay))</dd>" }
        s += "<dt>Last started</dt><dd>\(H.time(started, now: now))"
        if let w = H.span(from: ts, to: started, minus: delay) { s += " <span class=\"muted\">· waited \(H.duration(w))</span>" }
        s += "</dd><dt>Finished</dt><dd>\(H.time(finished, now: now))"
        if let r = H.span(from: started, to: finished) { s += " <span class=\"muted\">· ran \(H.duration(r))</span>" }
        if let r = H.span(from: ts, to: finished) { s += " <span class=\"muted\">· \(H.duration(r)) after creation</span>" }
        s += "</dd>"
        if let p = j["processedBy"]?.stringValue { s += "<dt>Processed by</dt><dd>\(H.h(p))</dd>" }
        if let pr = j["priority"]?.intValue, pr > 0 { s += "<dt>Priority</dt><dd>\(pr)</dd>" }
        s += "</dl></section>\n"

        // The order the job works for.
        if let orderId = j["data"]?["orderId"]?.stringValue {
            s += "<section class=\"card\"><h2>Order</h2>" + orderFacts(g, u, orderId) + "</section>\n"
        }

        let reason = j["failedReason"]?.stringValue
        if let r = reason, !r.isEmpty {
            s += "<h3>Failure reason</h3><pre class=\"error\" data-failed-reason>\(H.h(r))</pre>"
        }
        let trace = j["stacktrace"]?.arrayValue?.compactMap { $0.stringValue } ?? []
        if !trace.isEmpty {
            s += "<h3>Stack trace</h3><pre class=\"error\">\(H.h(trace.reversed().joined(separator: "\n\n")))</pre>"
        }
        s += "<h3>Return value</h3>" + H.pre(j["returnvalue"])
        s += "<div class=\"grid2\"><div><h3>Data</h3>\(H.pre(j["data"]))</div><div><h3>Options</h3>\(H.pre(j["opts"]))</div></div>"
        let logs = j["logs"]?.arrayValue?.compactMap { $0.stringValue } ?? []
        s += "<h3>Logs</h3>"
        s += logs.isEmpty ? "<p class=\"muted\">none</p>" : "<ol class=\"logs\">" + logs.map { "<li>\(H.h($0))</li>" }.joined() + "</ol>"
        if let p = j["progress"], !p.isNull, p != 0 { s += "<h3>Progress</h3>" + H.pre(p) }
        return html(200, H.page(c, s))
    }

    /// The order behind a job, so an admin sees whom the failure hurts without another tool.
    static func orderFacts(_ g: Gateway, _ u: User, _ orderId: String) -> String {
        let linkable = orderId.count <= 64 && orderId.utf8.allSatisfy { Router.idChar($0) }
        var s = "<dl class=\"facts\"><dt>Order id</dt><dd>\(H.h(orderId))</dd>"
        if linkable {
            s += "<dt>Timeline</dt><dd><a href=\"/admin/queues/orders/\(H.u(orderId))/timeline\" data-timeline-link>every event of the order</a></dd>"
            s += "<dt>Provider calls</dt><dd><a href=\"/admin/queues/orders/\(H.u(orderId))/provider-logs\">every request and response</a>"
                + " <span class=\"muted\">· JSON:</span> <a href=\"/admin/orders/\(H.u(orderId))/provider-logs\" data-provider-logs>"
                + "/admin/orders/\(H.h(orderId))/provider-logs</a></dd>"
        }
        if let o = try? g.client(ServiceName.order).call("orders.get", ["orderId": .string(orderId)], ctx: u.ctx) {
            let rows: [(String, String?)] = [
                ("Status", o["status"]?.stringValue), ("Provider sync", o["providerSyncStatus"]?.stringValue),
                ("Client order id", o["clientOrderId"]?.stringValue), ("Merchant", o["userId"]?.stringValue),
                ("Consignee", o["consignee"]?["name"]?.stringValue), ("AWB", o["awbNumber"]?.stringValue),
                ("Courier", o["courierName"]?.stringValue),
            ]
            for (k, v) in rows { if let v { s += "<dt>\(k)</dt><dd data-order-\(k.lowercased().replacingOccurrences(of: " ", with: "-"))>\(H.h(v))</dd>" } }
        } else {
            s += "<dt>Status</dt><dd class=\"muted\">the order could not be read</dd>"
        }
        return s + "</dl>"
    }

    /// The ParcelX audit log of one order, for browsers (the JSON route takes bearer tokens only).
    static func providerLogsPage(_ g: Gateway, _ rc: RouteContext, _ u: User) throws(RPCError) -> RouteResult {
        let id = rc.pathParams["id"]!
        let logs = try g.client(ServiceName.parcelx).call("parcelx.providerLogs", ["orderId": .string(id)], ctx: u.ctx)
        var c = chrome("Provider calls · \(id)", u, rc)
        c.bodyData = []
        c.crumbs = [("Queues", "/admin/queues"), ("order \(id)", nil), ("provider calls", nil)]
        var s = "<h1>Provider calls of order \(H.h(id))</h1>"
        s += "<p class=\"muted\">\(logs["requestCount"]?.intValue ?? 0) requests, \(logs["responseCount"]?.intValue ?? 0) responses, oldest first. "
            + "Secrets are redacted. <a href=\"/admin/orders/\(H.u(id))/provider-logs\">JSON</a></p>"
        let entries = logs["entries"]?.arrayValue ?? []
        if entries.isEmpty { s += "<div class=\"card\"><p class=\"muted\">No provider calls recorded for this order.</p></div>" }
        for e in entries {
            let q = e["request"] ?? .null, r = e["response"] ?? .null
            let outcome = r["outcome"]?.stringValue ?? (r.isNull ? "no response logged" : "")
            s += "<section class=\"card\"><header><h2>\(H.h(q["operation"]?.stringValue ?? "call"))</h2>"
            s += "<span class=\"badge \(outcome == "ok" || outcome == "success" ? "completed" : "failed")\">\(H.h(outcome))</span>"
            if let st = r["httpStatus"]?.intValue { s += "<span class=\"muted\">HTTP \(st)</span>" }
            if let d = r["durationMs"]?.intValue { s += "<span class=\"muted\">\(H.duration(d))</span>" }
            s += "<span class=\"spacer\"></span><span class=\"muted\">attempt \(q["attempt"]?.intValue ?? 0) · \(H.h(q["createdAt"]?.stringValue ?? ""))</span></header>"
            s += "<div class=\"grid2\"><div><h3>Request</h3>\(H.pre(q))</div><div><h3>Response</h3>\(H.pre(r))</div></div></section>"
        }
        return html(200, H.page(c, s))
    }

    static func loginPage(next: String, message: (String, Bool)?) -> String {
        var c = H.Chrome(title: "Sign in")
        c.flash = message.map { (text: $0.0, isError: $0.1) }
        let s = """
        <section class="card login"><h1>Queue dashboard</h1><p class="muted">Administrators only.</p>
        <form method="post" action="/admin/login">
        <input type="hidden" name="next" value="\(H.h(next))">
        <label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required autofocus>
        <label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
        <button type="submit" class="primary">Sign in</button>
        </form></section>
        """
        return H.page(c, s)
    }

    // MARK: - flash messages after POST-redirect-GET

    /// Outcome codes carried in the redirect's query: only known codes become text, so a link
    /// crafted elsewhere cannot put words on the page.
    static func flash(_ rc: RouteContext) -> (text: String, isError: Bool)? {
        // Only shown, never computed with; a count that is not one shows as 0.
        let n = ((try? RequestInt.parse(rc.query("n"), name: "n", in: 0...Int64(Int32.max))) ?? nil) ?? 0
        switch rc.query("done") {
        case "retried": return ("The job is queued again.", false)
        case "not-retried": return ("Nothing retried: only a failed job can be retried.", true)
        case "retried-all": return ("\(n) failed job\(n == 1 ? "" : "s") queued again.", false)
        case "promoted": return ("The delayed job runs now.", false)
        case "not-promoted": return ("Nothing promoted: the job is no longer delayed.", true)
        case "removed": return ("Job removed.", false)
        case "not-removed": return ("Nothing removed: the job was already gone.", true)
        case "cleaned": return ("\(n) job\(n == 1 ? "" : "s") removed.", false)
        case "paused": return ("Queue paused: workers take no new jobs until it is resumed.", false)
        case "resumed": return ("Queue resumed.", false)
        default: break
        }
        switch rc.query("error") {
        case nil: return nil
        case "unavailable": return ("The action failed: a service or Redis is unavailable. Try again.", true)
        case "not_found": return ("The action failed: no such job or queue.", true)
        case "invalid": return ("The action failed: the form was incomplete.", true)
        default: return ("The action failed.", true)
        }
    }

    // MARK: - POST handlers

    static func login(_ g: Gateway, _ rc: RouteContext) -> RouteResult {
        let f = DashboardSession.fields(rc)
        let next = safeNext(f["next"])
        guard DashboardSession.sameOrigin(rc.request) else {
            return errorPage(403, "Refused", "Sign-in requests must come from this site.")
        }
        if let wait = g.loginLimiter.take(rc.request.remoteAddress) {
            var r = html(429, loginPage(next: next, message: ("Too many sign-in attempts. Try again in \(wait) s.", true)))
            r.raw!.headers.append(("Retry-After", String(wait)))
            return r
        }
        guard let email = f["email"], let password = f["password"], !email.isEmpty, !password.isEmpty else {
            return html(400, loginPage(next: next, message: ("Enter your email and password.", true)))
        }
        let session: JSON
        do {
            session = try g.client(ServiceName.auth).call("auth.login", ["email": .string(email), "password": .string(password),
                                                                        "clientAddress": .string(rc.request.remoteAddress)], ctx: rc.ctx)
        } catch {
            let status = ErrorMapping.status(for: error.code)
            let text = status == 429 ? "Too many failed sign-ins. Wait a little and try again."
                : status >= 500 ? "Sign-in is unavailable right now. Try again shortly." : "Wrong email or password."
            g.log.info("dashboard sign-in refused", requestId: rc.requestId, ["status": .int(Int64(status))])
            return html(status == 400 ? 401 : status, loginPage(next: next, message: (text, true)))
        }
        let token = session["accessToken"]?.stringValue ?? ""
        let refresh = session["refreshToken"]?.stringValue
        let role = session["user"]?["role"]?.stringValue
        let uid = session["user"]?["id"]?.stringValue ?? ""
        // The dashboard keeps only the short-lived access token; the refresh token it never uses
        // is revoked at once so that no long-lived credential is left behind.
        if let r = refresh, let rl = role.flatMap(Role.init(rawValue:)) {
            let ctx = RPCContext(requestId: rc.requestId, actor: Actor(userId: uid, role: rl), deadline: rc.ctx.deadline)
            _ = try? g.client(ServiceName.auth).call("auth.logout", ["refreshToken": .string(r)], ctx: ctx)
        }
        guard role == "admin", !token.isEmpty else {
            g.log.info("dashboard sign-in by a non-admin refused", requestId: rc.requestId, ["userId": .string(uid)])
            return html(403, loginPage(next: next, message: ("This dashboard is for administrators only.", true)))
        }
        // The session lives as long as the access token would have (its lifetime from AuthSvc,
        // kept within DashboardSessionStore.ttlRange); the token itself is not kept.
        let ttl = Int(clamping: session["expiresIn"]?.intValue ?? 900)
        let sessionId: String
        do {
            sessionId = try g.sessions.create(userId: uid, ttlSeconds: ttl)
        } catch {
            g.log.warn("dashboard sign-in failed: session store unavailable", requestId: rc.requestId, ["error": .string(String(describing: error))])
            var r = html(503, loginPage(next: next, message: ("Sign-in is unavailable right now. Try again shortly.", true)))
            r.raw!.headers.append(("Retry-After", "1"))
            return r
        }
        g.log.info("dashboard sign-in", requestId: rc.requestId, ["userId": .string(uid)])
        let maxAge = min(max(ttl, DashboardSessionStore.ttlRange.lowerBound), DashboardSessionStore.ttlRange.upperBound)
        return redirect(next, headers: [DashboardSession.setCookie(sessionId, maxAge: maxAge, secure: DashboardSession.secureCookies(g, rc.request))])
    }

    static func logout(_ g: Gateway, _ rc: RouteContext) -> RouteResult {
        guard DashboardSession.sameOrigin(rc.request) else { return errorPage(403, "Refused", "Sign-out requests must come from this site.") }
        // A live session must prove the request is its own, then ends on the server (for every
        // Gateway); an expired or unknown one is cleared either way.
        switch DashboardSession.verdict(g, rc.request) {
        case .admin(let a, let id, true):
            guard DashboardSession.csrfValid(g, sessionToken: id, presented: DashboardSession.fields(rc)["csrf"]) else {
                return errorPage(403, "Refused", "The form was stale or came from another site. Reload the page and try again.")
            }
            do { try g.sessions.end(id) } catch {
                g.log.warn("dashboard sign-out failed: session store unavailable", requestId: rc.requestId, ["error": .string(String(describing: error))])
                return sessionsUnavailable()
            }
            g.log.info("dashboard sign-out", requestId: rc.requestId, ["userId": .string(a.userId)])
        case .unavailable:
            return sessionsUnavailable()
        default:
            break
        }
        return redirect("/admin/login?done=signed-out", headers: [DashboardSession.clearCookie(secure: DashboardSession.secureCookies(g, rc.request))])
    }

    /// Every state-changing action: admin only, same-site, CSRF token for cookie sessions (a
    /// bearer header is never attached by a browser on its own), then POST-redirect-GET.
    static func act(_ g: Gateway, _ rc: RouteContext) -> RouteResult {
        let u: User
        switch DashboardSession.verdict(g, rc.request) {
        case .anonymous: return errorPage(401, "Signed out", "Your session has ended.")
        case .forbidden: return errorPage(403, "Admins only", "The queue dashboard is for administrators.")
        case .unavailable: return sessionsUnavailable()
        case .admin(let a, let t, let c): u = user(g, rc, a, token: t, viaCookie: c)
        }
        let f = DashboardSession.fields(rc)
        guard DashboardSession.sameOrigin(rc.request),
              !u.viaCookie || DashboardSession.csrfValid(g, sessionToken: u.token, presented: f["csrf"])
        else {
            g.log.warn("dashboard action refused: CSRF check failed", requestId: rc.requestId, ["userId": .string(u.actor.userId), "path": .string(rc.request.path)])
            return errorPage(403, "Refused", "The form was stale or came from another site, so nothing was changed. Reload the page and try again.", user: u)
        }
        if let wait = g.userLimiter.take(u.actor.userId) {
            return errorPage(429, "Slow down", "Too many requests; try again in \(wait) s.", user: u)
        }
        let q = rc.pathParams["queue"]!
        let action = rc.pathParams["action"]!
        guard queues.contains(q) else { return errorPage(404, "Not found", "No such queue.", user: u) }
        let jobId = rc.pathParams["jobId"]
        let jobPath = jobId.map { "/admin/queues/\(H.u(q))/jobs/\(H.u($0))" }
        let back = safeNext(f["back"] ?? jobPath)
        var params: [String: JSON] = ["queue": .string(q)]
        if let j = jobId { params["jobId"] = .string(j) }
        let method: String
        switch (jobId != nil, action) {
        case (true, "retry"): method = "queues.retry"
        case (true, "promote"): method = "queues.promote"
        case (true, "remove"): method = "queues.remove"
        case (false, "retry-all"): method = "queues.retryAll"
        case (false, "pause"): method = "queues.pause"
        case (false, "resume"): method = "queues.resume"
        case (false, "clean"):
            method = "queues.clean"
            let unitMs: Int64 = ["minutes": 60_000, "hours": 3_600_000, "days": 86_400_000][f["unit"] ?? "days"] ?? 86_400_000
            // At most 99,999 days: the product below stays far inside Int64.
            guard let st = f["state"], cleanable.contains(st),
                  let age = (try? RequestInt.parse(f["age"] ?? "", name: "age", in: 0...99_999)) ?? nil else {
                return redirect(withQuery(back, "error=invalid"))
            }
            params["state"] = .string(st)
            params["olderThanMs"] = .int(age * unitMs)
            params["limit"] = 0
        default:
            return errorPage(404, "Not found", "No such action.", user: u)
        }
        g.log.info("dashboard action", requestId: rc.requestId,
                   ["userId": .string(u.actor.userId), "action": .string(action), "queue": .string(q), "jobId": JSON(jobId)])
        let result: JSON
        do {
            result = try g.client(ServiceName.parcelx).call(method, .object(params), ctx: u.ctx)
        } catch {
            g.log.warn("dashboard action failed", requestId: rc.requestId, ["action": .string(action), "code": .int(Int64(error.code))])
            // A refusal because of the job's state (a worker is processing it) is the answer, not
            // a failure to report on the next page.
            if ErrorMapping.status(for: error.code) == 409 {
                return errorPage(409, "Not possible now", error.message, user: u)
            }
            return redirect(withQuery(back, "error=\(error.reason ?? "failed")"))
        }
        let done: String
        switch action {
        case "retry": done = result["ok"] == true ? "retried" : "not-retried"
        case "promote": done = result["ok"] == true ? "promoted" : "not-promoted"
        case "remove": done = result["ok"] == true ? "removed" : "not-removed"
        case "retry-all": done = "retried-all&n=\(result["count"]?.intValue ?? 0)"
        case "clean": done = "cleaned&n=\(result["removed"]?.intValue ?? 0)"
        case "pause": done = "paused"
        default: done = "resumed"
        }
        // A removed job has no page any more: go back to the list it was on.
        let target = action == "remove" && back == jobPath ? "/admin/queues/\(H.u(q))/failed" : back
        return redirect(withQuery(target, "done=\(done)"))
    }

    static func withQuery(_ path: String, _ q: String) -> String {
        // Drop an earlier outcome from the page we return to, keep its paging.
        let parts = path.split(separator: "?", maxSplits: 1)
        let kept = parts.count > 1 ? parts[1].split(separator: "&").filter { $0.hasPrefix("page=") }.map(String.init) : []
        return String(parts[0]) + "?" + (kept + [q]).joined(separator: "&")
    }
}
