import Foundation
import JSON
import RPC
import Runtime
import Store
import TestSupport
import XCTest

/// `oopsctl migrate-to-mongodb`: a running SQLite deployment is copied into MongoDB, again after
/// more traffic and with the services stopped, and the same process set then serves the same
/// merchants, balances and orders from MongoDB.
final class MigrationSystemTests: XCTestCase {
    private func oopsctl(_ args: [String], env: [String: String]) throws -> (status: Int32, out: String) {
        let out = Pipe()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: productsDirectory() + "/oopsctl")
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func testSQLiteDeploymentMovesToMongoDBResumablyAndServesTheSameData() throws {
        let sys = try OOPSSystem()
        defer { sys.stop() }
        let mongo = try TestMongo()
        defer { mongo.stop() }
        let env = ["OOPS_DATA_DIR": sys.procs.dataDir]

        let a = sys.merchant("mig-a", balancePaise: 500_000)
        let b = sys.merchant("mig-b", balancePaise: 200_000)
        var ids: [String] = []
        for (i, m) in [a, a, b].enumerated() {
            let r = sys.call("POST", "/orders/create", token: m.token, body: OOPSSystem.orderBody("MIG-\(i)"))
            XCTAssertEqual(r.status, 201, r.text)
            ids.append(r.body["id"]?.stringValue ?? "")
        }
        XCTAssertEqual(sys.call("POST", "/orders/\(ids[1])/cancel", token: a.token).status, 202)

        // First pass while everything runs.
        let first = try oopsctl(["migrate-to-mongodb", mongo.uri], env: env)
        XCTAssertEqual(first.status, 0, first.out)
        XCTAssertTrue(first.out.contains("verified: counts match and every wallet reconciles"), first.out)

        // More traffic after the first pass, then the services stop and the copy is finished.
        let late = sys.call("POST", "/orders/create", token: b.token, body: OOPSSystem.orderBody("MIG-late"))
        XCTAssertEqual(late.status, 201, late.text)
        ids.append(late.body["id"]?.stringValue ?? "")
        for id in ids where id != ids[1] {
            XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 100) { sys.call("GET", "/orders/\(id)", token: id == ids[2] || id == ids[3] ? b.token : a.token).body["status"] == "placed" })
        }
        XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 100) { sys.call("GET", "/orders/\(ids[1])", token: a.token).body["status"] == "cancelled" })
        let before = (a: sys.call("GET", "/wallet", token: a.token).body["balancePaise"], b: sys.call("GET", "/wallet", token: b.token).body["balancePaise"],
                      ordersA: sys.call("GET", "/orders", token: a.token).body["items"]?.arrayValue ?? [],
                      ordersB: sys.call("GET", "/orders", token: b.token).body["items"]?.arrayValue ?? [])
        for key in ["gateway", "auth-0", "wallet-0", "order-0", "parcelx-0"] { sys.procs.child(key)?.stop() }

        let second = try oopsctl(["migrate-to-mongodb", mongo.uri], env: env)
        XCTAssertEqual(second.status, 0, second.out)
        XCTAssertTrue(second.out.contains("documents written"), "the late order and the changed documents were copied: \(second.out)")
        let third = try oopsctl(["migrate-to-mongodb", mongo.uri], env: env)
        XCTAssertEqual(third.status, 0, third.out)
        XCTAssertTrue(third.out.contains("no change: the target was already an exact copy"), third.out)

        // Every document arrived as it was.
        for service in ["auth", "wallet", "order", "parcelx"] {
            let source = try SQLiteStore(path: "\(sys.procs.dataDir)/\(service).sqlite", maxConnections: 1, log: Logger(service: "test", instance: 0, level: .error))
            defer { source.close() }
            let target = try StoreFactory.open(service: service, dataDir: sys.procs.dataDir, mongoURI: mongo.uri, log: Logger(service: "test", instance: 0, level: .error))
            defer { target.close() }
            for c in try source.collectionNames() {
                XCTAssertEqual(try target.find(c, where: .all), try source.find(c, where: .all), "\(service) \(c)")
            }
        }

        // The same process set on MongoDB (same key files in the data dir) serves the same data.
        sys.procs.env["OOPS_MONGODB_URI"] = mongo.uri
        try FileManager.default.removeItem(atPath: sys.procs.dataDir + "/order.sqlite")
        for s in ["auth", "wallet", "order", "parcelx"] { try sys.procs.start(s) }
        try sys.procs.startBinary("Gateway", key: "gateway")
        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 200) { sys.call("GET", "/readyz").status == 200 }, sys.call("GET", "/readyz").text)
        XCTAssertEqual(sys.call("GET", "/wallet", token: a.token).body["balancePaise"], before.a)
        XCTAssertEqual(sys.call("GET", "/wallet", token: b.token).body["balancePaise"], before.b)
        XCTAssertEqual(sys.call("GET", "/orders", token: a.token).body["items"]?.arrayValue ?? [], before.ordersA)
        XCTAssertEqual(sys.call("GET", "/orders", token: b.token).body["items"]?.arrayValue ?? [], before.ordersB)
        let me = sys.call("GET", "/auth/me", token: a.token)
        XCTAssertEqual(me.status, 200, me.text)
        XCTAssertEqual(me.body["id"]?.stringValue ?? me.body["user"]?["id"]?.stringValue, a.userId, "the merchant's account came along: \(me.text)")
        let health = RPCClient(runDir: sys.procs.runDir, service: "order")
        defer { health.closeAll() }
        XCTAssertEqual(try health.call("rpc.health", ctx: .new())["checks"]?["store"]?["backend"], "mongodb")
    }
}
