import XCTest
import JSON
import RPC
import Runtime
import TestSupport

/// Store faults at start: an unreachable MongoDB makes the service report itself not ready
/// (and keep retrying) instead of crash-looping; a file that is not a database, or a newer
/// schema, stops it with a clear message.
final class StoreFaultSystemTests: XCTestCase {
    func testUnreachableMongoDBIsNotReadyNotACrashLoop() throws {
        let ps = ProcessSet(env: ["OOPS_MONGODB_URI": "mongodb://127.0.0.1:1/oops?serverSelectionTimeoutMS=300&connectTimeoutMS=300"])
        defer { ps.cleanup() }
        let c = try ps.start("wallet")
        let client = RPCClient(runDir: ps.runDir, service: "wallet")
        let h = try client.call("rpc.health", ctx: .new())
        XCTAssertEqual(h["status"], "degraded", h.serialized())
        XCTAssertEqual(h["checks"]?["startup"]?["ok"], false)
        XCTAssertThrowsError(try client.call("wallet.get", ctx: .new(actor: Actor(userId: "usr_x", role: .merchant)))) { e in
            XCTAssertEqual((e as? RPCError)?.code, ErrorCode.unavailable.rawValue, "no business method is served before the store is reachable: try again later")
        }
        sleep(3)
        XCTAssertTrue(c.isRunning, "still running after retries: \(ps.log("wallet-0").suffix(400))")
        XCTAssertFalse(ps.log("wallet-0").contains("Backtrac"), "no stack traces")
    }

    /// WalletSvc starts while its MongoDB is down: it serves as not ready and retries, and its
    /// start succeeds once MongoDB is up, after the RPC server is listening. At SIGTERM the RPC
    /// server must still stop first and the store close last; the late start used to register
    /// its stop steps after the server's, so the store closed while calls could still be draining.
    func testAServiceThatStartsLateStopsItsRPCServerBeforeItsStore() throws {
        let port = freePort()
        let ps = ProcessSet(env: ["OOPS_MONGODB_URI": "mongodb://127.0.0.1:\(port)/oops_late?serverSelectionTimeoutMS=300&connectTimeoutMS=300",
                                  "OOPS_LOG_LEVEL": "debug"])
        defer { ps.cleanup() }
        let wallet = try ps.start("wallet")
        let client = RPCClient(runDir: ps.runDir, service: "wallet")
        defer { client.closeAll() }
        func health() -> JSON? { try? client.call("rpc.health", ctx: .new()) }
        XCTAssertEqual(health()?["checks"]?["startup"]?["ok"], false, "not ready while MongoDB is down")
        let mongo = try MongoServer(port: port)
        defer { mongo.stop() }
        XCTAssertTrue(waitUntil(timeoutMs: 60_000) { health()?["status"] == "ok" }, "serving once MongoDB is up: \(ps.log("wallet-0").suffix(800))")
        XCTAssertEqual(wallet.stop(graceMs: 20_000), 0)
        let stops = ps.log("wallet-0").split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
            .filter { $0["msg"] == "stopping" }.compactMap { $0["part"]?.stringValue }
        // (Failed attempts released their store at once, before; the shutdown is what follows the server.)
        let server = try XCTUnwrap(stops.firstIndex(of: "rpc server"), "\(stops)")
        XCTAssertEqual(Array(stops[server...]), ["rpc server", "start retry", "wallet recovery sweep", "wallet store"])
    }

    func testAFileThatIsNotADatabaseStopsTheServiceWithAClearMessage() throws {
        let ps = ProcessSet()
        defer { ps.cleanup() }
        try "this is not a database, just text that happens to be here\n".write(toFile: ps.dataDir + "/order.sqlite", atomically: true, encoding: .utf8)
        let bin = productsDirectory() + "/OrderSvc"
        let c = try ChildProcess(bin, [], env: ps.env, logFile: ps.dir.path + "/order.log")
        c.process.waitUntilExit()
        XCTAssertNotEqual(c.process.terminationStatus, 0)
        let log = (try? String(contentsOfFile: ps.dir.path + "/order.log", encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("not a database") || log.contains("notADatabase"), log)
    }
}
