import Foundation

/// Splits a byte stream into `\n`-terminated lines, whatever the chunk sizes, and notices a
/// line that grows past the limit before its end has arrived. A pure state machine: feed bytes
/// (or let it read them from a descriptor, straight into its storage), take out events.
///
/// A line longer than the limit costs only itself: it is reported once, with its first bytes
/// (enough to find a JSON-RPC `id` at its start), and the rest of it is dropped as it arrives,
/// up to its `\n`, without ever being held whole. The lines after it come out as usual.
public struct LineBuffer {
    public enum Event: Equatable {
        case line([UInt8])
        /// A line longer than `maxLine`: at most `keptPrefixBytes` of its beginning.
        case tooLong(prefix: [UInt8])
    }

    /// How much of an oversized line's beginning is kept for its report.
    public static let keptPrefixBytes = 1024

    public let maxLine: Int
    /// Storage; the bytes not yet taken are `start..<end`.
    private var buf: [UInt8] = []
    private var start = 0
    private var end = 0
    /// Where the search for the next `\n` resumes (everything before it was searched).
    private var scanFrom = 0
    /// The rest of an oversized line, already reported, is being dropped up to its `\n`.
    private var skipping = false

    public init(maxLine: Int) { self.maxLine = maxLine }

    public mutating func append(_ chunk: UnsafeRawBufferPointer) {
        guard chunk.count > 0 else { return }
        makeRoom(chunk.count)
        buf.withUnsafeMutableBytes { b in
            b.baseAddress!.advanced(by: end).copyMemory(from: chunk.baseAddress!, byteCount: chunk.count)
        }
        end += chunk.count
    }

    public mutating func append(_ chunk: [UInt8]) {
        chunk.withUnsafeBytes { append($0) }
    }

    /// Reads once from `fd` into the buffer (at most `upTo` bytes); returns what `read(2)` returned.
    public mutating func read(from fd: Int32, upTo: Int = 65536) -> Int {
        makeRoom(upTo)
        let n = buf.withUnsafeMutableBytes { b in Glibc.read(fd, b.baseAddress!.advanced(by: end), upTo) }
        if n > 0 { end += n }
        return n
    }

    /// The next complete line (without `\n`, and without a trailing `\r`), `.tooLong`, or nil when more bytes are needed.
    public mutating func next() -> Event? {
        switch nextLine({ Array($0) }) {
        case .line(let l)?: return .line(l)
        case .tooLong(let p)?: return .tooLong(prefix: p)
        case nil: return nil
        }
    }

    public enum Taken<R> {
        case line(R)
        case tooLong(prefix: [UInt8])
    }

    /// Like `next()`, but hands the line to `body` where it lies, without copying it (the
    /// pointer is valid only during the call).
    public mutating func nextLine<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> Taken<R>? {
        if skipping {
            guard let nl = newline(from: start) else {
                reset()
                return nil
            }
            skipping = false
            start = nl + 1
            scanFrom = start
            if start == end { reset() }
        }
        guard let nl = newline(from: max(scanFrom, start)) else {
            scanFrom = end
            if end - start > maxLine {
                // Reported now; what is buffered goes, and so does the rest as it arrives.
                let prefix = keptPrefix(from: start, to: end)
                reset()
                skipping = true
                return .tooLong(prefix: prefix)
            }
            return nil
        }
        var lineEnd = nl
        if lineEnd > start && buf[lineEnd - 1] == 0x0D { lineEnd -= 1 }
        let lineStart = start
        start = nl + 1
        scanFrom = start
        defer { if start == end { reset() } }
        if lineEnd - lineStart > maxLine { return .tooLong(prefix: keptPrefix(from: lineStart, to: lineEnd)) }
        return .line(try buf.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[lineStart..<lineEnd])) })
    }

    /// The index of the first `\n` at or after `from` among the unread bytes.
    private func newline(from: Int) -> Int? {
        buf.withUnsafeBufferPointer { b in
            guard from < end, let p = memchr(b.baseAddress! + from, 0x0A, end - from) else { return nil }
            return b.baseAddress!.distance(to: p.assumingMemoryBound(to: UInt8.self))
        }
    }

    private func keptPrefix(from: Int, to: Int) -> [UInt8] {
        Array(buf[from..<min(to, from + Self.keptPrefixBytes)])
    }

    private mutating func reset() {
        start = 0
        end = 0
        scanFrom = 0
    }

    public var pendingBytes: Int { end - start }

    /// Makes `n` bytes of room after `end`: first by moving the unread bytes to the front, then
    /// by growing.
    private mutating func makeRoom(_ n: Int) {
        if buf.count - end >= n { return }
        if start > 0 {
            let (s, e) = (start, end)
            buf.withUnsafeMutableBytes { b in
                let base = b.baseAddress!
                base.copyMemory(from: base.advanced(by: s), byteCount: e - s)
            }
            end -= start
            scanFrom = max(scanFrom - start, 0)
            start = 0
        }
        if buf.count - end < n {
            buf.append(contentsOf: repeatElement(0, count: max(n - (buf.count - end), buf.count)))
        }
    }
}
