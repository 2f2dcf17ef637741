import Foundation

/// A fixed set of threads running tasks that prefer it (`Task(executorPreference:)`): their
/// synchronous stretches, blocking calls included, run here, off Swift's cooperative pool, and a
/// task suspended (waiting on I/O) holds no thread. So a thousand tasks each waiting on the
/// network cost a few threads, and a blocking RPC or store call inside one never starves the
/// runtime's own threads.
public final class ThreadPoolExecutor: TaskExecutor, @unchecked Sendable {
    private let cond = NSCondition()
    private var queue: [UnownedJob] = []
    private var head = 0

    public init(threads: Int, name: String) {
        for i in 0..<max(threads, 1) {
            let t = Thread { [self] in run() }
            t.name = "\(name)-\(i)"
            t.start()
        }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let j = UnownedJob(job)
        cond.lock()
        queue.append(j)
        cond.signal()
        cond.unlock()
    }

    private func run() {
        while true {
            cond.lock()
            while head == queue.count { cond.wait() }
            let j = queue[head]
            head += 1
            if head > 1024 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            cond.unlock()
            j.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
