import XCTest
@testable import Runtime

final class IDTests: XCTestCase {
    /// The base32 text, computed the slow and obvious way: 130 bits, five at a time.
    private func reference(prefix: String, ms: Int64, hi: UInt64, lo: UInt16) -> String {
        var bits: [Bool] = [false, false]
        for i in stride(from: 47, through: 0, by: -1) { bits.append((ms >> Int64(i)) & 1 == 1) }
        for i in stride(from: 63, through: 0, by: -1) { bits.append((hi >> UInt64(i)) & 1 == 1) }
        for i in stride(from: 15, through: 0, by: -1) { bits.append((lo >> UInt16(i)) & 1 == 1) }
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        var out = prefix + "_"
        for k in 0..<26 {
            var v = 0
            for b in bits[(5 * k)..<(5 * k + 5)] { v = v << 1 | (b ? 1 : 0) }
            out.append(alphabet[v])
        }
        return out
    }

    func testEncodingMatchesTheBitByBitReference() {
        let edges: [(Int64, UInt64, UInt16)] = [(0, 0, 0), (0xFFFF_FFFF_FFFF, UInt64.max >> 1, UInt16.max), (1, 1, 1), (1_795_000_000_000, 0x1234_5678_9ABC_DEF0, 0xBEEF)]
        for (ms, hi, lo) in edges {
            XCTAssertEqual(ID.encode(prefix: "ord", ms: ms, hi: hi, lo: lo), reference(prefix: "ord", ms: ms, hi: hi, lo: lo))
        }
        for _ in 0..<2000 {
            let ms = Int64.random(in: 0...0xFFFF_FFFF_FFFF), hi = UInt64.random(in: 0...UInt64.max), lo = UInt16.random(in: 0...UInt16.max)
            XCTAssertEqual(ID.encode(prefix: "req", ms: ms, hi: hi, lo: lo), reference(prefix: "req", ms: ms, hi: hi, lo: lo))
        }
    }

    func testIdsOfOneProcessSortInCreationOrderAndAreUnique() {
        let ids = (0..<20_000).map { _ in ID.make("x") }
        XCTAssertEqual(ids, ids.sorted())
        XCTAssertEqual(Set(ids).count, ids.count)
        XCTAssertTrue(ids.allSatisfy { $0.count == 28 && $0.hasPrefix("x_") })
    }
}
