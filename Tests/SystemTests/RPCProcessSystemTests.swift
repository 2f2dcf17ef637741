import XCTest
import JSON
import RPC
import Runtime
import TestSupport

/// JSON-RPC against real service processes: stdio mode, SIGTERM, and an instance killed with
/// `kill -9` in the middle of a load.
final class RPCProcessSystemTests: XCTestCase {
    func testStdioModeServesTheSameMethods() throws {
        let ps = ProcessSet()
        defer { ps.cleanup() }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: productsDirectory() + "/WalletSvc")
        p.arguments = ["--stdio"]
        var env = ProcessInfo.processInfo.environment
        for (k, v) in ps.env { env[k] = v }
        p.environment = env
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = FileHandle.nullDevice
        try p.run()
        let lines = [
            #"{"jsonrpc":"2.0","method":"rpc.health","id":1}"#,
            #"{"jsonrpc":"2.0","method":"wallet.get","id":2,"params":{"ctx":{"actor":{"userId":"usr_stdio","role":"merchant"}}}}"#,
            #"{"jsonrpc":"2.0","method":"nope","id":3}"#,
        ]
        input.fileHandleForWriting.write((lines.joined(separator: "\n") + "\n").data(using: .utf8)!)
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let answers = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
        XCTAssertEqual(answers.count, 3, String(decoding: data, as: UTF8.self))
        XCTAssertEqual(answers.first { $0["id"] == 1 }?["result"]?["service"], "wallet")
        XCTAssertEqual(answers.first { $0["id"] == 2 }?["result"]?["balancePaise"], 0)
        XCTAssertEqual(answers.first { $0["id"] == 3 }?["error"]?["code"], -32601)
        XCTAssertEqual(p.terminationStatus, 0)
    }

    func testSIGTERMDrainsAndExitsZero() throws {
        let ps = ProcessSet()
        defer { ps.cleanup() }
        for s in ["auth", "wallet"] {
            let c = try ps.start(s)
            XCTAssertEqual(c.stop(graceMs: 10_000), 0, "\(s) exits 0 on SIGTERM: \(ps.log("\(s)-0").suffix(500))")
            XCTAssertFalse(FileManager.default.fileExists(atPath: "\(ps.runDir)/\(s)-0.sock"), "\(s) removes its socket")
        }
    }

    func testCallersFailOverWhenAnInstanceIsKilledMidLoad() throws {
        let ps = ProcessSet()
        defer { ps.cleanup() }
        let victim = try ps.start("wallet", instance: 0)
        try ps.start("wallet", instance: 1)
        let client = RPCClient(runDir: ps.runDir, service: "wallet")
        let ok = Locked(0), unavailable = Locked(0), other = Locked<[String]>([])
        let maxNanos = Locked<UInt64>(0)
        let group = DispatchGroup()
        for t in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                for i in 0..<150 {
                    let t0 = Clock.monotonicNanos()
                    do {
                        _ = try client.call("wallet.get", ctx: .new(actor: Actor(userId: "usr_\(t)_\(i % 5)", role: .merchant), timeoutMs: 3000))
                        ok.withLock { $0 += 1 }
                    } catch let e as RPCError {
                        if e.code == ErrorCode.unavailable.rawValue { unavailable.withLock { $0 += 1 } } else { other.withLock { $0.append(e.description) } }
                    } catch {
                        other.withLock { $0.append("\(error)") }
                    }
                    let dt = Clock.monotonicNanos() - t0
                    maxNanos.withLock { $0 = max($0, dt) }
                }
                group.leave()
            }
        }
        usleep(150_000)
        victim.kill9()
        XCTAssertEqual(group.wait(timeout: .now() + 60), .success, "nothing hangs")
        XCTAssertEqual(ok.current + unavailable.current, 1200, "every call ends: \(other.current.prefix(3))")
        XCTAssertLessThanOrEqual(unavailable.current, 50, "only calls already written to the dead instance fail")
        XCTAssertLessThan(maxNanos.current, 3_500_000_000, "no call waits past its deadline")
        // After the kill, calls keep working on the live instance.
        for _ in 0..<20 {
            XCTAssertNoThrow(try client.call("wallet.get", ctx: .new(actor: Actor(userId: "usr_after", role: .merchant))))
        }
    }
}
