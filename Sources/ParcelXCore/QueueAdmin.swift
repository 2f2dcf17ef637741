import Foundation
import JSON
import RPC
import Queue
import Domain
import Runtime

/// Queue administration over RPC (the dashboard's back end), admin only: counts, job lists,
/// one job, retry, promote, remove, clean, pause and resume, events.
enum QueueAdmin {
    static let queueName = Schema.string(oneOf: QueueNames.all)
    /// The oldest age `queues.clean` takes: 100,000 days (what the dashboard's form allows), so
    /// that "now minus the age" is always a time.
    static let maxAgeMs: Int64 = 100_000 * 86_400_000
    static let state = Schema.string(oneOf: JobState.listable.map(\.rawValue))

    static func methods(_ queues: [String: JobQueue]) -> [Method] {
        @Sendable func q(_ p: JSON) throws(RPCError) -> JobQueue {
            guard let n = p["queue"]?.stringValue, let x = queues[n] else { throw RPCError.notFound("No such queue") }
            return x
        }
        let admin: Set<Role> = [.admin, .system]
        let qp = Schema.object([("queue", queueName)], required: ["queue"])
        let jp = Schema.object([("queue", queueName), ("jobId", .string(min: 1, max: 200))], required: ["queue", "jobId"])
        return [
            Method("queues.overview", summary: "Every queue: counts per state and the paused flag", roles: admin, params: .empty, result: .anything) { _, _ throws in
                .array(try QueueNames.all.map { n -> JSON in
                    let x = queues[n]!
                    return ["name": .string(n), "counts": try x.counts().json, "paused": .bool(try x.isPaused())]
                })
            },
            Method("queues.metrics", summary: "Completed and failed jobs per minute, newest first (BullMQ's metrics layout)", roles: admin,
                   params: .object([("queue", queueName), ("minutes", .int(min: 1, max: 10_080))], required: ["queue"]), result: .anything) { p, _ throws in
                let x = try q(p)
                let n = Int(p["minutes"]?.intValue ?? 60)
                return ["queue": .string(x.name), "completed": try x.metrics(.completed, limit: n).json, "failed": try x.metrics(.failed, limit: n).json,
                        "now": .int(Clock.wallMillis())]
            },
            Method("queues.jobs", summary: "Jobs in one state, newest first, paged", roles: admin,
                   params: .object([("queue", queueName), ("state", state), ("offset", .int(min: 0, max: Paging.maxJobOffset)), ("limit", .int(min: 1, max: 200))], required: ["queue", "state"]),
                   result: .anything) { p, _ throws in
                let x = try q(p)
                let st = JobState(rawValue: try p.requiredString("state")) ?? .waiting
                let jobs = try x.jobs(state: st, offset: Int(p["offset"]?.intValue ?? 0), limit: Int(p["limit"]?.intValue ?? 20))
                return ["queue": .string(x.name), "state": .string(st.rawValue), "jobs": .array(jobs.map(jobJSON))]
            },
            Method("queues.job", summary: "One job with everything", roles: admin, params: jp, result: .anything, errors: [.notFound]) { p, _ throws in
                let x = try q(p)
                guard let j = try x.job(id: p.requiredString("jobId")) else { throw RPCError.notFound("No such job") }
                return jobJSON(j)
            },
            Method("queues.retry", summary: "Retry one failed job", roles: admin, params: jp, result: .anything) { p, _ throws in
                let x = try q(p)
                return ["ok": .bool(try x.retry(id: p.requiredString("jobId")))]
            },
            Method("queues.retryAll", summary: "Retry every failed job", roles: admin, params: qp, result: .anything) { p, _ throws in
                let x = try q(p)
                return ["count": .int(Int64(try x.retryAllFailed()))]
            },
            Method("queues.promote", summary: "Run a delayed job now", roles: admin, params: jp, result: .anything) { p, _ throws in
                let x = try q(p)
                return ["ok": .bool(try x.promote(id: p.requiredString("jobId")))]
            },
            Method("queues.remove", summary: "Remove a job (not one a worker is processing: that is a conflict)", roles: admin, params: jp,
                   result: .anything, errors: [.conflict]) { p, _ throws in
                let x = try q(p)
                return ["ok": .bool(try x.remove(id: p.requiredString("jobId")))]
            },
            Method("queues.clean", summary: "Remove jobs of a state older than a given age", roles: admin,
                   params: .object([("queue", queueName), ("state", .string(oneOf: JobState.cleanable.map(\.rawValue))),
                                    ("olderThanMs", .int(min: 0, max: maxAgeMs)), ("limit", .int(min: 0, max: 100_000))], required: ["queue", "state", "olderThanMs"]),
                   result: .anything) { p, _ throws in
                let x = try q(p)
                let st = JobState(rawValue: try p.requiredString("state")) ?? .completed
                let ids = try x.clean(state: st, olderThanMs: Int(p.requiredInt("olderThanMs")), limit: Int(p["limit"]?.intValue ?? 1000))
                return ["removed": .int(Int64(ids.count))]
            },
            Method("queues.pause", summary: "Pause a queue", roles: admin, params: qp, result: .anything) { p, _ throws in
                let x = try q(p)
                try x.pause()
                return ["paused": true]
            },
            Method("queues.resume", summary: "Resume a queue", roles: admin, params: qp, result: .anything) { p, _ throws in
                let x = try q(p)
                try x.resume()
                return ["paused": false]
            },
            Method("queues.events", summary: "The newest entries of a queue's events stream", roles: admin,
                   params: .object([("queue", queueName), ("count", .int(min: 1, max: 1000))], required: ["queue"]), result: .anything) { p, _ throws in
                let x = try q(p)
                return .array(try x.events(count: Int(p["count"]?.intValue ?? 100)).map { $0.json })
            },
        ]
    }

    static func jobJSON(_ j: Job) -> JSON {
        [
            "id": .string(j.id), "name": .string(j.name), "data": (try? JSONParser.parse(j.dataJSON)) ?? .string(j.dataJSON),
            "opts": j.opts, "attemptsMade": JSON(j.attemptsMade), "attempts": j.opts["attempts"] ?? .null,
            "timestamp": .int(j.timestamp), "processedOn": JSON(j.processedOn), "finishedOn": JSON(j.finishedOn),
            "delay": .int(j.delay), "priority": JSON(j.priority),
            "returnvalue": j.returnValueJSON.map { (try? JSONParser.parse($0)) ?? .string($0) } ?? .null,
            "failedReason": JSON(j.failedReason), "stacktrace": .array(j.stacktrace.map { .string($0) }),
            "progress": (try? JSONParser.parse(j.progressJSON)) ?? .null, "logs": .array(j.logs.map { .string($0) }),
            "state": JSON(j.state?.rawValue), "processedBy": JSON(j.processedBy),
        ]
    }
}
