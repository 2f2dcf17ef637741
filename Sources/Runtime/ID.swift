import Foundation

/// Opaque, time-ordered identifiers: 48 bits of milliseconds then 80 random bits, in Crockford
/// base32 (26 characters), behind a short prefix that tells what the id names (`ord_…`, `usr_…`).
public enum ID {
    private static let alphabet: [UInt8] = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
    private static let last = Locked<(ms: Int64, rand: (UInt64, UInt16))>((0, (0, 0)))

    public static func make(_ prefix: String) -> String {
        // Monotonic within a process: ids made in the same millisecond still sort in creation order.
        let (ms, hi, lo) = last.withLock { st -> (Int64, UInt64, UInt16) in
            let now = Clock.wallMillis()
            if now <= st.ms {
                var (h, l) = st.rand
                l &+= 1
                if l == 0 { h &+= 1 }
                st.rand = (h, l)
            } else {
                st.ms = now
                st.rand = (UInt64.random(in: 0...UInt64.max) >> 1, UInt16.random(in: 0...UInt16.max))
            }
            return (st.ms, st.rand.0, st.rand.1)
        }
        return encode(prefix: prefix, ms: ms, hi: hi, lo: lo)
    }

    /// The pattern (for a params schema) that every id made by `make(prefix)` matches, and
    /// nothing else: the prefix, `_`, then 26 characters of the Crockford base32 alphabet.
    public static func pattern(_ prefix: String) -> String {
        "^\(prefix)_[0-9A-HJKMNP-TV-Z]{26}$"
    }

    /// `prefix_` and the 128 bits ms (48) | hi (64) | lo (16) as 26 base32 characters (130
    /// bits, the top two zero), written in place: every request and record gets an id.
    static func encode(prefix: String, ms: Int64, hi: UInt64, lo: UInt16) -> String {
        let v = UInt128(UInt64(bitPattern: ms) & 0xFFFF_FFFF_FFFF) << 80 | UInt128(hi) << 16 | UInt128(lo)
        let p = prefix.utf8.count
        return String(unsafeUninitializedCapacity: p + 27) { buf in
            var i = 0
            for c in prefix.utf8 {
                buf[i] = c
                i += 1
            }
            buf[i] = UInt8(ascii: "_")
            i += 1
            alphabet.withUnsafeBufferPointer { a in
                for k in 0..<26 {
                    buf[i + k] = a[Int(truncatingIfNeeded: (v >> (125 - 5 * k)) & 31)]
                }
            }
            return i + 26
        }
    }
}

/// The one rule for a request id, wherever one arrives (an HTTP `X-Request-Id`, an RPC `ctx`):
/// kept when it is 1–128 characters of `[0-9A-Za-z:._-]`, so it is safe in a header and a log
/// line; otherwise replaced by a fresh `req_…` id.
public enum RequestID {
    public static func accept(_ candidate: String?) -> String {
        if let h = candidate, isSafe(h) { return h }
        return ID.make("req")
    }

    public static func isSafe(_ s: String) -> Bool {
        let u = s.utf8
        guard !u.isEmpty && u.count <= 128 else { return false }
        return u.allSatisfy { c in
            (c >= 0x30 && c <= 0x3A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F || c == 0x2E
        }
    }
}
