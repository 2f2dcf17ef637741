import Foundation
import JSON
import Runtime
import Store
import TestSupport
import XCTest

/// Several processes writing one SQLite file must lose nothing. The children are this same test
/// binary re-run with a filter that selects `testChildWriterProcess`, which works only when the
/// parent passes the shared directory in the environment.
final class SQLiteMultiProcessTests: XCTestCase {
    static let processes = 4
    static let perProcess = 300
    static let startBalance: Int64 = 500

    func testSeveralProcessesWritingOneFileLoseNothing() throws {
        let dir = TempDir("store-mp")
        defer { dir.remove() }
        let store = try StoreFactory.open(service: "shared", dataDir: dir.path, mongoURI: nil, log: testLog)
        try store.prepare(Self.collections, schemaVersion: 1)
        _ = try store.insert("counters", ["_id": "c", "n": 0, "balance": .int(Self.startBalance)])
        store.close()

        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        var children: [(ChildProcess, String)] = []
        for k in 0..<Self.processes {
            let logFile = "\(dir.path)/child-\(k).log"
            let c = try ChildProcess(exe, ["IntegrationTests.SQLiteMultiProcessTests/testChildWriterProcess"],
                                     env: ["OOPS_STORE_CHILD_DIR": dir.path, "OOPS_STORE_CHILD_ID": String(k)],
                                     logFile: logFile, name: "store-child-\(k)")
            children.append((c, logFile))
        }
        // Release the children together once all have opened the file, so their writes overlap.
        let ready = waitUntil(timeoutMs: 60_000) {
            (0..<Self.processes).allSatisfy { FileManager.default.fileExists(atPath: "\(dir.path)/ready-\($0)") }
        }
        XCTAssertTrue(ready, "children did not start")
        _ = FileManager.default.createFile(atPath: dir.path + "/go", contents: nil)
        var decrements = 0
        for (c, logFile) in children {
            XCTAssertTrue(waitUntil(timeoutMs: 180_000, intervalMs: 50) { !c.isRunning }, "\(c.name) did not finish")
            c.process.waitUntilExit()
            let out = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            XCTAssertEqual(c.process.terminationStatus, 0, out)
            guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix("CHILD-RESULT ") }),
                  let n = Int(line.split(separator: "=").last ?? "") else {
                XCTFail("\(c.name) reported nothing:\n\(out)")
                continue
            }
            decrements += n
        }

        let check = try StoreFactory.open(service: "shared", dataDir: dir.path, mongoURI: nil, log: testLog)
        defer { check.close() }
        let total = Self.processes * Self.perProcess
        XCTAssertEqual(try check.count("events"), total)
        let counter = try XCTUnwrap(check.get("counters", id: "c"))
        XCTAssertEqual(counter["n"], .int(Int64(total)))
        XCTAssertEqual(counter["log"]?.arrayValue?.count, total)
        XCTAssertEqual(Set(counter["log"]?.arrayValue ?? []).count, total)
        XCTAssertEqual(decrements, Int(Self.startBalance))
        XCTAssertEqual(counter["balance"], 0)
    }

    static let collections = [CollectionSpec("events", indexes: [IndexSpec(["writer"])]), CollectionSpec("counters")]

    /// The child side; skipped unless started by the test above.
    func testChildWriterProcess() throws {
        let env = ProcessInfo.processInfo.environment
        guard let dir = env["OOPS_STORE_CHILD_DIR"], let id = env["OOPS_STORE_CHILD_ID"] else {
            throw XCTSkip("runs only as a child process of testSeveralProcessesWritingOneFileLoseNothing")
        }
        let store = try StoreFactory.open(service: "shared", dataDir: dir, mongoURI: nil, log: testLog)
        defer { store.close() }
        // Every child prepares too, as every service instance does at start.
        try store.prepare(Self.collections, schemaVersion: 1)
        _ = FileManager.default.createFile(atPath: "\(dir)/ready-\(id)", contents: nil)
        guard waitUntil(timeoutMs: 60_000, intervalMs: 2, { FileManager.default.fileExists(atPath: dir + "/go") }) else {
            return XCTFail("the parent never said go")
        }
        var decrements = 0
        for i in 0..<Self.perProcess {
            let key = "\(id)-\(i)"
            guard case .created = try store.insert("events", ["_id": .string(key), "writer": .string(id)]) else {
                return XCTFail("event \(key) already existed")
            }
            XCTAssertNotNil(try store.update("counters", where: .id("c"), Update(inc: ["n": 1], push: ["log": .string(key)])))
            if try store.update("counters", where: .and([.id("c"), .gte("balance", 1)]), .inc("balance", by: -1)) != nil {
                decrements += 1
            }
        }
        // Unbuffered, so the line is in the log even if the runner exits abruptly afterwards.
        FileHandle.standardOutput.write(Data("CHILD-RESULT \(id) decrements=\(decrements)\n".utf8))
    }
}
