import XCTest
import Foundation
import JSON
import Runtime
import TestSupport

/// A bounded HTTP fuzzer against the Gateway of a whole process set: the cases of a fixed seed
/// and a few hundred from a seed drawn for this run (`HTTPFuzzer`), sent over raw sockets by a
/// few clients at once while a bystander keeps making normal authenticated calls.
///
/// Pass: no process of the set exited, every answer is well-formed HTTP/1.1 with an
/// `X-Request-Id` and, for a refusal, the JSON error body (the dashboard's pages for a browser
/// may be HTML), no 5xx but 503/504 with `Retry-After`
/// (and the 501/505 RFC 9110 gives for an unknown method, transfer coding or version), and the
/// bystander sees no error. A request the server still waits on (an incomplete body) may get
/// no answer; its connection is closed after a short wait.
///
/// Replay: `OOPS_FUZZ_SEED=<seed>` runs only that seed's cases, `OOPS_FUZZ_CASE=<index>` only
/// one of them; `OOPS_FUZZ_CASES` sets how many cases the run's seed makes.
final class HTTPFuzzSystemTests: XCTestCase {
    /// The seed whose cases every run sends.
    static let fixedSeed: UInt64 = 0x1518_F022_0000_0001
    static let fixedCases = 250
    static let runCases = 300
    /// Clients sending cases at once.
    static let clients = 8
    /// Fuzzing stops starting new cases after this long (the machine may be slow and shared).
    static let budgetS = 75.0

    func testFuzzedRequestsNeverCrashConfuseOrDisturbTheGateway() throws {
        let env = ProcessInfo.processInfo.environment
        let sys = try OOPSSystem(extraEnv: ["OOPS_RATE_USER_PER_S": "100000", "OOPS_RATE_USER_BURST": "100000"])
        defer { sys.stop() }
        let fuzzer = sys.merchant("fuzz", balancePaise: 50_000_000)
        let bystander = sys.merchant("bystander")
        let order = sys.call("POST", "/orders/create", token: fuzzer.token, body: OOPSSystem.orderBody("FZ-FIXTURE"))
        XCTAssertEqual(order.status, 201, order.text)
        let gen = HTTPFuzzer(token: fuzzer.token, orderId: order.body["id"]?.stringValue ?? "ord_missing")

        // Which cases: (seed, index) pairs.
        var plan: [(UInt64, Int)] = []
        if let s = env["OOPS_FUZZ_SEED"] {
            let seed = try XCTUnwrap(s.hasPrefix("0x") ? UInt64(s.dropFirst(2), radix: 16) : UInt64(s), "OOPS_FUZZ_SEED \(s) is not a number")
            if let one = env["OOPS_FUZZ_CASE"] {
                plan = [(seed, try XCTUnwrap(Int(one), "OOPS_FUZZ_CASE \(one) is not a number"))]
            } else {
                plan = (0..<(Int(env["OOPS_FUZZ_CASES"] ?? "") ?? Self.runCases)).map { (seed, $0) }
            }
        } else {
            let runSeed = UInt64.random(in: 1...UInt64.max)
            plan = (0..<Self.fixedCases).map { (Self.fixedSeed, $0) } + (0..<(Int(env["OOPS_FUZZ_CASES"] ?? "") ?? Self.runCases)).map { (runSeed, $0) }
            print("HTTP fuzz: fixed seed \(hex(Self.fixedSeed)) (\(Self.fixedCases) cases), this run's seed \(hex(runSeed)); replay with OOPS_FUZZ_SEED=<seed>")
        }

        // The processes of the set, to prove none exited or was replaced.
        let keys = ["sandbox", "auth-0", "wallet-0", "order-0", "parcelx-0", "gateway"]
        let pids = Dictionary(uniqueKeysWithValues: keys.map { ($0, sys.procs.child($0)?.pid ?? -1) })
        @Sendable func dead() -> [String] {
            keys.filter { k in
                guard let c = sys.procs.child(k) else { return true }
                return !c.isRunning || c.pid != pids[k]
            }
        }

        // The bystander: normal calls in a loop, each checked like any answer.
        let stop = Locked(false)
        let bystanderErrors = Locked<[String]>([])
        let bystanderCalls = Locked(0)
        let bystanderDone = DispatchSemaphore(value: 0)
        let port = sys.httpPort
        Thread.detachNewThread {
            var i = 0
            while !stop.current {
                let path = i % 2 == 0 ? "/auth/me" : "/wallet"
                i += 1
                let bytes = RawHTTPConnection.requestBytes("GET", path, headers: [("Authorization", "Bearer \(bystander.token)"), ("Connection", "close")])
                var problems: [String] = []
                if let c = try? RawHTTPConnection(port: port, timeoutS: 15) {
                    c.send(bytes)
                    let ex = c.readAnswers(firstS: 15, quietS: 2)
                    problems = ex.problems
                    if let r = ex.answers.first {
                        problems += HTTPWire.gatewayProblems(r)
                        if r.status != 200 { problems.append("status \(r.status): \(r.text.prefix(300))") }
                        if ex.answers.count > 1 { problems.append("\(ex.answers.count) answers") }
                    } else {
                        problems.append("no answer")
                    }
                } else {
                    problems.append("cannot connect")
                }
                bystanderCalls.withLock { $0 += 1 }
                if !problems.isEmpty {
                    let at = Date()
                    bystanderErrors.withLock { $0.append("GET \(path) at \(at): \(problems.joined(separator: "; "))") }
                }
                usleep(20_000)
            }
            bystanderDone.signal()
        }

        // The fuzzing clients take cases in turn.
        let next = Locked(0)
        let failures = Locked<[(HTTPFuzzCase, [String])]>([])
        let stats = Locked<[String: Int]>([:])
        let inFlight = Locked<[Int: HTTPFuzzCase]>([:])
        let deaths = Locked<[String]>([])
        let began = Date()
        let planned = plan
        inParallel(Self.clients) { _ in
            while true {
                let n: Int? = next.withLock { i in
                    guard i < planned.count, deaths.current.isEmpty, Date().timeIntervalSince(began) < Self.budgetS else { return nil }
                    i += 1
                    return i - 1
                }
                guard let n else { return }
                let fc = gen.makeCase(seed: planned[n].0, index: planned[n].1)
                inFlight.withLock { $0[n] = fc }
                let (problems, outcome) = Self.run(fc, port: port)
                inFlight.withLock { $0[n] = nil }
                stats.withLock { $0[outcome, default: 0] += 1 }
                if !problems.isEmpty {
                    failures.withLock { $0.append((fc, problems)) }
                }
                let gone = dead()
                if !gone.isEmpty {
                    // Name the cases that were on the wire when a process went away.
                    let suspects = [fc] + inFlight.current.values
                    deaths.withLock {
                        if $0.isEmpty {
                            $0.append("\(gone.joined(separator: ", ")) exited or restarted; cases on the wire then:\n"
                                      + suspects.map { Self.describe($0, [], token: gen.token) }.joined(separator: "\n"))
                        }
                    }
                    return
                }
            }
        }
        stop.withLock { $0 = true }
        XCTAssertEqual(bystanderDone.wait(timeout: .now() + 30), .success, "the bystander's last call did not finish")

        let ran = next.current
        let elapsed = Date().timeIntervalSince(began)
        print("HTTP fuzz: \(ran) of \(plan.count) cases in \(String(format: "%.1f", elapsed)) s; outcomes \(stats.current.sorted { $0.key < $1.key }); "
              + "bystander made \(bystanderCalls.current) calls")
        if ran < plan.count { print("HTTP fuzz: stopped at the \(Self.budgetS) s budget") }

        XCTAssertEqual(deaths.current, [], "a process of the set died")
        XCTAssertEqual(dead(), [], "processes that exited or were restarted")
        XCTAssertTrue(RedisServer.ping(port: sys.redis.port), "redis-server stopped answering")
        // One case of each kind of failure, first found first.
        let f = failures.current.sorted { ($0.0.seed, $0.0.index) < ($1.0.seed, $1.0.index) }
        var kinds: [String: (HTTPFuzzCase, [String])] = [:]
        var firstSeen: [String] = []
        for (fc, problems) in f {
            let key = Set(problems.map { String(($0.hasPrefix("answer ") ? String($0.drop { $0 != "(" }) : $0).prefix(50)) }).sorted().joined(separator: "|")
            if kinds[key] == nil { kinds[key] = (fc, problems); firstSeen.append(key) }
        }
        XCTAssertTrue(f.isEmpty, "\(f.count) fuzz cases broke the contract (\(firstSeen.count) kinds of failure); one case of each:\n"
                      + firstSeen.prefix(12).map { Self.describe(kinds[$0]!.0, kinds[$0]!.1, token: gen.token) }.joined(separator: "\n\n"))
        let b = bystanderErrors.current
        XCTAssertTrue(b.isEmpty, "the bystander saw \(b.count) errors in \(bystanderCalls.current) calls; the first ones:\n\(b.prefix(8).joined(separator: "\n"))")
        XCTAssertGreaterThan(bystanderCalls.current, 0, "the bystander made no call")
        // The Gateway still serves after it all.
        XCTAssertEqual(rawRequest(port: port, "GET", "/auth/me", token: bystander.token).status, 200)
    }

