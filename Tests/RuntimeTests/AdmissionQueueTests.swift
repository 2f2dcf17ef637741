import Dispatch
import XCTest
@testable import Runtime

final class AdmissionQueueTests: XCTestCase {
    // Kinds as AuthSvc numbers them: 0 sign-ups, 1 logins.
    let signUp = AdmissionQueueTests.signUp, login = AdmissionQueueTests.login
    static let signUp = 0, login = 1

    func testSlotsThenBoundedLinesThenRefusal() {
        var b = AdmissionBook<String>(width: 2, lineLimits: [2, 3])
        XCTAssertEqual(b.arrive(kind: signUp, waiter: "s1"), .run)
        XCTAssertEqual(b.arrive(kind: signUp, waiter: "s2"), .run)
        guard case .wait = b.arrive(kind: signUp, waiter: "s3"), case .wait = b.arrive(kind: signUp, waiter: "s4") else {
            return XCTFail("with every slot taken, sign-ups wait while their line has room")
        }
        XCTAssertEqual(b.arrive(kind: signUp, waiter: "s5"), .full, "the sign-up line holds 2")
        // The other kind's line is untouched by the flood.
        for w in ["l1", "l2", "l3"] {
            guard case .wait = b.arrive(kind: login, waiter: w) else { return XCTFail("login \(w) must wait, not be refused") }
        }
        XCTAssertEqual(b.arrive(kind: login, waiter: "l4"), .full, "the login line holds 3")
        XCTAssertEqual(b.running, 2)
        XCTAssertEqual(b.waiting(kind: signUp), 2)
        XCTAssertEqual(b.waiting(kind: login), 3)
    }

    func testAFreedSlotGoesToTheKindHoldingFewestSlots() {
        var b = AdmissionBook<String>(width: 2, lineLimits: [8, 8])
        _ = b.arrive(kind: signUp, waiter: "s1")
        _ = b.arrive(kind: signUp, waiter: "s2")
        for i in 3...6 { _ = b.arrive(kind: signUp, waiter: "s\(i)") }
        _ = b.arrive(kind: login, waiter: "l1")
        _ = b.arrive(kind: login, waiter: "l2")
        // Sign-ups hold both slots and four sign-ups arrived first, yet the first freed slot
        // goes to a login: logins hold none.
        XCTAssertEqual(b.release(kind: signUp), "l1")
        XCTAssertEqual(b.runningByKind, [1, 1])
        // A sign-up finishing now leaves sign-ups holding none and logins one: a sign-up is next.
        XCTAssertEqual(b.release(kind: signUp), "s3")
        XCTAssertEqual(b.runningByKind, [1, 1])
        // A login finishing while sign-ups hold one slot: the waiting login (0 held) goes first.
        XCTAssertEqual(b.release(kind: login), "l2")
        XCTAssertEqual(b.release(kind: login), "s4")
        XCTAssertEqual(b.release(kind: signUp), "s5")
        XCTAssertEqual(b.release(kind: signUp), "s6")
        XCTAssertNil(b.release(kind: signUp), "nobody waits: the slot is free")
        XCTAssertEqual(b.running, 1)
        XCTAssertEqual(b.arrive(kind: login, waiter: "l3"), .run, "a free slot is taken at once")
    }

    func testWithdrawnWaiterLeavesItsLineAndAGrantedOneCannotWithdraw() {
        var b = AdmissionBook<String>(width: 1, lineLimits: [2, 2])
        _ = b.arrive(kind: signUp, waiter: "s1")
        guard case .wait(let a) = b.arrive(kind: signUp, waiter: "s2"), case .wait(let c) = b.arrive(kind: signUp, waiter: "s3") else {
            return XCTFail("s2 and s3 wait")
        }
        XCTAssertEqual(b.arrive(kind: signUp, waiter: "s4"), .full)
        XCTAssertTrue(b.withdraw(kind: signUp, id: a), "s2 gives up")
        XCTAssertEqual(b.waiting(kind: signUp), 1)
        guard case .wait = b.arrive(kind: signUp, waiter: "s4") else { return XCTFail("the line has room again") }
        XCTAssertEqual(b.release(kind: signUp), "s3")
        XCTAssertFalse(b.withdraw(kind: signUp, id: c), "s3 was handed the slot: it holds it and must release it")
        XCTAssertEqual(b.running, 1)
    }

