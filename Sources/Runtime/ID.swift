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
        var out = [UInt8](repeating: 0, count: 26)
        // 128 bits: ms (48) | hi (64) | lo (16) -> 26 base32 chars (130 bits, top 2 zero)
        var bits: [UInt8] = []
        bits.reserveCapacity(16)
        for s in stride(from: 40, through: 0, by: -8) { bits.append(UInt8((ms >> Int64(s)) & 0xFF)) }
        for s in stride(from: 56, through: 0, by: -8) { bits.append(UInt8((hi >> UInt64(s)) & 0xFF)) }
        bits.append(UInt8(lo >> 8)); bits.append(UInt8(lo & 0xFF))
        var acc: UInt32 = 0
        var nbits = 2  // two leading zero bits
        var o = 0
        for b in bits {
            acc = (acc << 8) | UInt32(b)
            nbits += 8
            while nbits >= 5 {
                nbits -= 5
                out[o] = alphabet[Int((acc >> UInt32(nbits)) & 31)]
                o += 1
            }
        }
        return prefix + "_" + String(decoding: out[0..<o], as: UTF8.self)
    }
}
