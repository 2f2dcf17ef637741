import JSON
import Queue
import Runtime

/// A producer's queue for unit tests: adds jobs to a list instead of Redis, with the one rule
/// producers rely on: a job id that exists already adds nothing.
public final class RecordingQueue: JobAdding {
    public let name: String
    private let jobs = Locked<[(id: String, name: String, data: JSON)]>([])

    public init(name: String) { self.name = name }

    public func add(name: String, dataJSON: String, options: JobOptions) throws -> String {
        let id = options.jobId ?? ID.make("job")
        let data = try JSONParser.parse(dataJSON)
        jobs.withLock { list in
            if !list.contains(where: { $0.id == id }) { list.append((id, name, data)) }
        }
        return id
    }

    /// A recorded job waits until a test removes it; any other id is unknown.
    public func state(id: String) throws -> JobState {
        jobs.current.contains(where: { $0.id == id }) ? .waiting : .unknown
    }

    /// Removes a job, as a Redis failover that lost it would.
    public func remove(id: String) { jobs.withLock { $0.removeAll { $0.id == id } } }

    /// Ids of the jobs added, in order.
    public var ids: [String] { jobs.current.map(\.id) }
    public var all: [(id: String, name: String, data: JSON)] { jobs.current }
}