    func testZeroLineNeverWaitsAndSettingsAreClamped() {
        var b = AdmissionBook<Int>(width: 0, lineLimits: [0, -5])
        XCTAssertEqual(b.width, 1)
        XCTAssertEqual(b.arrive(kind: signUp, waiter: 1), .run)
        XCTAssertEqual(b.arrive(kind: signUp, waiter: 2), .full)
        XCTAssertEqual(b.arrive(kind: login, waiter: 3), .full)
    }

    /// The threaded wrapper: a full line is refused without waiting, a waiter that runs out of
    /// time is refused and leaves its line, and a waiter is woken when a slot is freed.
    func testQueueRefusesAtOnceWhenFullAndWakesWaiters() throws {
        let q = AdmissionQueue(width: 1, lineLimits: [1, 1])
        let holding = DispatchSemaphore(value: 0), letGo = DispatchSemaphore(value: 0)
        let holder = DispatchGroup()
        DispatchQueue.global().async(group: holder) {
            try? q.run(kind: Self.signUp, maxWaitNanos: 0) {
                holding.signal()
                letGo.wait()
            }
        }
        holding.wait()

        // The sign-up line (1) has room for one; it waits long. The next one is refused at once.
        let waiterDone = DispatchSemaphore(value: 0)
        let ran = Locked(false)
        DispatchQueue.global().async {
            do { try q.run(kind: Self.signUp, maxWaitNanos: 60_000_000_000) { ran.withLock { $0 = true } } } catch { XCTFail("\(error)") }
            waiterDone.signal()
        }
        XCTAssertTrue(waitFor { q.waiting(kind: Self.signUp) == 1 }, "the second sign-up waits in line")
        XCTAssertThrowsError(try q.run(kind: signUp, maxWaitNanos: 60_000_000_000) {}) {
            XCTAssertEqual($0 as? AdmissionQueue.Refusal, .full)
        }
        // A login with a short wait times out (the slot stays taken) and leaves its line.
        XCTAssertThrowsError(try q.run(kind: login, maxWaitNanos: 20_000_000) {}) {
            XCTAssertEqual($0 as? AdmissionQueue.Refusal, .timedOut)
        }
        XCTAssertEqual(q.waiting(kind: login), 0)

        letGo.signal()
        XCTAssertEqual(holder.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(waiterDone.wait(timeout: .now() + 30), .success, "the waiter was woken when the slot was freed")
        XCTAssertTrue(ran.current)
        XCTAssertEqual(q.running, 0)
        XCTAssertEqual(try q.run(kind: login, maxWaitNanos: 0) { 42 }, 42, "a free slot needs no wait")
    }

    /// Many threads through a narrow queue: never more than `width` at once, every one either
    /// ran or was refused, and the slots all come back.
    func testConcurrentUseKeepsTheWidthAndReturnsEverySlot() {
        let q = AdmissionQueue(width: 2, lineLimits: [3, 3])
        let inside = Locked(0), most = Locked(0), ran = Locked(0), refused = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 64) { i in
            do {
                try q.run(kind: i % 2, maxWaitNanos: 5_000_000_000) {
                    let n = inside.withLock { $0 += 1; return $0 }
                    most.withLock { $0 = max($0, n) }
                    usleep(2000)
                    inside.withLock { $0 -= 1 }
                }
                ran.withLock { $0 += 1 }
            } catch {
                refused.withLock { $0 += 1 }
            }
        }
        XCTAssertLessThanOrEqual(most.current, 2)
        XCTAssertEqual(ran.current + refused.current, 64)
        XCTAssertGreaterThan(ran.current, 0)
        XCTAssertEqual(q.running, 0)
        XCTAssertEqual(q.waiting(kind: 0) + q.waiting(kind: 1), 0)
    }

    private func waitFor(_ cond: () -> Bool) -> Bool {
        for _ in 0..<3000 {
            if cond() { return true }
            usleep(10_000)
        }
        return cond()
    }
}
