/// Adding a job to one queue, and asking whether a job is still there: what a producer needs. `JobQueue` does it in Redis; a unit test
/// hands the producer a recorder instead.
public protocol JobAdding: Sendable {
    /// The queue's name.
    var name: String { get }
    /// Adds a job and returns its id; with a custom `jobId` that exists already, nothing changes
    /// and that id is returned.
    func add(name: String, dataJSON: String, options: JobOptions) throws -> String
    /// The job's state; `.unknown` when no queue state holds it (the reconciliation's question).
    func state(id: String) throws -> JobState
}

extension JobQueue: JobAdding {}
