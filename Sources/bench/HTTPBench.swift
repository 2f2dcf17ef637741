import Foundation
import Harness
import JSON
import Runtime

/// `bench http`: wrk against the Gateway (`GET /healthz`, authenticated `POST /orders/create`
/// with unique clientOrderIds) at 32 and 128 connections, beside nginx serving a fixed small JSON
/// body on the same machine in the same run.
enum HTTPBench {
    struct WrkResult { var rps: Double; var p50Ms: Double; var p99Ms: Double; var non2xx: Int; var errors: String }

    static func parseDuration(_ s: Substring) -> Double {
        let t = s.trimmingCharacters(in: .whitespaces)
        for (suffix, f) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)] where t.hasSuffix(suffix) {
            return (Double(t.dropLast(suffix.count)) ?? 0) * f
        }
        return Double(t) ?? 0
    }

    static func wrk(_ url: String, connections: Int, seconds: Double, script: String? = nil) throws -> WrkResult {
        guard let exe = which("wrk") else { throw RuntimeError("wrk is missing (apt-get install wrk; ./oops bench installs it)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["-t", "2", "-c", "\(connections)", "-d", "\(max(1, Int(seconds.rounded())))s", "--latency", "--timeout", "10s"]
            + (script.map { ["-s", $0] } ?? []) + [url]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        var r = WrkResult(rps: 0, p50Ms: 0, p99Ms: 0, non2xx: 0, errors: "")
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            if line.hasPrefix("Requests/sec:"), f.count >= 2 { r.rps = Double(f[1]) ?? 0 }
            if f.count == 2, f[0] == "50%" { r.p50Ms = parseDuration(f[1]) }
            if f.count == 2, f[0] == "99%" { r.p99Ms = parseDuration(f[1]) }
            if line.contains("Non-2xx or 3xx responses:") { r.non2xx = Int(f.last ?? "") ?? 0 }
            if line.contains("Socket errors:") { r.errors = line.trimmingCharacters(in: .whitespaces) }
        }
        if r.rps == 0 { throw RuntimeError("wrk output not understood: \(text.prefix(500))") }
        return r
    }

    static func startNginx(_ procs: BenchProcs, port: UInt16) throws {
        guard let exe = which("nginx") else { throw RuntimeError("nginx is missing (apt-get install nginx; ./oops bench installs it)") }
        let d = procs.dir + "/nginx"
        try FileManager.default.createDirectory(atPath: d + "/tmp", withIntermediateDirectories: true)
        let conf = """
        daemon off;
        worker_processes auto;
        pid \(d)/nginx.pid;
        error_log \(d)/error.log warn;
        events { worker_connections 4096; }
        http {
          access_log off;
          client_body_temp_path \(d)/tmp; proxy_temp_path \(d)/tmp; fastcgi_temp_path \(d)/tmp; uwsgi_temp_path \(d)/tmp; scgi_temp_path \(d)/tmp;
          keepalive_requests 1000000;
          server {
            listen 127.0.0.1:\(port);
            location / { default_type application/json; return 200 '{"status":"ok"}'; }
          }
        }
        """
        try conf.write(toFile: d + "/nginx.conf", atomically: true, encoding: .utf8)
        try procs.start("nginx", exe, ["-c", d + "/nginx.conf", "-p", d, "-e", d + "/error.log"])
        guard waitUntil(timeoutMs: 15_000, { (try? HTTPConn(port: port).request("GET", "/").status) == 200 }) else {
            throw RuntimeError("nginx did not start: \(procs.log("nginx").suffix(500))")
        }
    }

    static func run(_ report: Report, seconds: Double) throws {
        print("http: wrk against the Gateway vs nginx with a fixed JSON body")
        let sys = try BenchSystem("http", parts: .all)
        defer { sys.cleanup() }
        let nginxPort = freePort()
        try startNginx(sys.procs, port: nginxPort)
        let m = try sys.merchant(topups: 5)
        let body = BenchSystem.orderBody("CLIENTID").serialized()
        let parts = body.components(separatedBy: "CLIENTID")
        func luaString(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        let script = sys.procs.dir + "/orders.lua"
        // Each wrk thread has its own Lua state: ids are tag-thread-counter.
        let lua = """
        local threads = 0
        function setup(thread) threads = threads + 1; thread:set("tid", threads) end
        function init(args) n = 0 end
        wrk.method = "POST"
        wrk.headers["Content-Type"] = "application/json"
        wrk.headers["Authorization"] = "Bearer \(m.token)"
        function request()
          n = n + 1
          return wrk.format(nil, "/orders/create", nil, \(luaString(parts[0])) .. "wrk-\(benchTag())-" .. tid .. "-" .. n .. \(luaString(parts[1])))
        end
        """
        try lua.write(toFile: script, atomically: true, encoding: .utf8)
        // The floor under order creation: one authenticated route that makes a single RPC read.
        let walletScript = sys.procs.dir + "/wallet.lua"
        try "wrk.headers[\"Authorization\"] = \"Bearer \(m.token)\"\n".write(toFile: walletScript, atomically: true, encoding: .utf8)
        let gw = "http://127.0.0.1:\(sys.httpPort)"
        let ng = "http://127.0.0.1:\(nginxPort)/"
        for c in [32, 128] {
            let base = try wrk(ng, connections: c, seconds: seconds)
            let h = try wrk(gw + "/healthz", connections: c, seconds: seconds)
            report.add(BenchRow(suite: "http", name: "GET /healthz, \(c) connections", value: h.rps, unit: "req/s", baselineName: "nginx fixed JSON", baseline: base.rps,
                                note: String(format: "p50 %.2f ms, p99 %.2f ms (nginx %.2f / %.2f ms)%@", h.p50Ms, h.p99Ms, base.p50Ms, base.p99Ms,
                                             h.non2xx > 0 ? ", \(h.non2xx) non-2xx" : "")))
            let w = try wrk(gw + "/wallet", connections: c, seconds: seconds, script: walletScript)
            report.add(BenchRow(suite: "http", name: "GET /wallet (JWT, one RPC read), \(c) connections", value: w.rps, unit: "req/s",
                                baselineName: "nginx fixed JSON", baseline: base.rps,
                                note: String(format: "p50 %.2f ms, p99 %.2f ms%@", w.p50Ms, w.p99Ms, w.non2xx > 0 ? ", \(w.non2xx) non-2xx" : "")))
            let cpu0 = sys.procs.cpuSeconds()
            let o = try wrk(gw + "/orders/create", connections: c, seconds: seconds, script: script)
            // ParcelXSvc and the sandbox place the orders meanwhile; their share is listed too.
            let cpu = BenchProcs.cpuNote(cpu0, sys.procs.cpuSeconds(), units: o.rps * seconds, unit: "accepted order")
            report.add(BenchRow(suite: "http", name: "POST /orders/create (JWT, new order), \(c) connections", value: o.rps, unit: "req/s",
                                baselineName: "nginx fixed JSON", baseline: base.rps,
                                note: String(format: "p50 %.2f ms, p99 %.2f ms%@%@; %@", o.p50Ms, o.p99Ms, o.non2xx > 0 ? ", \(o.non2xx) non-2xx" : "",
                                             o.errors.isEmpty ? "" : ", " + o.errors, cpu)))
            report.addScaling(ScalingRow(suite: "http", what: "wrk POST /orders/create", clients: c, rate: o.rps, p50Ms: o.p50Ms, p99Ms: o.p99Ms,
                                         note: o.non2xx > 0 ? "\(o.non2xx) non-2xx" : ""))
        }
    }
}
