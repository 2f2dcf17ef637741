import Foundation
import Runtime

/// Measures how fast a `Worker` drains no-op jobs; used by the `bench` executable.
public enum QueueBenchmark {
    /// The result of one run.
    public struct Result: Sendable {
        public let jobs: Int
        public let concurrency: Int
        public let elapsedMs: Double
        public var jobsPerSecond: Double { elapsedMs > 0 ? Double(jobs) / (elapsedMs / 1000) : 0 }
    }

    /// Adds `jobs` jobs to a fresh queue, then times one worker at `concurrency` until every job
    /// has completed. Jobs are removed on completion so that Redis memory stays flat.
    public static func noopThroughput(redisURL: String, queueName: String = "bench-\(UInt32.random(in: 0...UInt32.max))",
                                      prefix: String = "bull", jobs: Int, concurrency: Int) throws -> Result {
        let queue = try JobQueue(name: queueName, prefix: prefix, redisURL: redisURL)
        defer { queue.close() }
        var batch: [NewJob] = []
        for i in 0..<jobs {
            batch.append(NewJob(name: "noop", dataJSON: "{\"i\":\(i)}", options: JobOptions(removeOnComplete: .removeImmediately)))
            if batch.count == 1000 { try queue.addBulk(batch); batch.removeAll(keepingCapacity: true) }
        }
        if !batch.isEmpty { try queue.addBulk(batch) }
        let done = Locked(0)
        let worker = try Worker(queueName: queueName, prefix: prefix, redisURL: redisURL, concurrency: concurrency) { _ in
            done.withLock { $0 += 1 }
            return "null"
        }
        let t0 = Clock.monotonicNanos()
        worker.start()
        defer { worker.stop(graceMs: 1000) }
        while true {
            let c = try queue.counts()
            if done.current >= jobs && c.waiting == 0 && c.active == 0 { break }
            usleep(2_000)
        }
        return Result(jobs: jobs, concurrency: concurrency, elapsedMs: Double(Clock.monotonicNanos() - t0) / 1e6)
    }
}
