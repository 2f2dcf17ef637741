import XCTest
import Foundation
import JSON
import Runtime
import TestSupport

/// Schemathesis generates requests from `/openapi.json` and checks every answer against it:
/// no 5xx, documented statuses, content types and bodies, auth enforced, 405 with `Allow`.
/// Driven by scripts/schemathesis/run.sh as a merchant with approved KYC and money.
final class GatewaySchemathesisTests: XCTestCase {
    static var script: String {
        // Tests/SystemTests/<this file> -> the package root.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/schemathesis/run.sh").path
    }

    func testSchemathesisFindsNoServerErrorAndNoAnswerContradictingTheDocument() throws {
        try XCTSkipIf(which("schemathesis") == nil && which("st") == nil,
                      "schemathesis is not installed: python3 -m pip install schemathesis==4.32.5 (the test command's PIP_TEST list does this)")
        let sys = try OOPSSystem(extraEnv: ["OOPS_RATE_USER_PER_S": "100000", "OOPS_RATE_USER_BURST": "100000"])
        defer { sys.stop() }
        let m = sys.merchant("fuzz", approved: true, balancePaise: 10_000_000)
        XCTAssertEqual(sys.call("GET", "/kyc", token: m.token).body["status"], "approved")

        let out = TempDir("schemathesis")
        defer { out.remove() }
        let log = out.path + "/run.log"
        let p = try ChildProcess("/bin/bash", [Self.script, sys.base, m.token], env: ["ST_MAX_EXAMPLES": "15", "ST_SEED": "1"], logFile: log, name: "schemathesis")
        // CI time matters: the run takes about a minute; a hung one is stopped and fails.
        let finished = waitUntil(timeoutMs: 170_000, intervalMs: 500) { !p.isRunning }
        if !finished { p.stop(graceMs: 2000) }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(finished, "schemathesis did not finish in time:\n\(text.suffix(4000))")
        XCTAssertEqual(p.process.terminationStatus, 0, "schemathesis found problems:\n\(text.suffix(12_000))")
        XCTAssertTrue(text.contains("Tested:"), "schemathesis did not run: \(text.suffix(2000))")
        XCTAssertFalse(sys.procs.log("gateway").contains("\"level\":\"error\""), "the Gateway logged errors: \(sys.procs.log("gateway").suffix(3000))")
    }
}
