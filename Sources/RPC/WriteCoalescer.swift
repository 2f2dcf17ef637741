import Foundation

/// Lets many threads send lines on one socket without each paying a system call: whichever
/// thread finds no write in progress writes everything queued so far, in one call, and keeps
/// going until the queue is empty; the others only append. Order is kept.
final class WriteCoalescer: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [UInt8] = []
    private var flushing = false
    private let write: ([UInt8]) -> Void

    init(write: @escaping ([UInt8]) -> Void) { self.write = write }

    func enqueue(_ bytes: [UInt8]) {
        lock.lock()
        if pending.isEmpty { pending = bytes } else { pending.append(contentsOf: bytes) }
        if flushing {
            lock.unlock()
            return
        }
        flushing = true
        while !pending.isEmpty {
            var chunk: [UInt8] = []
            swap(&chunk, &pending)
            lock.unlock()
            write(chunk)
            lock.lock()
        }
        flushing = false
        lock.unlock()
    }
}
