import Foundation
import JSON
import Runtime
import Store
import XCTest

/// The logger the store tests hand to the stores they open: warnings and errors only.
public let testLog = Logger(service: "store-tests", instance: 0, level: .warn)

/// The one behaviour suite every `DocumentStore` must pass (SQLite and MemoryStore in StoreTests,
/// MongoDB in IntegrationTests). Backend test cases hand it a factory and call each check from a
/// test method of their own (Linux test discovery does not see inherited test methods).
public struct DocumentStoreConformance {
    /// Opens a fresh, empty store (its own file or its own collection prefix).
    let open: () throws -> any DocumentStore

    public init(open: @escaping () throws -> any DocumentStore) { self.open = open }

    public static let schemaVersion = 1
    public static let collections = [
        CollectionSpec("wallets"),
        CollectionSpec("orders", indexes: [
            IndexSpec(["userId", "clientOrderId"], unique: true, name: "user_client_order"),
            IndexSpec(["status"]),
        ]),
        CollectionSpec("users", indexes: [IndexSpec(["email"], unique: true)]),
        CollectionSpec("events", indexes: [IndexSpec(["amount"])]),
    ]

    private func prepared() throws -> any DocumentStore {
        let s = try open()
        try s.prepare(Self.collections, schemaVersion: Self.schemaVersion)
        return s
    }

