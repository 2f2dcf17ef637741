import Foundation
import JSON
import Queue
import Runtime
import OrderCore

/// When a shipment is polled (docs/orders.md, "Tracking"): the first poll `baseMs` after
/// booking, then every `baseMs`, doubled for each `ageStepMs` of the order's age, at most
/// `maxMs` apart; none after `maxAgeMs`.
struct TrackingSchedule: Sendable, Equatable {
    var baseMs: Int
    var maxMs: Int
    var ageStepMs: Int
    var maxAgeMs: Int64

    static let standard = TrackingSchedule(baseMs: 900_000, maxMs: 21_600_000, ageStepMs: 86_400_000, maxAgeMs: 60 * 86_400_000)

    /// From `OOPS_TRACK_POLL_MS`, `OOPS_TRACK_MAX_POLL_MS`, `OOPS_TRACK_AGE_STEP_S`, `OOPS_TRACK_MAX_AGE_S`.
    init(_ c: Config) {
        let d = Self.standard
        baseMs = c.int("OOPS_TRACK_POLL_MS", default: d.baseMs, range: 50...86_400_000)
        maxMs = max(baseMs, c.int("OOPS_TRACK_MAX_POLL_MS", default: d.maxMs, range: 50...604_800_000))
        ageStepMs = c.int("OOPS_TRACK_AGE_STEP_S", default: d.ageStepMs / 1000, range: 1...31_536_000) * 1000
        maxAgeMs = Int64(c.int("OOPS_TRACK_MAX_AGE_S", default: Int(d.maxAgeMs / 1000), range: 60...315_360_000)) * 1000
    }

    init(baseMs: Int, maxMs: Int, ageStepMs: Int, maxAgeMs: Int64) {
        self.baseMs = baseMs
        self.maxMs = maxMs
        self.ageStepMs = ageStepMs
        self.maxAgeMs = maxAgeMs
    }

    /// The wait before the next poll of a shipment whose order is `ageMs` old.
    func delayMs(ageMs: Int64) -> Int {
        let steps = Int(min(max(ageMs, 0) / Int64(max(ageStepMs, 1)), 20))
        return min(maxMs, baseMs << steps)
    }

    /// Whether a shipment this old is still polled.
    func polls(ageMs: Int64) -> Bool { ageMs <= maxAgeMs }
}

/// The tracking queue and its schedule: adds a shipment's polls, one delayed job at a time.
struct TrackingPolls: Sendable {
    let queue: any JobAdding
    let schedule: TrackingSchedule

    /// Adds poll `n` of the order, due by the schedule; adding one that exists is a no-op.
    @discardableResult
    func add(orderId: String, requestId: String, poll n: Int, orderCreatedAtMs: Int64) throws -> String {
        let job = ProviderJob.track(orderId: orderId, requestId: requestId, poll: n,
                                    delayMs: schedule.delayMs(ageMs: Clock.wallMillis() - orderCreatedAtMs))
        return try queue.add(name: job.name, dataJSON: job.dataJSON, options: job.options)
    }
}
