import Foundation
import JSON
import Runtime

/// HTML building blocks of the dashboard. Every value that came from a job, an order or a
/// request passes through `h` (text and attribute values alike) before it reaches a page.
enum DashboardHTML {
    /// Escapes text for HTML content and double-quoted attribute values.
    static func h(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Percent-encodes one path segment or query value (unreserved characters kept).
    static func u(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// Headers every dashboard response carries: nothing from other origins, no framing, no
    /// sniffing, no caching of queue data, no Referer leaving the site.
    static let securityHeaders: [(String, String)] = [
        ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("Cache-Control", "no-store"),
    ]

    struct Chrome {
        var title: String
        /// Shown in the header with a sign-out button; nil on the sign-in page.
        var user: String?
        var csrf: String?
        var crumbs: [(String, String?)] = []
        var flash: (text: String, isError: Bool)?
        /// `data-*` attributes of <body> that switch on app.js behaviours (polling).
        var bodyData: [(String, String)] = []
    }

    static func page(_ c: Chrome, _ content: String) -> String {
        var s = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="same-origin">
        <title>\(h(c.title)) · OOPS queues</title>
        <link rel="stylesheet" href="/admin/queues/assets/app.css">
        <script src="/admin/queues/assets/app.js" defer></script>
        </head>
        """
        s += "<body" + c.bodyData.map { " data-\($0.0)=\"\(h($0.1))\"" }.joined() + ">\n"
        s += "<header class=\"top\"><a class=\"brand\" href=\"/admin/queues\">OOPS · Queues</a>"
        if let u = c.user {
            s += "<span class=\"who\">admin · \(h(u))</span>"
            s += "<form method=\"post\" action=\"/admin/logout\" class=\"inline\">\(csrfField(c.csrf))<button class=\"link\" type=\"submit\">Sign out</button></form>"
        }
        s += "</header>\n<main>\n"
        if !c.crumbs.isEmpty {
            s += "<nav class=\"crumbs\">" + c.crumbs.map { t, href in
                href.map { "<a href=\"\(h($0))\">\(h(t))</a>" } ?? "<span>\(h(t))</span>"
            }.joined(separator: " <span class=\"sep\">›</span> ") + "</nav>\n"
        }
        if let f = c.flash {
            s += "<p class=\"flash\(f.isError ? " error" : "")\" role=\"status\">\(h(f.text))</p>\n"
        }
        s += content
        s += "\n</main>\n</body>\n</html>\n"
        return s
    }

    static func csrfField(_ token: String?) -> String {
        guard let t = token else { return "" }
        return "<input type=\"hidden\" name=\"csrf\" value=\"\(h(t))\">"
    }

    /// A one-button POST form; app.js asks `confirm` before it is sent.
    static func actionForm(_ action: String, label: String, confirm: String, csrf: String?, back: String,
                           danger: Bool = false, extraAttrs: String = "") -> String {
        "<form method=\"post\" action=\"\(h(action))\" class=\"inline\" data-confirm=\"\(h(confirm))\"\(extraAttrs)>"
            + csrfField(csrf) + "<input type=\"hidden\" name=\"back\" value=\"\(h(back))\">"
            + "<button type=\"submit\" class=\"\(danger ? "danger" : "primary")\">\(h(label))</button></form>"
    }

    /// JSON shown as indented text; strings stay as they are (stack traces, provider messages).
    static func pre(_ v: JSON?) -> String {
        guard let v, !v.isNull else { return "<p class=\"muted\">none</p>" }
        if case .string(let s) = v { return "<pre>\(h(s))</pre>" }
        return "<pre>\(h(v.prettyPrinted()))</pre>"
    }

    static func time(_ ms: Int64?, now: Int64) -> String {
        guard let ms, ms > 0 else { return "<span class=\"muted\">—</span>" }
        let iso = Clock.iso8601(millis: ms)
        return "<time datetime=\"\(h(iso))\" title=\"\(h(iso))\">\(h(iso.replacingOccurrences(of: "T", with: " ")))</time>"
            + " <span class=\"muted\">(\(h(ago(now - ms))))</span>"
    }

    /// `to - from - minus` for job timestamps, which other producers write into Redis: nil when
    /// one is missing or the difference does not fit (a nonsense value shows nothing, never traps).
    static func span(from: Int64?, to: Int64?, minus: Int64 = 0) -> Int64? {
        guard let from, let to else { return nil }
        let (d, o1) = to.subtractingReportingOverflow(from)
        let (r, o2) = d.subtractingReportingOverflow(minus)
        return o1 || o2 ? nil : r
    }

    static func ago(_ ms: Int64) -> String {
        ms >= 0 ? "\(duration(ms)) ago" : "in \(duration(-ms))"
    }

    /// A duration the way people read it: 850 ms, 4.2 s, 3 min 5 s, 2 h 10 min, 3 d 4 h.
    static func duration(_ ms: Int64) -> String {
        let ms = max(ms, 0)
        if ms < 1000 { return "\(ms) ms" }
        if ms < 60_000 { return String(format: "%.1f s", Double(ms) / 1000) }
        let s = ms / 1000
        if s < 3600 { return "\(s / 60) min \(s % 60) s" }
        if s < 86_400 { return "\(s / 3600) h \((s % 3600) / 60) min" }
        return "\(s / 86_400) d \((s % 86_400) / 3600) h"
    }
}