    private func expectStoreError(_ kind: StoreError.Kind, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected StoreError.\(kind), nothing was thrown", file: file, line: line)
        } catch let e as StoreError {
            XCTAssertEqual(e.kind, kind, "\(e.debugDescription)", file: file, line: line)
        } catch {
            XCTFail("expected StoreError.\(kind), got \(error)", file: file, line: line)
        }
    }

    public func insertWithTakenIdReturnsTheExistingDocument() throws {
        let s = try prepared()
        defer { s.close() }
        XCTAssertEqual(try s.insert("wallets", ["_id": "w1", "balance": 10]), .created(["_id": "w1", "balance": 10]))
        XCTAssertEqual(try s.insert("wallets", ["_id": "w1", "balance": 99]), .duplicate(existing: ["_id": "w1", "balance": 10]))
        XCTAssertEqual(try s.get("wallets", id: "w1"), ["_id": "w1", "balance": 10])
        XCTAssertNil(try s.get("wallets", id: "w2"))
        XCTAssertEqual(try s.count("wallets"), 1)
    }

    public func insertWithTakenCompoundUniqueKeyReturnsTheHolder() throws {
        let s = try prepared()
        defer { s.close() }
        let first: JSON = ["_id": "o1", "userId": "u1", "clientOrderId": "c1", "status": "pending"]
        XCTAssertEqual(try s.insert("orders", first), .created(first))
        XCTAssertEqual(try s.insert("orders", ["_id": "o2", "userId": "u1", "clientOrderId": "c1", "status": "pending"]),
                       .duplicate(existing: first))
        // Only the pair is unique, not each field.
        guard case .created = try s.insert("orders", ["_id": "o3", "userId": "u2", "clientOrderId": "c1"]) else { return XCTFail("u2/c1 refused") }
        guard case .created = try s.insert("orders", ["_id": "o4", "userId": "u1", "clientOrderId": "c2"]) else { return XCTFail("u1/c2 refused") }
        // Documents without the key do not take part in uniqueness.
        guard case .created = try s.insert("orders", ["_id": "o5", "userId": "u1"]) else { return XCTFail("keyless o5 refused") }
        guard case .created = try s.insert("orders", ["_id": "o6", "userId": "u1"]) else { return XCTFail("keyless o6 refused") }
        XCTAssertEqual(try s.count("orders"), 5)
        XCTAssertNil(try s.get("orders", id: "o2"))
    }

    public func updateThatWouldTakeAUniqueKeyIsAConflict() throws {
        let s = try prepared()
        defer { s.close() }
        _ = try s.insert("users", ["_id": "a", "email": "a@x.in"])
        _ = try s.insert("users", ["_id": "b", "email": "b@x.in"])
        expectStoreError(.conflict) { _ = try s.update("users", where: .id("b"), .set(["email": "a@x.in"])) }
        XCTAssertEqual(try s.get("users", id: "b")?["email"], "b@x.in")
    }

    public func compareAndSetReturnsTheAfterImageAndNilOnMismatch() throws {
        let s = try prepared()
        defer { s.close() }
        _ = try s.insert("orders", ["_id": "o1", "userId": "u1", "clientOrderId": "c1", "status": "pending", "version": 1])
        let expectPending: Filter = .and([.id("o1"), .eq("status", "pending")])
        let after = try s.update("orders", where: expectPending, Update(set: ["status": "placed", "awb": "AWB1"], inc: ["version": 1]))
        XCTAssertEqual(after, ["_id": "o1", "userId": "u1", "clientOrderId": "c1", "status": "placed", "awb": "AWB1", "version": 2])
        XCTAssertNil(try s.update("orders", where: expectPending, .set(["status": "failed"])))
        XCTAssertEqual(try s.get("orders", id: "o1")?["status"], "placed")
        XCTAssertNil(try s.update("orders", where: .id("missing"), .set(["status": "x"])))
    }

    /// 200 threads race to take `cost` from a balance; exactly the affordable number win.
    public func conditionalDecrementNeverGoesBelowZeroUnderConcurrency() throws {
        let s = try prepared()
        defer { s.close() }
        let start: Int64 = 1000, cost: Int64 = 7, threads = 200
        _ = try s.insert("wallets", ["_id": "w1", "balance": .int(start)])
        let wins = Locked(0)
        let failures = Locked<[String]>([])
        let finished = inParallel(threads, timeoutSeconds: 120) { _ in
            do {
                if try s.update("wallets", where: .and([.id("w1"), .gte("balance", .int(cost))]), .inc("balance", by: -cost)) != nil {
                    wins.withLock { $0 += 1 }
                }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        XCTAssertTrue(finished)
        XCTAssertEqual(failures.current, [])
        XCTAssertEqual(wins.current, Int(start / cost))
        XCTAssertEqual(try s.get("wallets", id: "w1")?["balance"], .int(start % cost))
    }

    public func pushAppendsAndCreatesTheArray() throws {
        let s = try prepared()
        defer { s.close() }
        _ = try s.insert("orders", ["_id": "o1", "status": "pending"])
        let e1: JSON = ["status": "pending", "at": 1]
        let e2: JSON = ["status": "placed", "at": 2, "tags": ["x", "y"]]
        XCTAssertEqual(try s.update("orders", where: .id("o1"), Update(push: ["history": e1]))?["history"], [e1])
        let after = try s.update("orders", where: .id("o1"), Update(set: ["status": "placed"], push: ["history": e2, "notes": "plain text"]))
        XCTAssertEqual(after?["history"], [e1, e2])
        XCTAssertEqual(after?["notes"], ["plain text"])
        XCTAssertEqual(after?["status"], "placed")
    }

    public func unsetRemovesFieldsAndSetCreatesNestedPaths() throws {
        let s = try prepared()
        defer { s.close() }
        _ = try s.insert("orders", ["_id": "o1", "lease": ["owner": "w1", "until": 5], "status": "pending"])
        let after = try s.update("orders", where: .id("o1"), Update(set: ["payment.mode": "cod", "payment.codAmountPaise": 5000], unset: ["lease"]))
        XCTAssertEqual(after, ["_id": "o1", "status": "pending", "payment": ["mode": "cod", "codAmountPaise": 5000]])
        XCTAssertEqual(try s.findOne("orders", where: .eq("payment.mode", "cod"))?["_id"], "o1")
        XCTAssertEqual(try s.count("orders", where: .exists("lease", true)), 0)
        // Unsetting an absent field is harmless.
        XCTAssertNotNil(try s.update("orders", where: .id("o1"), Update(unset: ["nothing.here"])))
    }

    public func sortLimitAndCursorPagingById() throws {
        let s = try prepared()
        defer { s.close() }
        let ids = (0..<25).map { String(format: "e%02d", $0) }
        for (n, id) in ids.shuffled().enumerated() {
            _ = try s.insert("events", ["_id": .string(id), "amount": .int(Int64(n % 5)), "kind": n % 2 == 0 ? "even" : "odd"])
        }
        var seen: [String] = []
        var cursor: String?
        repeat {
            let filter: Filter = cursor.map { .gt("_id", .string($0)) } ?? .all
            let page = try s.find("events", where: filter, sort: [.asc("_id")], limit: 10)
            XCTAssertLessThanOrEqual(page.count, 10)
            seen += page.compactMap { $0["_id"]?.stringValue }
            cursor = page.count == 10 ? page.last?["_id"]?.stringValue : nil
        } while cursor != nil
        XCTAssertEqual(seen, ids)

        let newestFirst = try s.find("events", where: .all, sort: [.desc("_id")], limit: 3).compactMap { $0["_id"]?.stringValue }
        XCTAssertEqual(newestFirst, ["e24", "e23", "e22"])

        // Equal amounts are ordered by _id, so the order is stable across calls and backends.
        let byAmount = try s.find("events", where: .lte("amount", 1), sort: [.desc("amount")], limit: 0)
        XCTAssertEqual(byAmount.count, 10)
        let amounts = byAmount.compactMap { $0["amount"]?.intValue }
        XCTAssertEqual(amounts, [1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
        let onesIds = byAmount.prefix(5).compactMap { $0["_id"]?.stringValue }
        XCTAssertEqual(onesIds, onesIds.sorted())
        XCTAssertEqual(try s.find("events", where: .eq("kind", "even")).count, 13)
    }

    public func countUpdateManyAndDelete() throws {
        let s = try prepared()
        defer { s.close() }
        for i in 0..<10 {
            _ = try s.insert("orders", ["_id": .string("o\(i)"), "status": i < 4 ? "pending" : "placed", "chargePaise": .int(Int64(i * 100))])
        }
        XCTAssertEqual(try s.count("orders", where: .eq("status", "pending")), 4)
        XCTAssertEqual(try s.count("orders", where: .and([.eq("status", "placed"), .gte("chargePaise", 700)])), 3)
        XCTAssertEqual(try s.updateMany("orders", where: .eq("status", "pending"), Update(set: ["status": "failed"], inc: ["retries": 1])), 4)
        XCTAssertEqual(try s.count("orders", where: .eq("retries", 1)), 4)
        XCTAssertEqual(try s.updateMany("orders", where: .eq("status", "nothing"), .set(["x": 1])), 0)
        XCTAssertEqual(try s.delete("orders", where: .eq("status", "failed")), 4)
        XCTAssertEqual(try s.count("orders"), 6)
        XCTAssertEqual(try s.delete("orders", where: .in("_id", ["o4", "o5", "nope"])), 2)
        XCTAssertEqual(try s.delete("orders", where: .all), 4)
        XCTAssertEqual(try s.count("orders"), 0)
    }

    /// MongoDB's rules: `ne` and `eq null` match absent fields, ranges never cross types,
    /// booleans are not numbers.
    public func filterSemanticsMatchMongoDB() throws {
        let s = try prepared()
        defer { s.close() }
        _ = try s.insert("events", ["_id": "a", "v": 5, "flag": true, "name": "x"])
        _ = try s.insert("events", ["_id": "b", "v": "5", "flag": false, "name": .null])
        _ = try s.insert("events", ["_id": "c", "v": 1, "flag": 1])
        _ = try s.insert("events", ["_id": "d", "v": 2.5])
        func ids(_ f: Filter) throws -> [String] { try s.find("events", where: f).compactMap { $0["_id"]?.stringValue } }
        XCTAssertEqual(try ids(.eq("v", 5)), ["a"])
        XCTAssertEqual(try ids(.eq("v", "5")), ["b"])
        XCTAssertEqual(try ids(.gt("v", 1)), ["a", "d"])
        XCTAssertEqual(try ids(.gte("v", "0")), ["b"])
        XCTAssertEqual(try ids(.lt("v", 2.6)), ["c", "d"])
        XCTAssertEqual(try ids(.eq("flag", true)), ["a"])
        XCTAssertEqual(try ids(.eq("flag", false)), ["b"])
        XCTAssertEqual(try ids(.eq("flag", 1)), ["c"])
        XCTAssertEqual(try ids(.ne("flag", true)), ["b", "c", "d"])
        XCTAssertEqual(try ids(.ne("name", "x")), ["b", "c", "d"])
        XCTAssertEqual(try ids(.eq("name", .null)), ["b", "c", "d"])
        XCTAssertEqual(try ids(.ne("name", .null)), ["a"])
        XCTAssertEqual(try ids(.exists("name", true)), ["a", "b"])
        XCTAssertEqual(try ids(.exists("name", false)), ["c", "d"])
        XCTAssertEqual(try ids(.in("v", [1, "5"])), ["b", "c"])
        XCTAssertEqual(try ids(.in("v", [])), [])
        XCTAssertEqual(try ids(.or([.eq("v", 1), .eq("_id", "d")])), ["c", "d"])
        XCTAssertEqual(try ids(.or([])), [])
        XCTAssertEqual(try ids(.and([])), ["a", "b", "c", "d"])
        XCTAssertEqual(try ids(.gte("_id", "c")), ["c", "d"])
    }

    public func valuesRoundTripWithTheirTypes() throws {
        let s = try prepared()
        defer { s.close() }
        let doc: JSON = [
            "_id": "t1",
            "big": .int(4_611_686_018_427_387_904),
            "negative": .int(-9_000_000_000),
            "ratio": 1.25,
            "yes": true, "no": false, "nothing": .null,
            "nested": ["deeper": ["list": [1, "two", 3.5, false, .null, ["k": "v"]]]],
            "when": ["$date": .int(1_700_000_000_123)],
            "quote": "it's \"quoted\" ; DROP TABLE x; -- \u{1F69A}",
            "empty": ["list": [], "obj": [:]],
        ]
        XCTAssertEqual(try s.insert("events", doc), .created(doc))
        XCTAssertEqual(try s.get("events", id: "t1"), doc)
        XCTAssertEqual(try s.findOne("events", where: .eq("quote", doc["quote"]!))?["_id"], "t1")
        XCTAssertEqual(try s.findOne("events", where: .gt("when", ["$date": .int(1_699_999_999_999)]))?["_id"], "t1")
        XCTAssertNil(try s.findOne("events", where: .lt("when", ["$date": .int(1_700_000_000_000)])))
        let after = try s.update("events", where: .id("t1"), Update(set: ["nested.deeper.flag": true, "obj": ["a": [1, 2]], "s": "x"], inc: ["big": 1]))
        XCTAssertEqual(after?["big"], .int(4_611_686_018_427_387_905))
        XCTAssertEqual(after?["nested"]?["deeper"]?["flag"], true)
        XCTAssertEqual(after?["nested"]?["deeper"]?["list"], doc["nested"]?["deeper"]?["list"])
        XCTAssertEqual(after?["obj"], ["a": [1, 2]])
        XCTAssertEqual(after?["s"], "x")
        XCTAssertEqual(after?["when"], doc["when"])
        XCTAssertEqual(try s.get("events", id: "t1"), after)
    }

    public func schemaVersionNewerThanTheBinaryIsRefused() throws {
        let s = try open()
        defer { s.close() }
        try s.prepare(Self.collections, schemaVersion: 3)
        try s.prepare(Self.collections, schemaVersion: 3)  // idempotent
        expectStoreError(.schemaTooNew) { try s.prepare(Self.collections, schemaVersion: 2) }
        try s.prepare(Self.collections, schemaVersion: 4)
        expectStoreError(.schemaTooNew) { try s.prepare(Self.collections, schemaVersion: 3) }
    }

    public func malformedRequestsAreRefusedAsInvalid() throws {
        let s = try prepared()
        defer { s.close() }
        expectStoreError(.invalid) { _ = try s.find("events", where: .eq("a'b", 1)) }
        expectStoreError(.invalid) { _ = try s.find("events", where: .eq("a..b", 1)) }
        expectStoreError(.invalid) { _ = try s.find("events; DROP", where: .all) }
        expectStoreError(.invalid) { try s.prepare([CollectionSpec("meta")], schemaVersion: 1) }
        expectStoreError(.invalid) { _ = try s.find("events", where: .eq("obj", ["a": 1])) }
        expectStoreError(.invalid) { _ = try s.find("events", where: .gt("flag", true)) }
        expectStoreError(.invalid) { _ = try s.find("events", where: .all, sort: [.asc("x)")], limit: 1) }
        expectStoreError(.invalid) { _ = try s.insert("events", ["no": "id"]) }
        expectStoreError(.invalid) { _ = try s.insert("events", ["_id": 5]) }
        _ = try s.insert("events", ["_id": "e1", "a": ["b": 1]])
        expectStoreError(.invalid) { _ = try s.update("events", where: .id("e1"), .set(["_id": "other"])) }
        expectStoreError(.invalid) { _ = try s.update("events", where: .id("e1"), Update(set: ["a.b": 2], inc: ["a": 1])) }
        XCTAssertEqual(try s.get("events", id: "e1"), ["_id": "e1", "a": ["b": 1]])
    }

    public func closedStoreIsUnavailable() throws {
        let s = try prepared()
        try s.ping()
        s.close()
        expectStoreError(.unavailable) { try s.ping() }
        expectStoreError(.unavailable) { _ = try s.get("events", id: "x") }
    }
}
