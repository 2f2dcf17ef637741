import Dispatch

/// Admits work of a few kinds to `width` slots. Each kind has its own bounded line of waiters.
/// A freed slot goes to the waiting kind that holds the fewest slots (ties in turn), so a flood
/// of one kind waits behind itself, never in front of another kind, and a kind whose line is
/// full is refused at once instead of piling up.
///
/// Kinds are numbered `0..<lineLimits.count`. A waiter that cannot get a slot within the time
/// it is given leaves its line and is refused too, so a caller always hears back in time.
public final class AdmissionQueue: Sendable {
    public enum Refusal: Error, Equatable, Sendable {
        /// The kind's line was full when the work arrived.
        case full
        /// The work waited as long as it was allowed to and got no slot.
        case timedOut
    }

    private let book: Locked<AdmissionBook<DispatchSemaphore>>

    /// `width` slots (at least 1); `lineLimits[k]` waiters of kind `k` at most (0: never wait).
    public init(width: Int, lineLimits: [Int]) {
        book = Locked(AdmissionBook(width: width, lineLimits: lineLimits))
    }

    /// Runs `body` in a slot, waiting at most `maxWaitNanos` for one; throws `Refusal` otherwise.
    public func run<T>(kind: Int, maxWaitNanos: UInt64, _ body: () throws -> T) throws -> T {
        let sem = DispatchSemaphore(value: 0)
        switch book.withLock({ $0.arrive(kind: kind, waiter: sem) }) {
        case .full:
            throw Refusal.full
        case .run:
            break
        case .wait(let id):
            let timeout = DispatchTime.now() + .nanoseconds(Int(min(maxWaitNanos, UInt64(Int.max))))
            if sem.wait(timeout: timeout) == .timedOut {
                // A slot may have been handed over between the timeout and this lock: then the
                // signal is on its way and the slot is ours.
                if book.withLock({ $0.withdraw(kind: kind, id: id) }) { throw Refusal.timedOut }
                sem.wait()
            }
        }
        defer { book.withLock { $0.release(kind: kind) }?.signal() }
        return try body()
    }

    /// Waiters of `kind` right now.
    public func waiting(kind: Int) -> Int { book.withLock { $0.waiting(kind: kind) } }

    /// Slots in use right now (handed over but not yet taken up included).
    public var running: Int { book.withLock { $0.running } }
}

/// The bookkeeping of `AdmissionQueue` without threads: who runs, who waits in which line, and
/// who gets the next freed slot. A slot given back while anyone waits goes straight to a waiter,
/// so there are waiters only while every slot runs.
struct AdmissionBook<Waiter> {
    let width: Int
    let lineLimits: [Int]
    /// Slots held per kind (handed over but not yet taken up included).
    private(set) var runningByKind: [Int]
    private var lines: [[(id: UInt64, waiter: Waiter)]]
    private var nextId: UInt64 = 0
    /// Where the search for a kind starts when several waiting kinds hold equally few slots.
    private var turn = 0

    init(width: Int, lineLimits: [Int]) {
        self.width = max(1, width)
        self.lineLimits = lineLimits.map { max(0, $0) }
        lines = Array(repeating: [], count: lineLimits.count)
        runningByKind = Array(repeating: 0, count: lineLimits.count)
    }

    var running: Int { runningByKind.reduce(0, +) }

    enum Arrival: Equatable {
        case run
        case wait(id: UInt64)
        case full
    }

    mutating func arrive(kind: Int, waiter: Waiter) -> Arrival {
        precondition(lines.indices.contains(kind), "unknown admission kind \(kind)")
        if running < width {
            runningByKind[kind] += 1
            return .run
        }
        guard lines[kind].count < lineLimits[kind] else { return .full }
        nextId &+= 1
        lines[kind].append((nextId, waiter))
        return .wait(id: nextId)
    }

    /// A slot of `kind` is given back. Returns the waiter it is handed to (the first in line of
    /// the waiting kind that holds the fewest slots), or nil when nobody waits and it is free.
    mutating func release(kind: Int) -> Waiter? {
        runningByKind[kind] = max(0, runningByKind[kind] - 1)
        var next: Int?
        for step in 0..<lines.count {
            let k = (turn + step) % lines.count
            if !lines[k].isEmpty && (next == nil || runningByKind[k] < runningByKind[next!]) { next = k }
        }
        guard let k = next else { return nil }
        turn = (k + 1) % lines.count
        runningByKind[k] += 1
        return lines[k].removeFirst().waiter
    }

    /// A waiter gives up. False when it is no longer in its line: it was handed a slot meanwhile,
    /// which it now holds and must give back.
    mutating func withdraw(kind: Int, id: UInt64) -> Bool {
        guard let i = lines[kind].firstIndex(where: { $0.id == id }) else { return false }
        lines[kind].remove(at: i)
        return true
    }

    func waiting(kind: Int) -> Int { lines[kind].count }
}
