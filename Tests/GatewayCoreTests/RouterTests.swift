import XCTest
import RPC
@testable import GatewayCore

/// Route matching without sockets: literal segments beat variables, 405 lists the methods the
/// path has, a variable takes one id-like segment.
final class RouterTests: XCTestCase {
    private func route(_ method: String, _ path: String) -> Route {
        Route(method, path, .anyone, "") { _ throws(RPCError) in .noContent() }
    }

    private lazy var router = Router(routes: [
        route("GET", "/orders"), route("POST", "/orders/create"), route("GET", "/orders/{id}"),
        route("POST", "/orders/{id}/cancel"), route("DELETE", "/orders/{id}"), route("GET", "/healthz"),
    ])

    private func describe(_ m: Router.Match) -> String {
        switch m {
        case .found(let r, let vars): return "\(r.name) \(vars.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))"
        case .methodNotAllowed(let allowed): return "405 \(allowed.sorted().joined(separator: ","))"
        case .notFound: return "404"
        }
    }

    func testMatching() {
        let cases: [(String, String, String)] = [
            ("GET", "/orders", "GET /orders "),
            ("HEAD", "/orders", "GET /orders "),
            ("GET", "/orders/", "GET /orders "),
            ("GET", "/orders/ord_01ABC", "GET /orders/{id} id=ord_01ABC"),
            ("DELETE", "/orders/ord_1", "DELETE /orders/{id} id=ord_1"),
            ("POST", "/orders/ord_1/cancel", "POST /orders/{id}/cancel id=ord_1"),
            ("POST", "/orders/create", "POST /orders/create "),
            // The literal route owns its path: not an order with id "create".
            ("GET", "/orders/create", "405 POST"),
            ("PUT", "/orders/ord_1", "405 DELETE,GET"),
            ("POST", "/healthz", "405 GET"),
            ("GET", "/nothing", "404"),
            ("GET", "/orders/a%20b", "404"),
            ("GET", "/orders/" + String(repeating: "a", count: 65), "404"),
            ("GET", "/orders/ord_1/cancel/more", "404"),
            ("GET", "/orders//cancel", "404"),
        ]
        for (method, path, want) in cases {
            XCTAssertEqual(describe(router.match(method: method, path: path)), want, "\(method) \(path)")
        }
    }

    func testMoreSpecificIsDecidedByTheFirstDifference() {
        XCTAssertTrue(Router.moreSpecific([true, false], than: [false, true]))
        XCTAssertFalse(Router.moreSpecific([false, true], than: [true, false]))
        XCTAssertFalse(Router.moreSpecific([true, true], than: [true, true]))
    }
}
