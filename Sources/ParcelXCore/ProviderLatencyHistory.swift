import Foundation
import JSON
import Redis
import Runtime
import HTTPClient

/// Provider latency over time, for the dashboard's chart: every sample period each ParcelXSvc
/// instance pushes its gate's p50/p90/p99 (over its latest 1024 answers) and how many calls were
/// answered since the last sample onto `oops:parcelx:latency:<instance>` in Redis (newest first,
/// the latest `keep` samples). A period without answers pushes nothing, so old quantiles are not
/// drawn as new ones.
final class ProviderLatencyHistory: Sendable {
    static let keyPrefix = "oops:parcelx:latency:"
    let redis: RedisClient
    let keep: Int
    private let lastAnswered = Locked(0)

    init(redisURL: String, keep: Int) throws {
        redis = try RedisClient(url: redisURL, clientName: "oops:parcelx:latency")
        self.keep = keep
    }

    func record(_ s: ProviderGateState, instance: Int, nowMs: Int64 = Clock.wallMillis()) throws {
        let answered = lastAnswered.withLock { last -> Int in
            defer { last = s.answeredTotal }
            return s.answeredTotal - last
        }
        guard answered > 0 else { return }
        var q: [String: JSON] = [:]
        for (p, v) in s.latencyQuantiles { q["p\(Int((p * 100).rounded()))"] = .double(v * 1000) }
        let sample: JSON = ["at": .int(nowMs), "answered": .int(Int64(answered)), "ms": .object(q)]
        let key = Self.keyPrefix + String(instance)
        _ = try redis.pipeline([["LPUSH", key, sample.serialized()], ["LTRIM", key, "0", String(keep - 1)]])
    }

    /// Every instance's samples, newest first.
    func read(limit: Int) throws -> [String: [JSON]] {
        var out: [String: [JSON]] = [:]
        var cursor = "0"
        var keys: [String] = []
        repeat {
            let r = try redis.run(["SCAN", cursor, "MATCH", Self.keyPrefix + "*", "COUNT", "100"]).arrayValue ?? []
            cursor = r.first?.stringValue ?? "0"
            keys += (r.count > 1 ? r[1].strings : [])
        } while cursor != "0" && keys.count < 64
        for k in Set(keys).prefix(64) {
            let items = try redis.run(["LRANGE", k, "0", String(max(limit, 1) - 1)]).strings
            out[String(k.dropFirst(Self.keyPrefix.count))] = items.compactMap { try? JSONParser.parse($0) }
        }
        return out
    }

    func close() { redis.disconnect() }
}
