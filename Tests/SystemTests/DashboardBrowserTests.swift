import XCTest
import Foundation
import JSON
import Runtime
import TestSupport
import Redis

/// The queue dashboard in a real browser: starts the whole system, prepares an admin, a
/// merchant and a failed job, and runs Tests/Python/browser/dashboard_test.py (Selenium driving
/// Debian's headless Chromium). Needs `apt-get install chromium chromium-driver` and
/// `pip install selenium`; skipped with that message when they are missing.
final class DashboardBrowserTests: XCTestCase {
    static let packagesHint = "needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver) and Selenium (python3 -m pip install selenium)"

    func repoRoot() -> String {
        // Tests/SystemTests/DashboardBrowserTests.swift → the package root.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    func run(_ exe: String, _ args: [String], env: [String: String] = [:], timeoutS: Double) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = TempDir("browser-out")
        defer { out.remove() }
        let file = out.path + "/out.txt"
        _ = FileManager.default.createFile(atPath: file, contents: nil)
        let h = FileHandle(forWritingAtPath: file)!
        p.standardOutput = h
        p.standardError = h
        do { try p.run() } catch { return (-1, "could not start \(exe): \(error)") }
        let deadline = Date().addingTimeInterval(timeoutS)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning { p.terminate(); p.waitUntilExit(); try? h.close(); return (-2, "timed out after \(timeoutS) s\n" + ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "")) }
        p.waitUntilExit()
        try? h.close()
        return (p.terminationStatus, (try? String(contentsOfFile: file, encoding: .utf8)) ?? "")
    }

    func testAdminUsesTheDashboardInARealBrowser() throws {
        let chromium = ProcessInfo.processInfo.environment["CHROMIUM_BIN"] ?? which("chromium") ?? ""
        let driver = ProcessInfo.processInfo.environment["CHROMEDRIVER_BIN"] ?? which("chromedriver") ?? ""
        guard !chromium.isEmpty, !driver.isEmpty else { throw XCTSkip("chromium or chromedriver not found: \(Self.packagesHint)") }
        guard let python = which("python3") else { throw XCTSkip("python3 not found: \(Self.packagesHint)") }
        guard run(python, ["-c", "import selenium"], timeoutS: 30).status == 0 else {
            throw XCTSkip("the selenium Python module is missing: \(Self.packagesHint)")
        }

        let sys = try OOPSSystem()
        defer { sys.stop() }
        let shop = sys.merchant("browser", balancePaise: 1_000_000)
        // A second merchant whose password the browser types in, to be refused.
        let merchantEmail = "browser-\(UInt32.random(in: 0...UInt32.max))@shop.test"
        let reg = sys.call("POST", "/auth/register", body: ["email": .string(merchantEmail), "password": "correct-horse-42", "name": "Shop", "phone": "9876543210"])
        XCTAssertEqual(reg.status, 201, reg.text)

        // A job the provider refuses for good; the name would run script if it were not escaped.
        let order = sys.call("POST", "/orders/create", token: shop.token,
                             body: OOPSSystem.orderBody("B-1", name: "<script>window.__oopsXSS=1</script> [sandbox:reject]"))
        XCTAssertEqual(order.status, 201, order.text)
        let jobId = "create-\(order.body["id"]?.stringValue ?? "")"
        let admin = sys.adminToken()
        XCTAssertTrue(waitUntil(timeoutMs: 15_000, intervalMs: 100) {
            sys.call("GET", "/admin/queues/api/parcelx-orders-queue/jobs/\(jobId)", token: admin).body["state"] == "failed"
        }, "the job never failed")

        let shots = ProcessInfo.processInfo.environment["OOPS_SCREENSHOT_DIR"] ?? "/tmp/oops-screenshots"
        let r = run(python, [repoRoot() + "/Tests/Python/browser/dashboard_test.py"], env: [
            "OOPS_BASE_URL": sys.base, "OOPS_ADMIN_EMAIL": sys.adminEmail, "OOPS_ADMIN_PASSWORD": sys.adminPassword,
            "OOPS_MERCHANT_EMAIL": merchantEmail, "OOPS_MERCHANT_PASSWORD": "correct-horse-42",
            "OOPS_FAILED_QUEUE": "parcelx-orders-queue", "OOPS_FAILED_JOB_ID": jobId, "OOPS_SCREENSHOT_DIR": shots,
            "CHROMIUM_BIN": chromium, "CHROMEDRIVER_BIN": driver,
        ], timeoutS: 180)
        XCTAssertEqual(r.status, 0, "browser test failed:\n\(r.output)\ngateway log:\n\(sys.procs.log("gateway").suffix(2000))")
        XCTAssertTrue(r.output.contains(" passed, 0 failed"), r.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: shots + "/overview.png"), "overview screenshot in \(shots)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: shots + "/job-failed.png"), "job screenshot in \(shots)")
    }

    /// The queue charts after a scripted burst: the per-minute columns on the page (HTML here,
    /// and in headless Chromium when it is installed, with a screenshot) are the counts in
    /// Redis, in BullMQ's metrics keys.
    func testChartsMatchTheCountsInRedis() throws {
        let sys = try OOPSSystem()
        defer { sys.stop() }
        let shop = sys.merchant("charts", balancePaise: 1_000_000)
        // 9 orders booked, 3 refused for good by the provider.
        for i in 0..<12 {
            let r = sys.call("POST", "/orders/create", token: shop.token, body: OOPSSystem.orderBody("C-\(i)", name: i % 4 == 3 ? "Refused [sandbox:reject]" : "Ravi Kumar"))
            XCTAssertEqual(r.status, 201, r.text)
        }
        let redis = try RedisClient(url: sys.redis.url)
        defer { redis.disconnect() }
        func perMinute(_ q: String, _ kind: String) throws -> [Int64] {
            let mk = "bull:\(q):metrics:\(kind)"
            let meta = try redis.run(["HMGET", mk, "count", "prevTS", "prevCount"]).arrayValue ?? []
            let v = meta.map { $0.stringValue.flatMap { Int64($0) } ?? 0 }
            let data = try redis.run(["LRANGE", mk + ":data", "0", "59"]).strings.map { Int64($0) ?? 0 }
            return (v.count == 3 && v[1] > 0 ? [v[0] - v[2]] : []) + data
        }
        let q = "parcelx-orders-queue"
        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 100) {
            ((try? perMinute(q, "completed")) ?? []).reduce(0, +) == 9 && ((try? perMinute(q, "failed")) ?? []).reduce(0, +) == 3
        }, "metrics: \((try? perMinute(q, "completed")) ?? []) \((try? perMinute(q, "failed")) ?? [])")
        var expected: [String: JSON] = [:]
        for name in ["parcelx-orders-queue", "parcelx-order-cancellation-queue", "parcelx-tracking-queue"] {
            expected[name] = ["completed": .array(try perMinute(name, "completed").map { .int($0) }), "failed": .array(try perMinute(name, "failed").map { .int($0) })]
        }

        // The page as HTML: each column's numbers.
        let page = HTTP.request("GET", sys.base + "/admin/queues", headers: ["Authorization": "Bearer \(sys.adminToken())"])
        XCTAssertEqual(page.status, 200)
        XCTAssertEqual(page.header("Content-Security-Policy")?.contains("script-src 'self'"), true)
        guard let start = page.text.range(of: "<svg class=\"chart\" data-chart=\"\(q)\""), let end = page.text[start.lowerBound...].range(of: "</svg>") else {
            return XCTFail("no chart for \(q)")
        }
        let svg = String(page.text[start.lowerBound..<end.upperBound])
        var shown = (completed: [Int64](repeating: 0, count: 60), failed: [Int64](repeating: 0, count: 60))
        let cols = svg.components(separatedBy: "<g data-minute=\"").dropFirst()
        XCTAssertEqual(cols.count, 60)
        for c in cols {
            let nums = c.split(separator: "\"").enumerated().filter { $0.offset % 2 == 0 }.prefix(3).compactMap { Int64($0.element) }
            guard nums.count == 3, (0..<60).contains(nums[0]) else { continue }
            shown.completed[Int(nums[0])] = nums[1]
            shown.failed[Int(nums[0])] = nums[2]
        }
        func padded(_ a: [JSON]?) -> [Int64] { Array(((a ?? []).compactMap(\.intValue) + Array(repeating: 0, count: 60)).prefix(60)) }
        XCTAssertEqual(shown.completed, padded(expected[q]?["completed"]?.arrayValue))
        XCTAssertEqual(shown.failed, padded(expected[q]?["failed"]?.arrayValue))
        XCTAssertEqual(shown.completed.reduce(0, +), 9)
        XCTAssertEqual(shown.failed.reduce(0, +), 3)

        // And in a real browser, with a screenshot.
        let chromium = ProcessInfo.processInfo.environment["CHROMIUM_BIN"] ?? which("chromium") ?? ""
        let driver = ProcessInfo.processInfo.environment["CHROMEDRIVER_BIN"] ?? which("chromedriver") ?? ""
        guard !chromium.isEmpty, !driver.isEmpty, let python = which("python3"), run(python, ["-c", "import selenium"], timeoutS: 30).status == 0 else {
            throw XCTSkip("the chart numbers match; the browser part \(Self.packagesHint)")
        }
        let shots = ProcessInfo.processInfo.environment["OOPS_SCREENSHOT_DIR"] ?? "/tmp/oops-screenshots"
        let r = run(python, [repoRoot() + "/Tests/Python/browser/charts_test.py"], env: [
            "OOPS_BASE_URL": sys.base, "OOPS_ADMIN_EMAIL": sys.adminEmail, "OOPS_ADMIN_PASSWORD": sys.adminPassword,
            "OOPS_EXPECTED_CHARTS": JSON.object(expected).serialized(), "OOPS_SCREENSHOT_DIR": shots,
            "CHROMIUM_BIN": chromium, "CHROMEDRIVER_BIN": driver,
        ], timeoutS: 180)
        XCTAssertEqual(r.status, 0, "browser test failed:\n\(r.output)")
        XCTAssertTrue(r.output.contains(" passed, 0 failed"), r.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: shots + "/charts.png"), "charts screenshot in \(shots)")
    }
}
