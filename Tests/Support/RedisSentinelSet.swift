import Foundation
import Redis
import Runtime
import XCTest

/// Redis as a Sentinel deployment runs it: a master, one replica and three redis-sentinel
/// processes (Debian's `redis-sentinel`) watching the master under the name `oops`, quorum 2.
/// Sentinels declare the master down after `downAfterMs` and fail over quickly, so a test can
/// kill the master and wait for the replica to take over.
public final class RedisSentinelSet: Sendable {
    public let masterName = "oops"
    /// The two data servers; which one is master changes with failovers (`masterPort()`).
    public let servers: [RedisServer]
    public let sentinelPorts: [UInt16]
    public let dir: TempDir
    private let sentinels: Locked<[ChildProcess]>

    /// `host:port,…` of the sentinels, the form of `OOPS_REDIS_SENTINELS`.
    public var sentinelList: String { sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",") }
    /// The URL every Redis user of OOPS builds from the variables below (without WAIT).
    public var url: String { "redis-sentinel://\(sentinelList)/\(masterName)" }
    public var env: [String: String] { ["OOPS_REDIS_SENTINELS": sentinelList, "OOPS_REDIS_MASTER_NAME": masterName] }

    public init(downAfterMs: Int = 1000, failoverTimeoutMs: Int = 3000) throws {
        guard let exe = which("redis-sentinel") else {
            throw missingTestTool("redis-sentinel not found; the test command installs it (apt-get install redis-sentinel)")
        }
        let master = try RedisServer()
        let replica = try RedisServer(extraArgs: ["--replicaof", "127.0.0.1", "\(master.port)"])
        servers = [master, replica]
        dir = TempDir("sentinels")
        var ports: [UInt16] = []
        var procs: [ChildProcess] = []
        for i in 0..<3 {
            let port = freePort()
            let conf = "\(dir.path)/sentinel-\(i).conf"
            let text = """
                port \(port)
                bind 127.0.0.1
                daemonize no
                dir \(dir.path)
                sentinel monitor \(masterName) 127.0.0.1 \(master.port) 2
                sentinel down-after-milliseconds \(masterName) \(downAfterMs)
                sentinel failover-timeout \(masterName) \(failoverTimeoutMs)
                sentinel parallel-syncs \(masterName) 1

                """
            try text.write(toFile: conf, atomically: true, encoding: .utf8)
            procs.append(try ChildProcess(exe, [conf], logFile: "\(dir.path)/sentinel-\(i).log", name: "redis-sentinel-\(i)"))
            ports.append(port)
        }
        sentinelPorts = ports
        sentinels = Locked(procs)
        // Ready when the replica is in sync and every sentinel knows the replica and the two others.
        let ready = waitUntil(timeoutMs: 30_000, intervalMs: 100) {
            guard let role = try? RedisClient(url: replica.url, timeoutMs: 1000).command(["ROLE"]).arrayValue,
                  role.count >= 4, role[3].stringValue == "connected" else { return false }
            return ports.allSatisfy { p in
                guard let c = try? RedisClient(url: "redis://127.0.0.1:\(p)", timeoutMs: 1000),
                      let reps = try? c.command(["SENTINEL", "replicas", "oops"]).arrayValue,
                      let others = try? c.command(["SENTINEL", "sentinels", "oops"]).arrayValue else { return false }
                return reps.count == 1 && others.count == 2
            }
        }
        if !ready {
            stop()
            throw RuntimeError("redis sentinels did not become ready (logs in \(dir.path))")
        }
    }

    /// The master port the first answering sentinel names.
    public func masterPort() -> UInt16? {
        for p in sentinelPorts {
            guard let c = try? RedisClient(url: "redis://127.0.0.1:\(p)", timeoutMs: 1000),
                  let a = try? c.command(["SENTINEL", "get-master-addr-by-name", masterName]).arrayValue, a.count == 2,
                  let port = a[1].stringValue.flatMap({ UInt16($0) }) else { continue }
            return port
        }
        return nil
    }

    public func server(port: UInt16) -> RedisServer? { servers.first { $0.port == port } }

    /// `kill -9` of the current master, then waits until the sentinels name the other server and
    /// it answers as master. Returns the killed server (restart it to have it rejoin as replica).
    @discardableResult
    public func failover(timeoutMs: Int = 60_000) throws -> RedisServer {
        guard let old = masterPort(), let dead = server(port: old) else { throw RuntimeError("no master known to the sentinels") }
        dead.kill9()
        let switched = waitUntil(timeoutMs: timeoutMs, intervalMs: 100) {
            guard let now = self.masterPort(), now != old,
                  let role = try? RedisClient(url: "redis://127.0.0.1:\(now)", timeoutMs: 1000).command(["ROLE"]).arrayValue
            else { return false }
            return role.first?.stringValue == "master"
        }
        guard switched else { throw RuntimeError("sentinels did not fail over from port \(old) (logs in \(dir.path))") }
        return dead
    }

    /// `SENTINEL FAILOVER`: promotes the replica while the master stays up. Asked again while the
    /// sentinel has not yet got a fresh enough report from the replica (NOGOODSLAVE).
    public func manualFailover(timeoutMs: Int = 30_000) throws {
        let sentinel = try RedisClient(url: "redis://127.0.0.1:\(sentinelPorts[0])")
        var last = ""
        let ok = waitUntil(timeoutMs: timeoutMs, intervalMs: 200) {
            let r = try? sentinel.command(["SENTINEL", "failover", self.masterName])
            last = "\(r.map { "\($0)" } ?? "no answer")"
            return r?.stringValue == "OK"
        }
        guard ok else { throw RuntimeError("SENTINEL FAILOVER refused: \(last)") }
    }

    public func stop() {
        sentinels.withLock { for s in $0 { s.stop() } }
        for s in servers { s.stop() }
        dir.remove()
    }
}