    /// Sends one case on a fresh connection and checks every answer; the problems found and a
    /// one-word outcome for the statistics.
    static func run(_ fc: HTTPFuzzCase, port: UInt16) -> ([String], String) {
        guard let c = try? RawHTTPConnection(port: port, timeoutS: 5) else { return (["cannot connect to the Gateway"], "no-connect") }
        for (i, w) in fc.writes.enumerated() {
            if !c.send(w) { break }
            if i < fc.writes.count - 1 { usleep(5_000) }
        }
        // A request the server still waits on gets no answer: give up on it after 2 s.
        let ex = c.readAnswers(headOnly: fc.headOnly, firstS: 2, quietS: 0.25)
        var problems = ex.problems
        for (i, r) in ex.answers.enumerated() {
            problems += HTTPWire.gatewayProblems(r, headOnly: fc.headOnly, htmlPages: fc.dashboard, also5xx: fc.also5xx).map { "answer \(i + 1) (\(r.status)): \($0)" }
        }
        let outcome = ex.answers.first.map { String($0.status) + (ex.answers.count > 1 ? "+" : "") } ?? (ex.closed ? "closed" : "silent")
        return (problems, outcome)
    }

    /// A case for a failure message: its seed and index (to replay it), what it is, its bytes
    /// (the fuzz merchant's token shortened), and the problems found.
    static func describe(_ fc: HTTPFuzzCase, _ problems: [String], token: String) -> String {
        var s = "seed \(hex(fc.seed)) case \(fc.index) [\(fc.kind)] (replay: OOPS_FUZZ_SEED=\(hex(fc.seed)) OOPS_FUZZ_CASE=\(fc.index))\n"
        s += "  request: \(HTTPWire.escape(fc.bytes, limit: 1500).replacingOccurrences(of: token, with: "<token>"))"
        for p in problems { s += "\n  - \(p)" }
        return s
    }
}

private func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
