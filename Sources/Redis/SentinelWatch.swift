import CHiredis
import Foundation
import Runtime

/// Listens for `+switch-master` on the sentinels, one thread per process and deployment (list of
/// sentinels and master name), and counts the switches it hears. A `RedisClient` remembers the
/// count it connected at and reconnects when the count moved, so every connection leaves a master
/// that Sentinel replaced at once — also one that is still up and taking writes (a manual
/// failover, a network split), which would otherwise keep them until Sentinel reconfigures it.
final class SentinelWatch: Sendable {
    let sentinels: [RedisAddress]
    let masterName: String
    private let switches = Locked(0)

    /// Switches heard so far.
    var generation: Int { switches.current }

    private static let all = Locked<[String: SentinelWatch]>([:])

    /// The watch of this deployment, started on first use.
    static func shared(sentinels: [RedisAddress], masterName: String) -> SentinelWatch {
        let key = masterName + "@" + sentinels.map { "\($0.host):\($0.port)" }.joined(separator: ",")
        return all.withLock { m in
            if let w = m[key] { return w }
            let w = SentinelWatch(sentinels: sentinels, masterName: masterName)
            m[key] = w
            let t = Thread { w.run() }
            t.name = "redis-sentinel-watch"
            t.start()
            return w
        }
    }

    private init(sentinels: [RedisAddress], masterName: String) {
        self.sentinels = sentinels
        self.masterName = masterName
    }

    /// Subscribes on one sentinel after the other; a broken subscription moves to the next one
    /// (and counts as a switch, since one may have been missed meanwhile).
    private func run() {
        var i = 0
        var subscribedOnce = false
        while true {
            let s = sentinels[i % sentinels.count]
            i += 1
            guard let c = redisConnectWithTimeout(s.host, Int32(s.port), timeval(tv_sec: 1, tv_usec: 0)) else { usleep(500_000); continue }
            defer { redisFree(c) }
            if c.pointee.err != 0 { usleep(500_000); continue }
            _ = redisEnableKeepAlive(c)
            // Block until a message comes; a sentinel host that vanishes without closing the socket
            // is noticed by TCP keepalive (hiredis: 15 s), and the next sentinel is asked.
            _ = redisSetTimeout(c, timeval(tv_sec: 0, tv_usec: 0))
            guard let r = Self.subscribe(c) else { continue }
            freeReplyObject(r)
            if subscribedOnce { switches.withLock { $0 += 1 } }
            subscribedOnce = true
            while true {
                var raw: UnsafeMutableRawPointer?
                guard redisGetReply(c, &raw) == REDIS_OK, let raw else { break }
                let reply = raw.assumingMemoryBound(to: redisReply.self).pointee
                // ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]
                if reply.type == REDIS_REPLY_ARRAY, reply.elements == 3, let e = reply.element[2], e.pointee.type == REDIS_REPLY_STRING,
                   let text = e.pointee.str.map({ String(cString: $0) }), text.split(separator: " ").first.map(String.init) == masterName {
                    switches.withLock { $0 += 1 }
                }
                freeReplyObject(raw)
            }
        }
    }

    private static func subscribe(_ c: UnsafeMutablePointer<redisContext>) -> UnsafeMutableRawPointer? {
        let args = ["SUBSCRIBE", "+switch-master"]
        let cstrs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        defer { for p in cstrs { free(p) } }
        var argv: [UnsafePointer<CChar>?] = cstrs.map { $0.map { UnsafePointer($0) } }
        let lens = args.map { $0.utf8.count }
        return argv.withUnsafeMutableBufferPointer { a in lens.withUnsafeBufferPointer { l in redisCommandArgv(c, Int32(args.count), a.baseAddress, l.baseAddress) } }
    }
}
