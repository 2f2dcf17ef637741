import Foundation
import JSON
import RPC
import Redis
import Runtime
import Domain

/// `/readyz`: every instance of every service answers `rpc.health` (which includes its store),
/// and Redis answers PING. Ready only when each service has a healthy instance and Redis is up.
enum Readiness {
    static func check(_ g: Gateway) -> JSON {
        var services: [String: JSON] = [:]
        var ready = true
        let results = Locked<[String: [JSON]]>([:])
        let group = DispatchGroup()
        for s in ServiceName.all {
            let client = g.client(s)
            let paths = client.instancePaths()
            if paths.isEmpty { results.withLock { $0[s] = [] } }
            for p in paths {
                group.enter()
                DispatchQueue.global().async {
                    let name = ((p as NSString).lastPathComponent as NSString).deletingPathExtension
                    var entry: JSON
                    do {
                        let h = try client.call(instancePath: p, "rpc.health", ctx: .new(timeoutMs: 1000))
                        entry = h
                        entry["instanceName"] = .string(name)
                    } catch {
                        entry = ["instanceName": .string(name), "status": "down", "error": .string((error as? RPCError)?.message ?? String(describing: error))]
                    }
                    results.withLock { $0[s, default: []].append(entry) }
                    group.leave()
                }
            }
        }
        var redisOK = false
        var redisError: String?
        do {
            let r = try RedisClient(url: g.redisURL, timeoutMs: 1000)
            redisOK = (try r.command(["PING"])).stringValue == "PONG"
            r.disconnect()
        } catch {
            redisError = String(describing: error)
        }
        _ = group.wait(timeout: .now() + .seconds(2))
        for s in ServiceName.all {
            let inst = (results.current[s] ?? []).sorted { ($0["instanceName"]?.stringValue ?? "") < ($1["instanceName"]?.stringValue ?? "") }
            let healthy = inst.filter { $0["status"] == "ok" }.count
            if healthy == 0 { ready = false }
            services[s] = ["healthy": .int(Int64(healthy)), "instances": .array(inst)]
        }
        if !redisOK { ready = false }
        // Firing alerts, gathered from the instances' health checks (information; readiness is unaffected).
        var alerts: [JSON] = []
        for inst in results.current[ServiceName.parcelx] ?? [] {
            if let a = inst["checks"]?["failedJobSpike"], a["firing"] == true {
                var x = a
                x["ok"] = nil
                x["instance"] = inst["instanceName"]
                alerts.append(x)
            }
        }
        var redis: JSON = ["ok": .bool(redisOK)]
        if let e = redisError { redis["error"] = .string(e) }
        return ["status": .string(ready ? "ok" : "unavailable"), "services": .object(services), "redis": redis, "alerts": .array(alerts)]
    }
}
