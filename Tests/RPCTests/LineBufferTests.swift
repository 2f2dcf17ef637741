import XCTest
import Foundation
@testable import RPC
import TestSupport

final class LineBufferTests: XCTestCase {
    func testRandomChunkSizesGiveTheSameLines() {
        let lines = (0..<200).map { i in "{\"jsonrpc\":\"2.0\",\"id\":\(i),\"method\":\"m\(String(repeating: "x", count: i % 37))\"}" }
        let stream = Array((lines.joined(separator: "\n") + "\n").utf8)
        for _ in 0..<20 {
            var lb = LineBuffer(maxLine: 1 << 20)
            var got: [String] = []
            var i = 0
            while i < stream.count {
                let n = min(Int.random(in: 1...97), stream.count - i)
                lb.append(Array(stream[i..<(i + n)]))
                i += n
                while let ev = lb.next() {
                    guard case .line(let l) = ev else { return XCTFail("unexpected \(ev)") }
                    got.append(String(decoding: l, as: UTF8.self))
                }
            }
            XCTAssertEqual(got, lines)
        }
    }

    /// Reading from a descriptor in small reads moves unread bytes to the front and grows the
    /// storage; neither may lose or reorder a byte.
    func testReadingFromADescriptorInSmallReadsGivesTheSameLines() throws {
        let lines = (0..<500).map { i in String(repeating: "y", count: (i * 7919) % 301) + "-\(i)" }
        let stream = Array((lines.joined(separator: "\n") + "\n").utf8)
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let (readFD, writeFD) = (fds[0], fds[1])
        let writer = Thread {
            var i = 0
            while i < stream.count {
                let n = min(Int.random(in: 1...700), stream.count - i)
                _ = stream[i..<(i + n)].withUnsafeBytes { write(writeFD, $0.baseAddress, n) }
                i += n
            }
            close(writeFD)
        }
        writer.start()
        var lb = LineBuffer(maxLine: 1 << 20)
        var got: [String] = []
        while lb.read(from: readFD, upTo: Int.random(in: 1...512)) > 0 {
            while case .line(let l)? = lb.nextLine({ String(decoding: $0, as: UTF8.self) }) { got.append(l) }
        }
        close(readFD)
        XCTAssertEqual(got, lines)
        XCTAssertEqual(lb.pendingBytes, 0)
    }

    func testPartialFrameNeedsMoreBytes() {
        var lb = LineBuffer(maxLine: 100)
        lb.append(Array("{\"a\":1".utf8))
        XCTAssertNil(lb.next())
        lb.append(Array("}\r\n".utf8))
        XCTAssertEqual(lb.next(), .line(Array("{\"a\":1}".utf8)))
        XCTAssertNil(lb.next())
    }

    func testOversizedLineIsNoticedBeforeItEnds() {
        var lb = LineBuffer(maxLine: 10)
        lb.append(Array(repeating: UInt8(ascii: "a"), count: 11))
        XCTAssertEqual(lb.next(), .tooLong(prefix: Array(repeating: UInt8(ascii: "a"), count: 11)))
        XCTAssertNil(lb.next())
    }

    /// An oversized line among others, fed in random chunks: it is reported once with its
    /// beginning, its rest is dropped as it arrives (the storage never holds it whole), and every
    /// line around it comes out unchanged.
    func testOversizedLineIsReportedOnceAndSkippedWithoutBufferingIt() {
        let maxLine = 4096
        let huge = "{\"id\":7," + String(repeating: "z", count: 200_000) + "}"
        let before = (0..<20).map { "before-\($0)" }
        let after = (0..<20).map { "after-\($0)" }
        let stream = Array((before + [huge] + after).joined(separator: "\n").utf8) + [0x0A]
        var rng = SplitMix64(seed: 42)
        for _ in 0..<10 {
            var lb = LineBuffer(maxLine: maxLine)
            var lines: [String] = []
            var reports: [[UInt8]] = []
            var most = 0
            var i = 0
            while i < stream.count {
                let n = min(Int.random(in: 1...9000, using: &rng), stream.count - i)
                lb.append(Array(stream[i..<(i + n)]))
                i += n
                most = max(most, lb.pendingBytes)
                while let ev = lb.next() {
                    switch ev {
                    case .line(let l): lines.append(String(decoding: l, as: UTF8.self))
                    case .tooLong(let p): reports.append(p)
                    }
                }
            }
            XCTAssertEqual(lines, before + after)
            XCTAssertEqual(reports, [Array(huge.utf8.prefix(LineBuffer.keptPrefixBytes))])
            XCTAssertLessThanOrEqual(most, maxLine + 9000, "never more than the limit and one chunk held")
            XCTAssertEqual(lb.pendingBytes, 0)
        }
    }

    /// A whole oversized line already in the buffer (its newline arrived with it) is reported
    /// the same way, and the next line follows.
    func testCompleteOversizedLineIsReportedAndTheNextFollows() {
        var lb = LineBuffer(maxLine: 8)
        lb.append(Array("0123456789abc\nok\n".utf8))
        XCTAssertEqual(lb.next(), .tooLong(prefix: Array("0123456789abc".utf8)))
        XCTAssertEqual(lb.next(), .line(Array("ok".utf8)))
        XCTAssertNil(lb.next())
    }
}
