import XCTest
import JSON
import Runtime
import TestSupport
@testable import RPC

/// `Method.ownThread` on a real server and socket: every waiting call of such a method is
/// running at once, so the method itself decides what to admit (AuthSvc's hash gate). On the
/// shared handler pool only about as many calls as cores would start.
final class OwnThreadMethodTests: XCTestCase {
    func testEveryCallOfAnOwnThreadMethodRunsAtOnceAndOthersAreNotHeldUp() throws {
        let dir = TempDir("rpc-own")
        defer { dir.remove() }
        let log = Logger(service: "test", instance: 0, level: .error)
        let started = Locked(0)
        let release = DispatchSemaphore(value: 0)
        var hold = Method("hold", summary: "", roles: [], params: .empty, result: .anything) { _, _ in
            started.withLock { $0 += 1 }
            release.wait()
            return "released"
        }
        hold.ownThread = true
        let noop = Method("noop", summary: "", roles: [], params: .empty, result: .anything) { _, _ in .null }
        let server = RPCServer(dispatcher: Dispatcher(service: "t", instance: 0, methods: [hold, noop], log: log), log: log)
        try server.listen(path: "\(dir.path)/run/t-0.sock")
        defer { server.stop() }
        let client = RPCClient(runDir: "\(dir.path)/run", service: "t", poolSize: 1)
        defer { client.closeAll() }

        let calls = 48
        let answered = DispatchGroup()
        let results = Locked<[Result<JSON, RPCError>]>([])
        for _ in 0..<calls {
            answered.enter()
            client.callAsync("hold", ctx: RPCContext.new(actor: nil, timeoutMs: 60_000, requestId: nil)) { r in
                results.withLock { $0.append(r) }
                answered.leave()
            }
        }
        let allRunning = waitUntil(timeoutMs: 5_000, intervalMs: 10) { started.current == calls }
        XCTAssertTrue(allRunning, "only \(started.current) of \(calls) blocked calls are running")
        // A call of an ordinary method is answered while they all wait.
        XCTAssertNoThrow(try client.call("noop", ctx: RPCContext.new(actor: nil, timeoutMs: 30_000, requestId: nil)))

        for _ in 0..<calls { release.signal() }
        XCTAssertEqual(answered.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(results.current.filter { (try? $0.get()) == "released" }.count, calls)
    }
}
