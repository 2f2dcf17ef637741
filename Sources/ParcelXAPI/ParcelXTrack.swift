/// `current_status` of a tracking answer.
public struct ParcelXTrackStatus: Codable, Sendable, Hashable {
    /// Numeric code, e.g. 221; see `ParcelXStatusCode`.
    public var statusCode: Int
    public var statusTitle: String

    enum CodingKeys: String, CodingKey {
        case statusCode = "status_code"
        case statusTitle = "status_title"
    }

    public init(statusCode: Int, statusTitle: String) {
        self.statusCode = statusCode
        self.statusTitle = statusTitle
    }

    public init(_ code: ParcelXStatusCode) { self.init(statusCode: code.rawValue, statusTitle: code.title) }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        statusCode = try c.lenientInt(.statusCode) ?? 0
        statusTitle = try c.lenientString(.statusTitle) ?? ""
    }

    /// The code as a known status, nil for one this contract does not list.
    public var code: ParcelXStatusCode? { ParcelXStatusCode(rawValue: statusCode) }
}

/// One event in a tracking answer's `data[]`.
public struct ParcelXTrackEvent: Codable, Sendable, Hashable {
    public var statusTitle: String
    public var eventDate: String
    public var statusLocation: String
    public var remark: String

    enum CodingKeys: String, CodingKey {
        case statusTitle = "status_title"
        case eventDate = "event_date"
        case statusLocation = "status_location"
        case remark
    }

    public init(statusTitle: String, eventDate: String, statusLocation: String = "", remark: String = "") {
        self.statusTitle = statusTitle
        self.eventDate = eventDate
        self.statusLocation = statusLocation
        self.remark = remark
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        statusTitle = try c.lenientString(.statusTitle) ?? ""
        eventDate = try c.lenientString(.eventDate) ?? ""
        statusLocation = try c.lenientString(.statusLocation) ?? ""
        remark = try c.lenientString(.remark) ?? ""
    }
}

/// The answer of both tracking calls (`GET /api/v3/track_order?awb=` and
/// `GET /api/v1/track_order?channel_order_no=`). Unlike the other answers the shipment's fields
/// sit beside `status`, and `data` is the event list. `status: false` means no such shipment.
public struct ParcelXTrackResponse: Codable, Sendable, Hashable {
    public var status: Bool
    public var responsemsg: ParcelXMessage?
    public var awbNumber: String?
    public var clientOrderId: String?
    public var orderId: String?
    public var courierName: String?
    public var currentStatus: ParcelXTrackStatus?
    public var origin: String?
    public var destination: String?
    public var expectedDeliveryDate: String?
    public var data: [ParcelXTrackEvent]?

    enum CodingKeys: String, CodingKey {
        case status, responsemsg
        case awbNumber = "awb_number"
        case clientOrderId = "client_order_id"
        case orderId = "order_id"
        case courierName = "courier_name"
        case currentStatus = "current_status"
        case origin, destination
        case expectedDeliveryDate = "expected_delivery_date"
        case data
    }

    public init(status: Bool, responsemsg: ParcelXMessage? = nil, awbNumber: String? = nil, clientOrderId: String? = nil, orderId: String? = nil,
                courierName: String? = nil, currentStatus: ParcelXTrackStatus? = nil, origin: String? = nil, destination: String? = nil,
                expectedDeliveryDate: String? = nil, data: [ParcelXTrackEvent]? = nil) {
        self.status = status
        self.responsemsg = responsemsg
        self.awbNumber = awbNumber
        self.clientOrderId = clientOrderId
        self.orderId = orderId
        self.courierName = courierName
        self.currentStatus = currentStatus
        self.origin = origin
        self.destination = destination
        self.expectedDeliveryDate = expectedDeliveryDate
        self.data = data
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        status = try c.lenientBool(.status) ?? false
        responsemsg = try c.decodeIfPresent(ParcelXMessage.self, forKey: .responsemsg)
        awbNumber = try c.lenientString(.awbNumber)
        clientOrderId = try c.lenientString(.clientOrderId)
        orderId = try c.lenientString(.orderId)
        courierName = try? c.lenientString(.courierName)
        currentStatus = try c.decodeIfPresent(ParcelXTrackStatus.self, forKey: .currentStatus)
        origin = try? c.lenientString(.origin)
        destination = try? c.lenientString(.destination)
        expectedDeliveryDate = try? c.lenientString(.expectedDeliveryDate)
        data = try? c.decodeIfPresent([ParcelXTrackEvent].self, forKey: .data)
    }

    /// The readable message.
    public var message: String? { responsemsg?.text }
}
