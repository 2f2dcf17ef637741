/// The provider operations the platform uses; the raw value is the name used in logs and stats.
public enum ParcelXOperation: String, Sendable, CaseIterable, Codable {
    case createOrder = "create_order"
    case cancelOrder = "cancel_order"
    /// Tracking by AWB.
    case trackOrder = "track_order"
    /// Lookup by the merchant's order number: tells whether an earlier create that timed out
    /// went through.
    case trackByClientOrderId = "track_order_by_client_order_id"
    case createWarehouse = "create_warehouse"
    case warehouseList = "warehouse_list"
    case removeWarehouse = "remove_warehouse"

    /// Method, path and (for lookups) the query parameter of this operation.
    public var endpoint: ParcelXEndpoint {
        switch self {
        case .createOrder: ParcelXEndpoint(method: "POST", path: "/api/v3/order/create_order")
        case .cancelOrder: ParcelXEndpoint(method: "POST", path: "/api/v3/order/cancel_order")
        case .trackOrder: ParcelXEndpoint(method: "GET", path: "/api/v3/track_order", queryParameter: "awb")
        case .trackByClientOrderId: ParcelXEndpoint(method: "GET", path: "/api/v1/track_order", queryParameter: "channel_order_no")
        case .createWarehouse: ParcelXEndpoint(method: "POST", path: "/api/v3/create_warehouse")
        case .warehouseList: ParcelXEndpoint(method: "GET", path: "/api/v3/warehouse-list")
        case .removeWarehouse: ParcelXEndpoint(method: "POST", path: "/api/v3/remove-warehouse")
        }
    }

    /// The operation served at a method and path, if any.
    public init?(method: String, path: String) {
        guard let op = ParcelXOperation.allCases.first(where: { $0.endpoint.method == method && $0.endpoint.path == path }) else {
            return nil
        }
        self = op
    }
}

/// Where an operation lives on the provider's HTTP API.
public struct ParcelXEndpoint: Sendable, Hashable {
    public let method: String
    public let path: String
    public let queryParameter: String?

    public init(method: String, path: String, queryParameter: String? = nil) {
        self.method = method
        self.path = path
        self.queryParameter = queryParameter
    }

    /// The full URL under `baseURL` (e.g. `https://app.parcelx.in`), with the lookup value
    /// percent-encoded into the query when this endpoint takes one.
    public func url(baseURL: String, value: String? = nil) -> String {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        guard let q = queryParameter, let value else { return base + path }
        return base + path + "?" + q + "=" + ParcelXEndpoint.percentEncode(value)
    }

    /// RFC 3986 unreserved characters pass; everything else is %XX of its UTF-8 bytes.
    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
            }
        }
        return out
    }
}
