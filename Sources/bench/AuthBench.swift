import Crypto
import Foundation
import JSON
import RPC
import Runtime

/// `bench auth`: logins/s through a real AuthSvc over RPC (bound by argon2id, so the single hash
/// and verify times are reported beside it) and in-process JWT verifications/s (what the Gateway
/// does per request) beside raw HMAC-SHA256/s over the same bytes.
enum AuthBench {
    static func run(_ report: Report, seconds: Double) throws {
        print("auth: logins over RPC (argon2id-bound), JWT verify in-process vs raw HMAC-SHA256")
        let cores = ProcessInfo.processInfo.activeProcessorCount

        // argon2id alone, in this process.
        var hashS = Samples(), verifyS = Samples()
        var h = ""
        for i in 0..<5 {
            let t0 = Clock.monotonicNanos()
            h = try PasswordHasher.hash("correct-horse-\(i)")
            hashS.add(Clock.monotonicNanos() - t0)
        }
        for i in 0..<5 {
            let t0 = Clock.monotonicNanos()
            _ = PasswordHasher.verify("correct-horse-\(i)", hash: h)
            verifyS.add(Clock.monotonicNanos() - t0)
        }
        let verifyMs = verifyS.p50 / 1000
        report.add(BenchRow(suite: "auth", name: "argon2id hash (PasswordHasher.hash), single", value: hashS.p50 / 1000, unit: "ms",
                            baselineName: nil, baseline: nil, note: String(format: "verify %.1f ms; libsodium interactive limits (64 MiB)", verifyMs)))

        let sys = try BenchSystem("auth", parts: [.services])
        defer { sys.cleanup() }
        let m = try sys.merchant(topups: 0)
        _ = m
        let email = "login-\(benchTag())@shop.test"
        let auth = sys.rpc("auth", poolSize: 2)
        defer { auth.closeAll() }
        _ = try auth.call("auth.register", ["email": .string(email), "password": "correct-horse-42", "name": "Bench", "phone": "9876543210"],
                          ctx: .new(actor: nil, timeoutMs: 30_000))
        for clients in [1, cores * 2] {
            let r = runLoad(threads: clients, seconds: seconds) { _ in
                (try? auth.call("auth.login", ["email": .string(email), "password": "correct-horse-42"], ctx: .new(actor: nil, timeoutMs: 30_000))) != nil
            }
            // One verify per login; AuthSvc runs at most max(2, cores) hashes at once.
            let ideal = Double(min(clients, max(2, cores))) * 1000 / verifyMs
            report.add(BenchRow(suite: "auth", name: "auth.login over RPC, \(clients) client(s)", value: Double(r.ops) / r.elapsed, unit: "logins/s",
                                baselineName: "argon2id verifies/s at that parallelism", baseline: ideal,
                                note: String(format: "p50 %.1f ms, p99 %.1f ms", r.samples.p50 / 1000, r.samples.p99 / 1000)))
        }

        // JWT verify as the Gateway does it, against HMAC over the same signing input.
        let key = Sodium.randomBytes(32)
        let signer = JWTSigner(kid: "k1", keys: ["k1": key])
        let now = Int64(Date().timeIntervalSince1970)
        let token = signer.sign(["sub": "usr_01JBENCHBENCHBENCHBENCHBENC", "role": "merchant", "iat": .int(now), "exp": .int(now + 900),
                                 "jti": "jti_bench"])
        let input = Array(token.split(separator: ".").prefix(2).joined(separator: ".").utf8)
        let jwt = runLoad(threads: 1, seconds: seconds) { _ in (try? signer.verify(token, nowSeconds: now)) != nil }
        let hmac = runLoad(threads: 1, seconds: seconds) { _ in Sodium.hmacSHA256(key: key, input).count == 32 }
        report.add(BenchRow(suite: "auth", name: "JWT verify in-process (JWTSigner.verify), 1 thread", value: Double(jwt.ops) / jwt.elapsed, unit: "ops/s",
                            baselineName: "HMAC-SHA256 of the same \(input.count) bytes", baseline: Double(hmac.ops) / hmac.elapsed,
                            note: String(format: "%.1f µs per verify", jwt.elapsed * 1e6 / Double(max(jwt.ops, 1)))))
    }
}
