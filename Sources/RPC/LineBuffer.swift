/// Splits a byte stream into `\n`-terminated lines, whatever the chunk sizes, and notices a
/// line that grows past the limit before its end has arrived. A pure state machine: feed bytes,
/// take out events.
public struct LineBuffer {
    public enum Event: Equatable {
        case line([UInt8])
        case tooLong
    }

    public let maxLine: Int
    private var buf: [UInt8] = []
    private var scanFrom = 0
    private var start = 0

    public init(maxLine: Int) { self.maxLine = maxLine }

    public mutating func append(_ chunk: UnsafeRawBufferPointer) {
        buf.append(contentsOf: chunk.bindMemory(to: UInt8.self))
    }

    public mutating func append(_ chunk: [UInt8]) { buf.append(contentsOf: chunk) }

    /// The next complete line (without `\n`, and without a trailing `\r`), `.tooLong`, or nil when more bytes are needed.
    public mutating func next() -> Event? {
        switch nextLine({ Array($0) }) {
        case .line(let l)?: return .line(l)
        case .tooLong?: return .tooLong
        case nil: return nil
        }
    }

    public enum Taken<R> {
        case line(R)
        case tooLong
    }

    /// Like `next()`, but hands the line to `body` where it lies, without copying it (the
    /// pointer is valid only during the call).
    public mutating func nextLine<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> Taken<R>? {
        var i = max(scanFrom, start)
        let n = buf.count
        let found: Int? = buf.withUnsafeBufferPointer { b in
            while i < n {
                if b[i] == 0x0A { return i }
                i += 1
            }
            return nil
        }
        guard let nl = found else {
            scanFrom = n
            if n - start > maxLine { return .tooLong }
            return nil
        }
        var end = nl
        if end > start && buf[end - 1] == 0x0D { end -= 1 }
        let from = start
        start = nl + 1
        scanFrom = start
        defer { compact() }
        if end - from > maxLine { return .tooLong }
        return .line(try buf.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[from..<end])) })
    }

    public var pendingBytes: Int { buf.count - start }

    private mutating func compact() {
        if start > 65536 && start * 2 > buf.count {
            buf.removeFirst(start)
            scanFrom -= start
            start = 0
        } else if start == buf.count {
            buf.removeAll(keepingCapacity: true)
            start = 0
            scanFrom = 0
        }
    }
}
