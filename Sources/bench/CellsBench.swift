import Foundation
import Harness
import JSON
import Runtime

/// `bench e2e-cells`: orders through nginx to one cell, then to two cells (each its own run dir,
/// sockets, Gateway and ParcelXSvc, as two hosts would run them), sharing Redis and the store.
/// On one machine the cells share its cores, so the second cell cannot add capacity; the figure
/// shows what the cell split costs (two cells against one at the same total CPU). The cells share
/// the SQLite files of one data dir (WAL, several processes; the MongoDB test server is far
/// slower than the path measured here), so the store is the same in both runs.
enum CellsBench {
    static let levels = [16, 64]

    static func run(_ report: Report, seconds: Double) throws {
        print("e2e-cells: nginx → Gateway → OrderSvc → queue → ParcelXSvc → sandbox (\(E2EBench.latencyMs) ms), one cell vs two")
        let sys = try BenchSystem("e2e-cells", parts: .all, extraEnv: ["OOPS_PARCELX_MAX_IN_FLIGHT": "\(E2EBench.workerConcurrency)"])
        defer { sys.cleanup() }
        try E2EBench.setLatency(sys.sandboxPort, E2EBench.latencyMs)
        let m = try sys.merchant()
        let headers = ["Authorization": "Bearer \(m.token)"]
        let tag = benchTag()
        let seq = Locked(0)
        @Sendable func next() -> Int { seq.withLock { $0 += 1; return $0 } }

        let oneCell = freePort()
        try startBalancer(sys.procs, key: "nginx-1", port: oneCell, gateways: [sys.httpPort])
        let second = try startCell(sys, n: 2)
        let twoCells = freePort()
        try startBalancer(sys.procs, key: "nginx-2", port: twoCells, gateways: [sys.httpPort, second])

        for c in levels {
            var rates: [Double] = []
            for (label, port) in [("1 cell", oneCell), ("2 cells", twoCells)] {
                let before = E2EBench.sandboxCreates(sys.sandboxPort)
                let cpu0 = sys.procs.cpuSeconds().values.reduce(0, +)
                let t0 = Clock.monotonicNanos()
                let r = runClients(c, seconds: seconds, setup: { _ in try HTTPConn(port: port) }) { conn, _ in
                    let body = BenchSystem.orderBody("cells-\(tag)-\(next())").serializedBytes()
                    guard let res = try? conn.request("POST", "/orders/create", headers: headers, body: body) else {
                        if let fresh = try? HTTPConn(port: port) { conn = fresh }
                        return false
                    }
                    return res.status == 201
                }
                let accepted = Double(r.ops) / r.elapsed
                let done = E2EBench.waitPlaced(sys.sandboxPort, target: before + r.ops)
                let placed = done.map { Double(r.ops) / (Double($0 - t0) / 1e9) } ?? 0
                let cpuMs = (sys.procs.cpuSeconds().values.reduce(0, +) - cpu0) * 1000 / Double(max(r.ops, 1))
                rates.append(accepted)
                let failNote = r.failed > 0 ? ", \(r.failed) failed" : ""
                report.add(BenchRow(suite: "e2e-cells", name: "orders accepted via nginx, \(label), \(c) clients", value: accepted, unit: "orders/s",
                                    baselineName: label == "1 cell" ? nil : "1 cell, same clients", baseline: label == "1 cell" ? nil : rates.first,
                                    note: String(format: "placed %.0f/s; p50 %.2f ms, p99 %.2f ms; %.2f ms CPU per order over all processes%@%@",
                                                 placed, r.samples.p50 / 1000, r.samples.p99 / 1000, cpuMs, failNote,
                                                 done == nil ? "; not all placed within 120 s" : "")))
            }
        }
    }

    /// A second cell over the same data dir, Redis and sandbox: its own run dir, sockets, services,
    /// ParcelXSvc and Gateway. Returns the Gateway's port.
    static func startCell(_ sys: BenchSystem, n: Int) throws -> UInt16 {
        let runDir = sys.procs.dir + "/run-\(n)"
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        chmod(runDir, 0o750)
        let http = freePort(), admin = freePort()
        let env = ["OOPS_RUN_DIR": runDir, "OOPS_HTTP_ADDR": "127.0.0.1:\(http)", "OOPS_ADMIN_ADDR": "127.0.0.1:\(admin)"]
        for s in ["auth", "wallet", "order", "parcelx"] { try sys.startService(s, key: "\(s)-cell\(n)", extraEnv: env) }
        var e = sys.env
        for (k, v) in env { e[k] = v }
        try sys.procs.start("gateway-cell\(n)", "Gateway", env: e)
        guard waitUntil(timeoutMs: 20_000, { (try? HTTPConn(port: http).request("GET", "/readyz").status) == 200 }) else {
            throw RuntimeError("cell \(n) gateway not ready: \(sys.procs.log("gateway-cell\(n)").suffix(1000))")
        }
        return http
    }

    /// nginx proxying to `gateways` (round robin, keep-alive upstream connections), one worker
    /// process so that it takes little of the machine from the cells.
    static func startBalancer(_ procs: BenchProcs, key: String, port: UInt16, gateways: [UInt16]) throws {
        guard let exe = which("nginx") else { throw RuntimeError("nginx is missing (apt-get install nginx; ./oops bench installs it)") }
        let d = procs.dir + "/" + key
        try FileManager.default.createDirectory(atPath: d + "/tmp", withIntermediateDirectories: true)
        let conf = """
        daemon off;
        worker_processes 1;
        pid \(d)/nginx.pid;
        error_log \(d)/error.log warn;
        events { worker_connections 4096; }
        http {
          access_log off;
          client_body_temp_path \(d)/tmp; proxy_temp_path \(d)/tmp; fastcgi_temp_path \(d)/tmp; uwsgi_temp_path \(d)/tmp; scgi_temp_path \(d)/tmp;
          keepalive_requests 1000000;
          upstream oops_gateways {
        \(gateways.map { "    server 127.0.0.1:\($0);" }.joined(separator: "\n"))
            keepalive 256;
          }
          server {
            listen 127.0.0.1:\(port);
            location / {
              proxy_pass http://oops_gateways;
              proxy_http_version 1.1;
              proxy_set_header Connection "";
            }
          }
        }
        """
        try conf.write(toFile: d + "/nginx.conf", atomically: true, encoding: .utf8)
        try procs.start(key, exe, ["-c", d + "/nginx.conf", "-p", d, "-e", d + "/error.log"])
        guard waitUntil({ (try? HTTPConn(port: port).request("GET", "/healthz").status) == 200 }) else {
            throw RuntimeError("nginx did not start: \(procs.log(key).suffix(500))")
        }
    }
}
