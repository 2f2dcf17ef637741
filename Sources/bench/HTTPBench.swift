import Foundation
import Harness
import JSON
import Runtime

/// `bench http`: wrk against the Gateway (`GET /healthz`, authenticated `POST /orders/create`
/// with unique clientOrderIds) at 32 and 128 connections, beside nginx serving a fixed small JSON
/// body on the same machine in the same run.
enum HTTPBench {
    struct WrkResult {
        var rps: Double; var p50Ms: Double; var p99Ms: Double; var non2xx: Int; var errors: String
        /// Answers by HTTP status, from scripts that print `status <code> <count>` lines when done.
        var statuses: [Int: Int] = [:]
        /// "201 × n, 200 × m" when a script counted statuses and some were not 201.
        var statusNote: String {
            guard statuses.keys.contains(where: { $0 != 201 }) else { return "" }
            return ", answers " + statuses.sorted { $0.key < $1.key }.map { "\($0.key) × \($0.value)" }.joined(separator: ", ")
        }
    }

    static func parseDuration(_ s: Substring) -> Double {
        let t = s.trimmingCharacters(in: .whitespaces)
        for (suffix, f) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)] where t.hasSuffix(suffix) {
            return (Double(t.dropLast(suffix.count)) ?? 0) * f
        }
        return Double(t) ?? 0
    }

    static func wrk(_ url: String, connections: Int, seconds: Double, script: String? = nil, env: [String: String] = [:]) throws -> WrkResult {
        guard let exe = which("wrk") else { throw RuntimeError("wrk is missing (apt-get install wrk; ./oops bench installs it)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["-t", "2", "-c", "\(connections)", "-d", "\(max(1, Int(seconds.rounded())))s", "--latency", "--timeout", "10s"]
            + (script.map { ["-s", $0] } ?? []) + [url]
        if !env.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 } }
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
            if f.count == 3, f[0] == "status", let code = Int(f[1]), let n = Int(f[2]) { r.statuses[code, default: 0] += n }
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

    /// Merchants the order load spreads over (each request takes the next one's token), on both
    /// the Gateway and the Node anchor.
    static let merchants = 64

    /// The Gateway's order body, the same shape as the Node anchor's (consignee, two items, a
    /// 450 g parcel, prepaid) in OOPS's own field names.
    static func orderBody(_ clientOrderId: String) -> JSON {
        [
            "clientOrderId": .string(clientOrderId),
            "consignee": ["name": "Asha Rao", "mobile": "9876543210", "address1": "12 MG Road, Indiranagar", "pincode": "560038",
                          "city": "Bengaluru", "state": "Karnataka"],
            "pickupAddressId": "WH-1",
            "payment": ["mode": "prepaid"],
            "package": ["weightGrams": 450, "lengthCm": 20, "widthCm": 15, "heightCm": 10],
            "items": [["sku": "MUG-01", "name": "Ceramic mug", "quantity": 2, "pricePaise": 34900],
                      ["sku": "CST-04", "name": "Coaster set", "quantity": 1, "pricePaise": 19900]],
        ]
    }

    /// With `OOPS_BENCH_PERF_DIR` set, `perf record -a -g` for one phase (docs/performance.md,
    /// "How to profile"): `<dir>/<tag>.data`, and `<dir>/<tag>.pids` with a `key pid` line per
    /// process, for `perf report --pid`. The whole machine is recorded because the services'
    /// handlers run on libdispatch threads that come and go, which `perf record -p` does not follow.
    static func startPerf(_ procs: BenchProcs, keys: [String], tag: String) throws -> [Process] {
        guard let dir = ProcessInfo.processInfo.environment["OOPS_BENCH_PERF_DIR"] else { return [] }
        guard let exe = which("perf") else { throw RuntimeError("perf is missing (apt-get install linux-perf)") }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try keys.compactMap { k in procs.pid(k).map { "\(k) \($0)\n" } }.joined().write(toFile: "\(dir)/\(tag).pids", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["record", "-a", "-g", "-F", "999", "-o", "\(dir)/\(tag).data"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        usleep(300_000)  // perf attaches before the load starts
        return [p]
    }

    static func stopPerf(_ ps: [Process]) {
        for p in ps { kill(p.processIdentifier, SIGINT) }
        for p in ps { p.waitUntilExit() }
    }

    static func run(_ report: Report, seconds: Double) throws {
        print("http: wrk against the Gateway vs nginx with a fixed JSON body, and vs the seed's order path in Node")
        let sys = try BenchSystem("http", parts: .all)
        defer { sys.cleanup() }
        let nginxPort = freePort()
        try startNginx(sys.procs, port: nginxPort)
        let first = try sys.merchant(topups: 5)
        var tokens = [first.token]
        for _ in 1..<merchants { tokens.append(try sys.merchant(topups: 1).token) }
        let body = orderBody("CLIENTID").serialized()
        let parts = body.components(separatedBy: "CLIENTID")
        func luaString(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        let script = sys.procs.dir + "/orders.lua"
        // Each wrk thread has its own Lua state: ids are RUN_TAG-thread-counter, RUN_TAG new for
        // every wrk run (a tag shared by two runs made the second one partly replays). Like the
        // anchor's script, each request takes the next merchant's token, threads starting apart,
        // and the answers are counted by status.
        let lua = """
        local threads = {}
        local tokens = { \(tokens.map(luaString).joined(separator: ", ")) }
        function setup(thread) table.insert(threads, thread); thread:set("tid", #threads) end
        function init(args) n = 0; nt = (tid * 7919) % #tokens; tag = os.getenv("RUN_TAG"); statuses = {} end
        wrk.method = "POST"
        wrk.headers["Content-Type"] = "application/json"
        function request()
          n = n + 1
          nt = nt % #tokens + 1
          wrk.headers["Authorization"] = "Bearer " .. tokens[nt]
          return wrk.format(nil, "/orders/create", nil, \(luaString(parts[0])) .. "wrk-" .. tag .. "-" .. tid .. "-" .. n .. \(luaString(parts[1])))
        end
        function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
        function done(summary, latency, requests)
          local totals = {}
          for _, t in ipairs(threads) do for s, k in pairs(t:get("statuses")) do totals[s] = (totals[s] or 0) + k end end
          for s, k in pairs(totals) do io.write(string.format("status %d %d\\n", s, k)) end
        end
        """
        try lua.write(toFile: script, atomically: true, encoding: .utf8)
        // The floor under order creation: one authenticated route that makes a single RPC read.
        let walletScript = sys.procs.dir + "/wallet.lua"
        try "wrk.headers[\"Authorization\"] = \"Bearer \(first.token)\"\n".write(toFile: walletScript, atomically: true, encoding: .utf8)
        let gw = "http://127.0.0.1:\(sys.httpPort)"
        let ng = "http://127.0.0.1:\(nginxPort)/"
        func ordersNote(_ o: WrkResult, _ cpu: String) -> String {
            String(format: "p50 %.2f ms, p99 %.2f ms%@%@%@; %@", o.p50Ms, o.p99Ms, o.non2xx > 0 ? ", \(o.non2xx) non-2xx" : "",
                   o.errors.isEmpty ? "" : ", " + o.errors, o.statusNote, cpu)
        }
        for c in [32, 128] {
            let base = try wrk(ng, connections: c, seconds: seconds)
            // CPU per request of the Gateway (and, for /wallet, WalletSvc): the floor of the HTTP
            // part and of one RPC hop under an order.
            let hc0 = sys.procs.cpuSeconds()
            let h = try wrk(gw + "/healthz", connections: c, seconds: seconds)
            let hcpu = BenchProcs.cpuNote(hc0, sys.procs.cpuSeconds(), units: h.rps * seconds, unit: "request")
            report.add(BenchRow(suite: "http", name: "GET /healthz, \(c) connections", value: h.rps, unit: "req/s", baselineName: "nginx fixed JSON", baseline: base.rps,
                                note: String(format: "p50 %.2f ms, p99 %.2f ms (nginx %.2f / %.2f ms)%@; %@", h.p50Ms, h.p99Ms, base.p50Ms, base.p99Ms,
                                             h.non2xx > 0 ? ", \(h.non2xx) non-2xx" : "", hcpu)))
            let wc0 = sys.procs.cpuSeconds()
            let w = try wrk(gw + "/wallet", connections: c, seconds: seconds, script: walletScript)
            let wcpu = BenchProcs.cpuNote(wc0, sys.procs.cpuSeconds(), units: w.rps * seconds, unit: "request")
            report.add(BenchRow(suite: "http", name: "GET /wallet (JWT, one RPC read), \(c) connections", value: w.rps, unit: "req/s",
                                baselineName: "nginx fixed JSON", baseline: base.rps,
                                note: String(format: "p50 %.2f ms, p99 %.2f ms%@; %@", w.p50Ms, w.p99Ms, w.non2xx > 0 ? ", \(w.non2xx) non-2xx" : "", wcpu)))
            let cpu0 = sys.procs.cpuSeconds()
            let o = try wrk(gw + "/orders/create", connections: c, seconds: seconds, script: script, env: ["RUN_TAG": benchTag()])
            // ParcelXSvc and the sandbox place the orders meanwhile; their share is listed too.
            let cpu = BenchProcs.cpuNote(cpu0, sys.procs.cpuSeconds(), units: o.rps * seconds, unit: "accepted order")
            report.add(BenchRow(suite: "http", name: "POST /orders/create (JWT, new order, workers running), \(c) connections", value: o.rps, unit: "req/s",
                                baselineName: "nginx fixed JSON", baseline: base.rps, note: ordersNote(o, cpu)))
            report.addScaling(ScalingRow(suite: "http", what: "wrk POST /orders/create, workers running", clients: c, rate: o.rps, p50Ms: o.p50Ms, p99Ms: o.p99Ms,
                                         note: o.non2xx > 0 ? "\(o.non2xx) non-2xx" : ""))
        }

        // The goal rows: the Node anchor has no consumer, so the ParcelX workers stop (their
        // queue fills; the sandbox idles). Each connection count runs the Gateway and Node back to back.
        sys.procs.stop("parcelx")
        let anchor: SeedNodeAnchor?
        switch SeedNodeAnchor.start(sys.procs, merchants: merchants) {
        case .success(let a): anchor = a
        case .failure(let e):
            anchor = nil
            print("  Node seed stack: skipped: \(e.description)")
        }
        if let a = anchor {
            // The anchor's own warm-up (bench.sh: 3 s of orders at 32 connections); the Gateway is warm already.
            _ = try wrk(a.ordersURL, connections: 32, seconds: 3, script: a.script, env: a.wrkEnv(tag: "warm-\(benchTag())"))
        }
        for c in [32, 128] {
            let cpu0 = sys.procs.cpuSeconds()
            let perf = try startPerf(sys.procs, keys: ["gateway", "order", "wallet", "redis"], tag: "orders-c\(c)")
            let o = try wrk(gw + "/orders/create", connections: c, seconds: seconds, script: script, env: ["RUN_TAG": benchTag()])
            stopPerf(perf)
            let cpu = BenchProcs.cpuNote(cpu0.filter { !$0.key.hasPrefix("seed-") && $0.key != "node" },
                                         sys.procs.cpuSeconds().filter { !$0.key.hasPrefix("seed-") && $0.key != "node" },
                                         units: o.rps * seconds, unit: "accepted order")
            var row = BenchRow(suite: "http", name: "POST /orders/create (JWT, new order, workers stopped), \(c) connections", value: o.rps, unit: "req/s",
                               baselineName: "Node seed stack", baseline: nil,
                               note: ordersNote(o, cpu) + (anchor == nil ? " | Node: skipped" : ""))
            if let a = anchor {
                let n0 = sys.procs.cpuSeconds()
                let n = try wrk(a.ordersURL, connections: c, seconds: seconds, script: a.script, env: a.wrkEnv(tag: "c\(c)-\(benchTag())"))
                let ncpu = BenchProcs.cpuNote(n0.filter { $0.key == "node" || $0.key == "seed-redis" },
                                              sys.procs.cpuSeconds().filter { $0.key == "node" || $0.key == "seed-redis" },
                                              units: n.rps * seconds, unit: "accepted order")
                row.baselineName = "Node seed stack"
                row.baseline = n.rps
                row.note += String(format: " | Node: p50 %.2f ms, p99 %.2f ms%@%@%@; %@", n.p50Ms, n.p99Ms, n.non2xx > 0 ? ", \(n.non2xx) non-2xx" : "",
                                   n.errors.isEmpty ? "" : ", " + n.errors, n.statusNote, ncpu)
            }
            report.add(row)
            report.addScaling(ScalingRow(suite: "http", what: "wrk POST /orders/create, workers stopped", clients: c, rate: o.rps, p50Ms: o.p50Ms, p99Ms: o.p99Ms,
                                         note: o.non2xx > 0 ? "\(o.non2xx) non-2xx" : ""))
        }
    }
}
