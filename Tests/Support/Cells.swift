import Foundation
import JSON
import Runtime

/// One cell of a multi-host deployment on this machine: every OOPS service and a Gateway with
/// a run directory, data directory, sockets and ports of its own, sharing with the other cells
/// what `sharedEnv` names (MongoDB, Redis, the token and KYC keys, the provider). No Redis and
/// no sandbox of its own.
public final class OOPSCell: @unchecked Sendable {
    public let name: String
    public let procs: ProcessSet
    public let httpPort: UInt16
    public let adminPort: UInt16
    public let parcelxInstances: Int
    public var base: String { "http://127.0.0.1:\(httpPort)" }
    public static let services = ["auth", "wallet", "order"]

    public init(name: String, sharedEnv: [String: String], parcelxInstances: Int = 1) throws {
        self.name = name
        httpPort = freePort()
        adminPort = freePort()
        self.parcelxInstances = parcelxInstances
        var env = sharedEnv
        env["OOPS_HTTP_ADDR"] = "127.0.0.1:\(httpPort)"
        env["OOPS_ADMIN_ADDR"] = "127.0.0.1:\(adminPort)"
        procs = ProcessSet(env: env)
        do { try start() } catch {
            procs.cleanup()
            throw error
        }
    }

    /// Starts every process and waits until the Gateway is ready.
    public func start() throws {
        for s in Self.services { try procs.start(s) }
        for i in 0..<parcelxInstances { try procs.start("parcelx", instance: i) }
        try procs.startBinary("Gateway", key: "gateway")
        guard waitUntil(timeoutMs: 60_000, intervalMs: 100, { HTTP.request("GET", "\(self.base)/readyz", timeoutS: 3).status == 200 }) else {
            let r = HTTP.request("GET", "http://127.0.0.1:\(adminPort)/readyz", timeoutS: 3)
            throw RuntimeError("cell \(name) not ready: \(r.status) \(r.text)")
        }
    }

    /// `kill -9` of every process of the cell at once, as when its host dies.
    public func killAll() {
        let keys = Self.services.map { "\($0)-0" } + (0..<parcelxInstances).map { "parcelx-\($0)" } + ["gateway"]
        let children = keys.compactMap { procs.child($0) }
        for c in children where c.isRunning { Foundation.kill(c.pid, SIGKILL) }
        for c in children { c.kill9() }  // reaps
    }

    public func stop() { procs.cleanup() }
}

/// nginx (Debian) as the load balancer in front of several Gateways: round robin, passive health
/// checks (`max_fails`/`fail_timeout`), a request that could not reach a Gateway passed to the
/// next one. `upstreamBlock` is the same text the README's deployment section shows.
public final class NginxBalancer: Sendable {
    public let port: UInt16
    public let dir: TempDir
    private let child: ChildProcess
    public var base: String { "http://127.0.0.1:\(port)" }

    public static func upstreamBlock(_ gateways: [String]) -> String {
        "upstream oops_gateways {\n" + gateways.map { "    server \($0) max_fails=1 fail_timeout=2s;\n" }.joined()
            + "    keepalive 64;\n}\n"
    }

    public init(gateways: [String]) throws {
        guard let exe = which("nginx") else { throw missingTestTool("nginx not found; the test command installs it (apt-get install nginx)") }
        port = freePort()
        dir = TempDir("nginx")
        let d = dir.path
        let conf = """
            worker_processes 1;
            daemon off;
            pid \(d)/nginx.pid;
            error_log \(d)/error.log warn;
            events { worker_connections 4096; }
            http {
                access_log off;
                client_body_temp_path \(d)/body;
                proxy_temp_path \(d)/proxy;
                fastcgi_temp_path \(d)/fastcgi;
                uwsgi_temp_path \(d)/uwsgi;
                scgi_temp_path \(d)/scgi;
            \(Self.upstreamBlock(gateways))
                server {
                    listen 127.0.0.1:\(port);
                    location / {
                        proxy_pass http://oops_gateways;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_set_header X-Forwarded-For $remote_addr;
                        proxy_connect_timeout 1s;
                        proxy_read_timeout 30s;
                        proxy_next_upstream error timeout;
                        proxy_next_upstream_tries 2;
                    }
                }
            }

            """
        try conf.write(toFile: d + "/nginx.conf", atomically: true, encoding: .utf8)
        child = try ChildProcess(exe, ["-p", d, "-c", d + "/nginx.conf", "-e", d + "/error.log"], logFile: d + "/stderr.log", name: "nginx")
        guard waitUntil(timeoutMs: 10_000, { HTTP.request("GET", "http://127.0.0.1:\(self.port)/healthz", timeoutS: 2).status != 0 }) else {
            let log = (try? String(contentsOfFile: d + "/stderr.log", encoding: .utf8)) ?? ""
            child.kill9()
            throw RuntimeError("nginx did not start: \(log.suffix(1000))")
        }
    }

    public func stop() {
        child.stop()
        dir.remove()
    }
}
