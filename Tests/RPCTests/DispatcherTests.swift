import XCTest
import JSON
import Runtime
@testable import RPC

/// The examples of the JSON-RPC 2.0 specification, and the project's additions.
final class DispatcherTests: XCTestCase {
    let d: Dispatcher = {
        let log = Logger(service: "test", instance: 0, level: .error)
        let subtract = Method("subtract", summary: "a - b", roles: [], params: .object([("minuend", .int()), ("subtrahend", .int())], required: ["minuend", "subtrahend"]), result: .int()) { p, _ in
            .int(p["minuend"]!.intValue! - p["subtrahend"]!.intValue!)
        }
        let sum = Method("sum", summary: "", roles: [], params: .object([], additional: true), result: .int()) { _, _ in 7 }
        let notify = Method("notify_hello", summary: "", roles: [], params: .object([], additional: true), result: .anything) { _, _ in .null }
        let getData = Method("get_data", summary: "", roles: [], params: .empty, result: .anything) { _, _ in ["hello", 5] }
        let admin = Method("admin.only", summary: "", roles: [.admin], params: .empty, result: .anything) { _, ctx in .string(ctx.actor!.userId) }
        let boom = Method("boom", summary: "", roles: [], params: .empty, result: .anything) { _, _ in throw RuntimeError("secret detail") }
        let whoami = Method("whoami", summary: "", roles: [], params: .object([], additional: true), result: .anything) { p, ctx in
            ["params": p, "requestId": .string(ctx.requestId), "actor": ctx.actor.map { $0.json } ?? .null,
             "timeoutMs": .int(Int64((ctx.deadline.remainingMs + 500) / 1000 * 1000))]
        }
        return Dispatcher(service: "test", instance: 0, methods: [subtract, sum, notify, getData, admin, boom, whoami], log: log)
    }()

    func call(_ s: String) -> JSON? {
        guard let r = d.handle(line: Array(s.utf8)) else { return nil }
        return try! JSONParser.parse(r)
    }

