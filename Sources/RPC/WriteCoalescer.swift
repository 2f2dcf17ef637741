import Foundation

/// Lets many threads send lines on one socket without each paying a system call: whichever
/// thread finds no write in progress writes everything queued so far, in one call, and keeps
/// going until the queue is empty; the others only append. Order is kept.
///
/// A `hold` defers writing: while one is taken, lines only queue, and the `release` that ends
/// the last hold writes them together. The client's reader holds while it delivers a chunk of
/// answers, so the requests their completions (or the callers they wake) send meanwhile leave
/// in one system call instead of one each.
final class WriteCoalescer: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [UInt8] = []
    private var flushing = false
    private var holds = 0
    /// An empty buffer with capacity, for the next `pending`.
    private var spare: [UInt8] = []
    private let write: ([UInt8]) -> Void

    init(write: @escaping ([UInt8]) -> Void) { self.write = write }

    func enqueue(_ bytes: [UInt8]) {
        lock.lock()
        if pending.isEmpty { pending = bytes } else { pending.append(contentsOf: bytes) }
        if flushing || holds > 0 {
            lock.unlock()
            return
        }
        flushLocked()
    }

    /// Like `enqueue(_:)`, with the bytes appended by `append` in place (under the lock).
    func enqueue(_ append: (inout [UInt8]) -> Void) {
        lock.lock()
        append(&pending)
        if flushing || holds > 0 {
            lock.unlock()
            return
        }
        flushLocked()
    }

    func hold() {
        lock.lock()
        holds += 1
        lock.unlock()
    }

    func release() {
        lock.lock()
        holds -= 1
        if holds > 0 || flushing || pending.isEmpty {
            lock.unlock()
            return
        }
        flushLocked()
    }

    /// Called with the lock held; returns with it released.
    private func flushLocked() {
        flushing = true
        while !pending.isEmpty {
            // The written buffer comes back as the next `pending`, capacity kept: no
            // allocation per write once the two buffers have grown.
            var chunk = spare
            spare = []
            swap(&chunk, &pending)
            lock.unlock()
            write(chunk)
            chunk.removeAll(keepingCapacity: true)
            lock.lock()
            if spare.capacity < chunk.capacity { spare = chunk }
        }
        flushing = false
        lock.unlock()
    }
}
