import XCTest
import JSON
import Runtime
@testable import RPC

/// How a service's parts start and stop: a failed start closes what it opened, and the parts
/// stop in reverse order of start, the RPC server first, however late the start succeeded.
final class ServiceStartTests: XCTestCase {
    private let log = Logger(service: "test", instance: 0, level: .error)
    private let config = Config.fromEnvironment([:])

    private struct Unreachable: TransientStartError { var isTransient: Bool { true } }
    private struct Broken: Error {}

    /// A build that opens `parts` in order (registering a stop step for each) and then fails
    /// with `failure(attempt)`, or succeeds when that is nil.
    private func build(_ parts: [String], events: Locked<[String]>, attempts: Locked<Int>,
                       failure: @escaping @Sendable (Int) -> Error?) -> @Sendable (ServiceEnvironment) throws -> ServiceParts {
        { env in
            let n = attempts.withLock { $0 += 1; return $0 }
            for p in parts {
                events.withLock { $0.append("open \(p) #\(n)") }
                env.onStop(p) { events.withLock { $0.append("close \(p) #\(n)") } }
            }
            if let e = failure(n) { throw e }
            return ServiceParts(methods: [])
        }
    }

    func testAFailedStartClosesWhatItOpenedLastFirst() {
        let events = Locked<[String]>([])
        let parts = StopGroup("process")
        XCTAssertThrowsError(try ServiceStart.start(build(["store", "queue"], events: events, attempts: Locked(0), failure: { _ in Broken() }),
                                                    name: "svc", config: config, log: log, parts: parts))
        XCTAssertEqual(events.current, ["open store #1", "open queue #1", "close queue #1", "close store #1"])
        parts.stop()
        XCTAssertEqual(events.current.count, 4, "nothing is closed twice")
    }

    func testPartsStopInReverseOrderOfStartAfterTheRPCServer() {
        let events = Locked<[String]>([])
        let parts = StopGroup("process")
        XCTAssertNoThrow(try ServiceStart.start(build(["store", "queue", "timer"], events: events, attempts: Locked(0), failure: { _ in nil }),
                                                name: "svc", config: config, log: log, parts: parts))
        parts.onStop("rpc server") { events.withLock { $0.append("close rpc server") } }
        parts.stop()
        XCTAssertEqual(events.current, ["open store #1", "open queue #1", "open timer #1",
                                        "close rpc server", "close timer #1", "close queue #1", "close store #1"])
    }

    /// The start fails (a dependency is unreachable) until the RPC server is already serving as
    /// not ready; the retry that finally succeeds must still stop after the server drained.
    func testAStartThatSucceedsLateStillStopsAfterTheRPCServer() throws {
        let events = Locked<[String]>([])
        let attempts = Locked(0)
        let parts = StopGroup("process")
        let dispatcher = try ServiceStart.start(build(["store", "queue"], events: events, attempts: attempts, failure: { $0 < 3 ? Unreachable() : nil }),
                                                name: "svc", config: config, log: log, parts: parts,
                                                quickTries: 1, quickPauseMs: 1, retryMs: 10)
        parts.onStop("rpc server") { events.withLock { $0.append("close rpc server") } }
        XCTAssertTrue(attempts.wait(until: { $0 >= 3 }, deadline: .after(ms: 60_000)))
        // The third attempt succeeded: the dispatcher serves (rpc.health no longer says starting).
        XCTAssertTrue(events.wait(until: { $0.contains("open queue #3") }, deadline: .after(ms: 60_000)))
        let healthy = waitFor { Self.health(dispatcher)?["checks"]?["startup"] == nil }
        XCTAssertTrue(healthy)
        parts.stop()
        XCTAssertEqual(events.current, ["open store #1", "open queue #1", "close queue #1", "close store #1",
                                        "open store #2", "open queue #2", "close queue #2", "close store #2",
                                        "open store #3", "open queue #3",
                                        "close rpc server", "close queue #3", "close store #3"])
    }

    private func waitFor(_ ok: () -> Bool) -> Bool {
        let d = Deadline.after(ms: 60_000)
        while !d.hasPassed { if ok() { return true }; usleep(10_000) }
        return false
    }

    private static func health(_ d: Dispatcher) -> JSON? {
        guard let out = d.handle(line: Array(#"{"jsonrpc":"2.0","id":1,"method":"rpc.health"}"#.utf8)) else { return nil }
        return (try? JSONParser.parse(out))?["result"]
    }
}
