import Foundation
import Harness
import Runtime

/// The seed's order-accept path rebuilt in Node (Express, node-sqlite3, BullMQ's addStandardJob),
/// kept outside the repository (`$OOPS_SEED_NODE_DIR`, else `../shared/anchors/seed-node` next
/// to the repository). `bench http` copies it under `.build/seed-node`, installs what its
/// `deps.sh` installs, and runs it as its own README does: redis-server without persistence,
/// `setup.js` for the merchants, `server.js` with 2 cluster workers, wrk with its `post_orders.lua`.
final class SeedNodeAnchor {
    let dir: String
    let port = freePort()
    let redisPort = freePort()
    private let procs: BenchProcs
    private let runDir: String
    private var env: [String: String]

    /// Nil with the reason when the anchor cannot run here (no Node, no anchor directory, deps.sh failed).
    static func start(_ procs: BenchProcs, merchants: Int) -> Result<SeedNodeAnchor, RuntimeError> {
        let environment = ProcessInfo.processInfo.environment
        let home = environment["OOPS_HOME"] ?? FileManager.default.currentDirectoryPath
        let source = environment["OOPS_SEED_NODE_DIR"] ?? URL(fileURLWithPath: home + "/../shared/anchors/seed-node").standardizedFileURL.path
        guard which("node") != nil else { return .failure(RuntimeError("node is not installed (the anchor's deps.sh installs it)")) }
        guard FileManager.default.fileExists(atPath: source + "/server.js") else {
            return .failure(RuntimeError("no Node anchor at \(source) (set OOPS_SEED_NODE_DIR)"))
        }
        do {
            let a = try SeedNodeAnchor(procs, source: source, copyTo: home + "/.build/seed-node", merchants: merchants)
            return .success(a)
        } catch let e as RuntimeError {
            return .failure(e)
        } catch {
            return .failure(RuntimeError("\(error)"))
        }
    }

    private init(_ procs: BenchProcs, source: String, copyTo: String, merchants: Int) throws {
        self.procs = procs
        dir = copyTo
        runDir = procs.dir + "/seed-node"
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        // A fresh copy of the anchor's own files; node_modules (what deps.sh unpacked) and .run stay.
        for name in try fm.contentsOfDirectory(atPath: source) where name != "node_modules" && name != ".run" {
            try? fm.removeItem(atPath: dir + "/" + name)
            try fm.copyItem(atPath: source + "/" + name, toPath: dir + "/" + name)
        }
        Self.chmodTree(dir)
        env = ["NODE_PATH": ProcessInfo.processInfo.environment["NODE_PATH"] ?? "/usr/share/nodejs:/usr/lib/x86_64-linux-gnu/nodejs"]
        if try run("/bin/bash", [dir + "/deps.sh"]) != 0 {
            throw RuntimeError("the anchor's deps.sh failed: \(procs.log("seed-node-cmd").suffix(400))")
        }
        guard let redis = which("redis-server") else { throw RuntimeError("redis-server is missing") }
        // As the anchor's bench.sh starts it: no persistence.
        try procs.start("seed-redis", redis, ["--bind", "127.0.0.1", "--port", "\(redisPort)", "--save", "", "--appendonly", "no",
                                              "--daemonize", "no", "--loglevel", "warning"])
        guard waitUntil({ RedisServer.ping(port: self.redisPort) }) else { throw RuntimeError("the anchor's redis-server did not start") }
        if try run(which("node")!, [dir + "/setup.js", "--db", runDir + "/seed.db", "--users", "\(merchants)",
                                    "--balance", "1000000000", "--out", tokensFile]) != 0 {
            throw RuntimeError("the anchor's setup.js failed: \(procs.log("seed-node-cmd").suffix(400))")
        }
        var e = env
        e["PATH"] = ProcessInfo.processInfo.environment["PATH"]
        try procs.start("node", which("node")!, [dir + "/server.js", "--port", "\(port)", "--workers", "2", "--db", runDir + "/seed.db",
                                                 "--redis-url", "redis://127.0.0.1:\(redisPort)"], env: e)
        guard waitUntil(timeoutMs: 30_000, { procs.log("node").contains("listening") }) else {
            throw RuntimeError("the anchor's server did not start: \(procs.log("node").suffix(400))")
        }
    }

    var tokensFile: String { runDir + "/tokens.txt" }
    var ordersURL: String { "http://127.0.0.1:\(port)/orders/create" }
    var script: String { dir + "/post_orders.lua" }

    /// wrk's environment for the anchor's script: its tokens and a tag that keeps ids unique.
    func wrkEnv(tag: String) -> [String: String] { ["TOKENS_FILE": tokensFile, "RUN_TAG": tag] }

    /// Runs a command to its end with its output in the bench log; its exit status.
    private func run(_ exe: String, _ args: [String]) throws -> Int32 {
        let p = try procs.start("seed-node-cmd", exe, args, env: env)
        p.process.waitUntilExit()
        procs.stop("seed-node-cmd")
        return p.process.terminationStatus
    }

    /// The copied files keep the read-only modes of the source; the copy must be replaceable next time.
    private static func chmodTree(_ path: String) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { return }
        chmod(path, isDir.boolValue ? 0o755 : ((fm.isExecutableFile(atPath: path) ? 0o755 : 0o644)))
        if isDir.boolValue, !path.hasSuffix("node_modules") {
            for c in (try? fm.contentsOfDirectory(atPath: path)) ?? [] { chmodTree(path + "/" + c) }
        }
    }
}
