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
