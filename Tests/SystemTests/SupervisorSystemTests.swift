import XCTest
import JSON
import Runtime
import TestSupport

/// The run command's process manager for real: supervisord with the project's supervisor.conf
/// starts every process, `/readyz` turns green, and a service killed with `kill -9` is healed.
final class SupervisorSystemTests: XCTestCase {
    func testSupervisorStartsEverythingAndHealsAKilledService() throws {
        guard let supervisord = which("supervisord") else { throw XCTSkip("supervisord is not installed (the test command installs Debian's supervisor)") }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let dir = TempDir("oops-sup")
        defer { dir.remove() }
        let redisPort = freePort(), httpPort = freePort(), adminPort = freePort(), sandboxPort = freePort()
        let env: [String: String] = [
            "OOPS_HOME": repo, "OOPS_BIN": productsDirectory(), "OOPS_RUN_DIR": dir.path + "/run", "OOPS_DATA_DIR": dir.path + "/data",
            "OOPS_LOG_DIR": dir.path + "/log", "OOPS_REDIS_DIR": dir.path + "/redis", "OOPS_REDIS_PORT": "\(redisPort)",
            "OOPS_REDIS_URL": "redis://127.0.0.1:\(redisPort)", "OOPS_START_REDIS": "true", "OOPS_START_REDIS_HA": "false", "OOPS_START_API": "true",
            "OOPS_START_WORKERS": "true", "OOPS_START_SANDBOX": "true", "OOPS_HTTP_ADDR": "127.0.0.1:\(httpPort)",
            "OOPS_ADMIN_ADDR": "127.0.0.1:\(adminPort)",
            "OOPS_SANDBOX_ADDR": "127.0.0.1:\(sandboxPort)", "PARCELX_BASE_URL": "http://127.0.0.1:\(sandboxPort)",
        ]
        for d in ["run", "data", "log", "redis"] { try FileManager.default.createDirectory(atPath: dir.path + "/" + d, withIntermediateDirectories: true) }
        chmod(dir.path + "/run", 0o750)
        let sup = try ChildProcess(supervisord, ["-n", "-c", repo + "/supervisor.conf"], env: env, logFile: dir.path + "/supervisord.out")
        defer { _ = sup.stop(graceMs: 20_000) }
        let ready = { HTTP.request("GET", "http://127.0.0.1:\(httpPort)/readyz", timeoutS: 3) }
        XCTAssertTrue(waitUntil(timeoutMs: 30_000, intervalMs: 200) { ready().status == 200 }, "ready: \(ready().text)")

        // kill -9 the order service; supervisor restarts it and /readyz recovers.
        let pidText = (try? String(contentsOfFile: dir.path + "/run/supervisord.pid", encoding: .utf8)) ?? ""
        XCTAssertFalse(pidText.isEmpty)
        let out = Pipe()
        let ctl = Process()
        ctl.executableURL = URL(fileURLWithPath: which("supervisorctl") ?? "/usr/bin/supervisorctl")
        ctl.arguments = ["-c", repo + "/supervisor.conf", "pid", "api:order-0"]
        var e = ProcessInfo.processInfo.environment
        for (k, v) in env { e[k] = v }
        ctl.environment = e
        ctl.standardOutput = out
        try ctl.run()
        ctl.waitUntilExit()
        let pid = Int32(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertGreaterThan(pid, 0)
        kill(pid, SIGKILL)
        XCTAssertTrue(waitUntil(timeoutMs: 5_000, intervalMs: 20) { ready().status == 503 }, "readyz shows the dead service")
        XCTAssertTrue(waitUntil(timeoutMs: 20_000, intervalMs: 200) { ready().status == 200 }, "healed: \(ready().text)")
        // Which instances are healthy is operator data, on the admin listener.
        XCTAssertEqual(HTTP.request("GET", "http://127.0.0.1:\(adminPort)/readyz", timeoutS: 3).body["services"]?["order"]?["healthy"], 1)
    }
}