    func testByNameParams() {
        XCTAssertEqual(call(#"{"jsonrpc":"2.0","method":"subtract","params":{"subtrahend":23,"minuend":42},"id":3}"#),
                       ["jsonrpc": "2.0", "result": 19, "id": 3])
    }

    func testIdIsEchoedAsGiven() {
        XCTAssertEqual(call(#"{"jsonrpc":"2.0","method":"get_data","id":"abc"}"#)?["id"], "abc")
        XCTAssertEqual(call(#"{"jsonrpc":"2.0","method":"get_data","id":null}"#)?["id"], .null)
        XCTAssertEqual(call(#"{"jsonrpc":"2.0","method":"get_data","id":1.5}"#)?["id"], .double(1.5))
    }

    func testNotificationsAreNeverAnswered() {
        XCTAssertNil(call(#"{"jsonrpc":"2.0","method":"notify_hello","params":{"x":7}}"#))
        XCTAssertNil(call(#"{"jsonrpc":"2.0","method":"no_such_method"}"#))
    }

    func testMethodNotFound() {
        XCTAssertEqual(call(#"{"jsonrpc":"2.0","method":"foobar","id":"1"}"#)?["error"]?["code"], -32601)
    }

    func testParseErrorHasNullId() {
        let r = call(#"{"jsonrpc":"2.0","method":"foobar,"params":"bar","baz]"#)
        XCTAssertEqual(r?["error"]?["code"], -32700)
        XCTAssertEqual(r?["id"], .null)
    }

    func testInvalidRequestObject() {
        XCTAssertEqual(call(#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#)?["error"]?["code"], -32600)
        XCTAssertEqual(call(#"{"method":"sum","id":1}"#)?["error"]?["code"], -32600)
    }

    func testBatchInvalidJSON() {
        XCTAssertEqual(call(#"[{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":"1"},{"jsonrpc":"2.0","method""#)?["error"]?["code"], -32700)
    }

    func testEmptyBatch() {
        let r = call("[]")
        XCTAssertEqual(r?["error"]?["code"], -32600)
    }

    func testInvalidBatchOfNonObjects() {
        let r = call("[1,2,3]")
        XCTAssertEqual(r?.arrayValue?.count, 3)
        XCTAssertEqual(r?.arrayValue?.allSatisfy { $0["error"]?["code"] == -32600 }, true)
    }

    func testMixedBatch() {
        let r = call(#"""
        [{"jsonrpc":"2.0","method":"sum","params":{},"id":"1"},{"jsonrpc":"2.0","method":"notify_hello","params":{}},
         {"jsonrpc":"2.0","method":"subtract","params":{"minuend":42,"subtrahend":23},"id":"2"},{"foo":"boo"},
         {"jsonrpc":"2.0","method":"foo.get","params":{"name":"myself"},"id":"5"},{"jsonrpc":"2.0","method":"get_data","id":"9"}]
        """#.replacingOccurrences(of: "\n", with: ""))
        let arr = r?.arrayValue ?? []
        XCTAssertEqual(arr.count, 5)
        XCTAssertEqual(arr.first { $0["id"] == "2" }?["result"], 19)
        XCTAssertEqual(arr.first { $0["id"] == "5" }?["error"]?["code"], -32601)
        XCTAssertEqual(arr.first { $0["id"] == "9" }?["result"], ["hello", 5])
    }

    func testAllNotificationBatchGivesNothing() {
        XCTAssertNil(call(#"[{"jsonrpc":"2.0","method":"notify_hello","params":{}},{"jsonrpc":"2.0","method":"notify_hello"}]"#))
    }

    func testInvalidParamsListEveryFieldWithItsPath() {
        let r = call(#"{"jsonrpc":"2.0","method":"subtract","params":{"minuend":"x","extra":1},"id":1}"#)
        XCTAssertEqual(r?["error"]?["code"], -32602)
        let fields = r?["error"]?["data"]?["fields"]?.arrayValue ?? []
        let paths = Set(fields.compactMap { $0["path"]?.stringValue })
        XCTAssertEqual(paths, ["minuend", "subtrahend", "extra"])
    }

    func testPositionalParamsAreRefused() {
        XCTAssertEqual(call(#"{"jsonrpc":"2.0","method":"subtract","params":[42,23],"id":1}"#)?["error"]?["code"], -32602)
    }

    func testRolesAreCheckedFromCtx() {
        XCTAssertEqual(call(#"{"jsonrpc":"2.0","method":"admin.only","id":1}"#)?["error"]?["code"], -32001)
        XCTAssertEqual(call(#"{"jsonrpc":"2.0","method":"admin.only","id":1,"params":{"ctx":{"actor":{"userId":"u1","role":"merchant"}}}}"#)?["error"]?["code"], -32003)
        XCTAssertEqual(call(#"{"jsonrpc":"2.0","method":"admin.only","id":1,"params":{"ctx":{"actor":{"userId":"u1","role":"admin"}}}}"#)?["result"], "u1")
    }

    /// A single request's `ctx` is read straight off the wire; a batch item's comes from the
    /// parsed object. Both must see the same context and the same params, whatever the shape.
    func testContextIsReadTheSameWayInSingleRequestsAndBatches() {
        let variants = [
            #"{"ctx":{"requestId":"r-1","timeoutMs":3000,"actor":{"userId":"u1","role":"admin"}},"x":1}"#,
            #"{"x":[1,{"y":2}],"ctx":{"timeoutMs":2000.0,"actor":{"role":"merchant","userId":"u2"},"requestId":"r-2"}}"#,
            #"{"ctx":{"requestId":"r-3","actor":{"userId":"u3","role":"nobody"}}}"#,
            #"{"ctx":{"requestId":"r-4","actor":"admin","requestId":"r-4b","extra":{"a":[]}}}"#,
            #"{"ctx":{"requestId":"r-5","timeoutMs":99999999},"ctx":{"requestId":"r-5b","timeoutMs":4000}}"#,
            #"{"ctx":{"requestId":"","timeoutMs":1000}}"#,
            #"{"ctx":{"requestId":"r-7","timeoutMs":-5,"actor":{"userId":5,"role":"admin"}}}"#,
            #"{"ctx":{"requestId":"r-8","timeoutMs":1000,"actor":{"userId":"u8","role":"admin"}}}"#,
        ]
        for (i, params) in variants.enumerated() {
            // The whole answer: a result, or for the negative timeout an expired-deadline error.
            let single = call(#"{"jsonrpc":"2.0","method":"whoami","id":1,"params":"# + params + "}")
            let batch = call(#"[{"jsonrpc":"2.0","method":"whoami","id":1,"params":"# + params + "}]")?.arrayValue?.first
            XCTAssertNotNil(single, params)
            var s = single ?? .null, b = batch ?? .null
            if i == 5 {
                // An empty request id is replaced by a fresh one on both paths.
                XCTAssertTrue(s["result"]?["requestId"]?.stringValue?.hasPrefix("req") ?? false)
                XCTAssertTrue(b["result"]?["requestId"]?.stringValue?.hasPrefix("req") ?? false)
                s["result"]?["requestId"] = nil
                b["result"]?["requestId"] = nil
            }
            if i == 6 { XCTAssertEqual(s["error"]?["code"], -32054) }
            XCTAssertEqual(s, b, params)
        }
        let first = call(#"{"jsonrpc":"2.0","method":"whoami","id":1,"params":"# + variants[0] + "}")?["result"]
        XCTAssertEqual(first, ["params": ["x": 1], "requestId": "r-1", "actor": ["userId": "u1", "role": "admin"], "timeoutMs": 3000])
        let fourth = call(#"{"jsonrpc":"2.0","method":"whoami","id":1,"params":"# + variants[3] + "}")?["result"]
        XCTAssertEqual(fourth?["requestId"], "r-4b", "the last of duplicate members wins, as in a parsed object")
        XCTAssertEqual(fourth?["actor"], .null)
    }

    func testExpiredDeadlineIsNotRun() {
        let r = call(#"{"jsonrpc":"2.0","method":"get_data","id":1,"params":{"ctx":{"timeoutMs":0,"requestId":"r-1"}}}"#)
        XCTAssertEqual(r?["error"]?["code"], -32054)
        XCTAssertEqual(r?["error"]?["data"]?["requestId"], "r-1")
    }

    func testInternalErrorsHideDetails() {
        let r = call(#"{"jsonrpc":"2.0","method":"boom","id":1}"#)
        XCTAssertEqual(r?["error"]?["code"], -32603)
        XCTAssertFalse(r!.serialized().contains("secret detail"))
    }

    func testDrainingRefusesNewCalls() {
        let log = Logger(service: "t", instance: 0, level: .error)
        let d2 = Dispatcher(service: "t", instance: 0, methods: [], log: log)
        d2.startDraining()
        let r = try! JSONParser.parse(d2.handle(line: Array(#"{"jsonrpc":"2.0","method":"rpc.discover","id":1}"#.utf8))!)
        XCTAssertNotNil(r["result"], "rpc.* stays available while draining")
    }

    func testDiscoverIsGeneratedFromDeclarations() {
        let r = call(#"{"jsonrpc":"2.0","method":"rpc.discover","id":1}"#)!["result"]!
        XCTAssertEqual(r["openrpc"], "1.3.2")
        let names = r["methods"]!.arrayValue!.compactMap { $0["name"]?.stringValue }
        XCTAssertEqual(Set(names), Set(d.methodNames))
        let sub = r["methods"]!.arrayValue!.first { $0["name"] == "subtract" }!
        XCTAssertEqual(sub["params"]!.arrayValue!.first { $0["name"] == "minuend" }?["schema"]?["type"], "integer")
    }

    func testHealth() {
        let r = call(#"{"jsonrpc":"2.0","method":"rpc.health","id":1}"#)!["result"]!
        XCTAssertEqual(r["status"], "ok")
        XCTAssertEqual(r["service"], "test")
    }

    /// The id of a line too long to read is taken from its beginning, and only when it is
    /// whole there: a number cut by the end of the kept bytes would name another request.
    func testIdOfALineCutShort() {
        func id(_ s: String) -> JSON? { Dispatcher.leadingId(Array(s.utf8)) }
        XCTAssertEqual(id(#"{"jsonrpc":"2.0","id":12345,"method":"x","params":{"v":"aaa"#), 12345)
        XCTAssertEqual(id(#"{"id":"abc","method"#), "abc")
        XCTAssertEqual(id(#"{"id":null,"method":"#), .null)
        XCTAssertNil(id(#"{"jsonrpc":"2.0","id":123"#), "cut inside the number")
        XCTAssertNil(id(#"{"jsonrpc":"2.0","params":{"v":"aaaa"#), "the id comes after the cut")
        XCTAssertNil(id(#"{"id":{"a":1},"method":"x""#), "not a valid id kind")
        XCTAssertNil(id(#"[{"id":1},{"id":2"#))
        XCTAssertNil(id("\u{0}\u{1}garbage"))
        let answer = try! JSONParser.parse(Dispatcher.tooLongAnswer(prefix: Array(#"{"jsonrpc":"2.0","id":9,"method":"x","params":{"#.utf8), limit: 100))
        XCTAssertEqual(answer["id"], 9)
        XCTAssertEqual(answer["error"]?["code"], -32600)
        XCTAssertEqual(answer["error"]?["data"]?["reason"], "payload_too_large")
    }
}
