import Foundation
import JSON
import RPC
import Runtime
import Domain
import Store

/// `oopsctl migrate-to-mongodb <uri>`: copies each service's SQLite file in `dataDir` into
/// MongoDB (StoreMigration: one way, resumable), prints what it did per collection, then checks
/// that every collection has as many documents on both sides and that every wallet balance is
/// the sum of its ledger in MongoDB, with WalletSvc's own reconciliation (a WalletSvc started on
/// the target for the purpose). Exit status 0 only when everything matches.
func migrateToMongoDB(uri: String, dataDir: String) -> Int32 {
    let log = Logger(service: "oopsctl", instance: 0, level: .warn)
    let files = ServiceName.all.filter { FileManager.default.fileExists(atPath: "\(dataDir)/\($0).sqlite") }
    guard !files.isEmpty else {
        FileHandle.standardError.write("no SQLite file of any service in \(dataDir) (set OOPS_DATA_DIR): nothing to migrate\n".data(using: .utf8)!)
        return 1
    }
    do {
        let probe = try StoreFactory.open(service: ServiceName.wallet, dataDir: dataDir, mongoURI: uri, log: log)
        defer { probe.close() }
        try probe.ping()
    } catch {
        FileHandle.standardError.write("MongoDB: \((error as? StoreError)?.debugDescription ?? String(describing: error))\n".data(using: .utf8)!)
        return 1
    }
    var ok = true
    var copied = 0
    print("service    collection                 source   target  inserted rewritten  removed unchanged")
    for service in ServiceName.all {
        let path = "\(dataDir)/\(service).sqlite"
        guard FileManager.default.fileExists(atPath: path) else {
            print("\(service.padding(11))(no \(path): nothing to copy)")
            continue
        }
        do {
            let source = try SQLiteStore(path: path, maxConnections: 2, log: log)
            defer { source.close() }
            let target = try StoreFactory.open(service: service, dataDir: dataDir, mongoURI: uri, log: log)
            defer { target.close() }
            for r in try StoreMigration.copy(try source.collectionNames(), from: source, to: target) {
                print("\(service.padding(11))\(r.collection.padding(24))" + [r.sourceCount, r.targetCount, r.inserted, r.rewritten, r.removed, r.unchanged]
                    .map { String($0).leftPadded(9) }.joined() + (r.countsMatch ? "" : "  COUNTS DIFFER"))
                ok = ok && r.countsMatch
                copied += r.inserted + r.rewritten + r.removed
            }
        } catch let e as StoreError {
            FileHandle.standardError.write("\(service): \(e.debugDescription)\n".data(using: .utf8)!)
            return 1
        } catch {
            FileHandle.standardError.write("\(service): \(error)\n".data(using: .utf8)!)
            return 1
        }
    }
    print(copied == 0 ? "no change: the target was already an exact copy" : "\(copied) documents written; run again once the services are stopped, until no change")
    switch reconcileWallets(uri: uri) {
    case .success(let r):
        print("wallet reconciliation in MongoDB: \(r.serialized())")
        ok = ok && r["ok"] == true
    case .failure(let e):
        FileHandle.standardError.write("wallet reconciliation could not run: \(e)\n".data(using: .utf8)!)
        ok = false
    }
    print(ok ? "verified: counts match and every wallet reconciles" : "NOT verified: see above")
    return ok ? 0 : 1
}

/// Starts WalletSvc on the MongoDB `uri` on a private socket, calls `wallet.reconcile`, stops it.
private func reconcileWallets(uri: String) -> Result<JSON, RuntimeError> {
    let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path + "/WalletSvc"
    guard FileManager.default.isExecutableFile(atPath: bin) else { return .failure(RuntimeError("WalletSvc not found next to oopsctl (\(bin))")) }
    let dir = NSTemporaryDirectory() + "oopsctl-migrate-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let socket = "\(dir)/wallet-0.sock"
    let p = Process()
    p.executableURL = URL(fileURLWithPath: bin)
    p.arguments = ["--socket", socket]
    var env = ProcessInfo.processInfo.environment
    env["OOPS_MONGODB_URI"] = uri
    env["OOPS_RUN_DIR"] = dir
    env["OOPS_LOG_LEVEL"] = "error"
    p.environment = env
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return .failure(RuntimeError("cannot start WalletSvc: \(error)")) }
    defer {
        p.terminate()
        p.waitUntilExit()
    }
    let client = RPCClient(runDir: dir, service: ServiceName.wallet)
    defer { client.closeAll() }
    // Ready once rpc.health says ok (the store reachable and prepared).
    let deadline = Deadline.after(ms: 60_000)
    while !deadline.hasPassed {
        if p.isRunning, FileManager.default.fileExists(atPath: socket),
           let h = try? client.call(instancePath: socket, "rpc.health", ctx: .new(timeoutMs: 5000)), h["status"] == "ok" {
            do { return .success(try client.call(instancePath: socket, "wallet.reconcile", ctx: .new(timeoutMs: 600_000))) } catch {
                return .failure(RuntimeError("wallet.reconcile: \(error.message)"))
            }
        }
        guard p.isRunning else { return .failure(RuntimeError("WalletSvc exited with status \(p.terminationStatus)")) }
        usleep(200_000)
    }
    return .failure(RuntimeError("WalletSvc did not become ready on MongoDB within 60 s"))
}

extension String {
    fileprivate func padding(_ n: Int) -> String { count >= n ? self + " " : padding(toLength: n, withPad: " ", startingAt: 0) }
    fileprivate func leftPadded(_ n: Int) -> String { count >= n ? " " + self : String(repeating: " ", count: n - count) + self }
}
