/// Body of `POST /api/v3/create_warehouse` (a pickup address).
public struct ParcelXCreateWarehouseRequest: Codable, Sendable, Hashable {
    /// Unique per account.
    public var addressTitle: String
    public var senderName: String
    public var fullAddress: String
    public var phone: String
    public var pincode: String

    enum CodingKeys: String, CodingKey {
        case addressTitle = "address_title"
        case senderName = "sender_name"
        case fullAddress = "full_address"
        case phone, pincode
    }

    public init(addressTitle: String, senderName: String, fullAddress: String, phone: String, pincode: String) {
        self.addressTitle = addressTitle
        self.senderName = senderName
        self.fullAddress = fullAddress
        self.phone = phone
        self.pincode = pincode
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        addressTitle = try c.lenientString(.addressTitle) ?? ""
        senderName = try c.lenientString(.senderName) ?? ""
        fullAddress = try c.lenientString(.fullAddress) ?? ""
        phone = try c.lenientString(.phone) ?? ""
        pincode = try c.lenientString(.pincode) ?? ""
    }
}

/// `data` of a successful create_warehouse: the id to send as `pick_address_id`.
public struct ParcelXCreateWarehouseData: Codable, Sendable, Hashable {
    public var pickAddressId: String

    enum CodingKeys: String, CodingKey { case pickAddressId = "pick_address_id" }

    public init(pickAddressId: String) { self.pickAddressId = pickAddressId }

    public init(from decoder: Decoder) throws {
        pickAddressId = try decoder.container(keyedBy: CodingKeys.self).lenientString(.pickAddressId) ?? ""
    }
}

/// One entry of `GET /api/v3/warehouse-list`.
public struct ParcelXWarehouse: Codable, Sendable, Hashable {
    public var warehouseId: String
    public var title: String
    public var addressee: String
    public var phone: String
    public var fullAddress: String
    public var city: String
    public var state: String
    public var pincode: String

    enum CodingKeys: String, CodingKey {
        case warehouseId = "warehouse_id"
        case title, addressee, phone
        case fullAddress = "full_address"
        case city, state, pincode
    }

    public init(warehouseId: String, title: String, addressee: String, phone: String, fullAddress: String, city: String, state: String,
                pincode: String) {
        self.warehouseId = warehouseId
        self.title = title
        self.addressee = addressee
        self.phone = phone
        self.fullAddress = fullAddress
        self.city = city
        self.state = state
        self.pincode = pincode
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        warehouseId = try c.lenientString(.warehouseId) ?? ""
        title = try c.lenientString(.title) ?? ""
        addressee = try c.lenientString(.addressee) ?? ""
        phone = try c.lenientString(.phone) ?? ""
        fullAddress = try c.lenientString(.fullAddress) ?? ""
        city = try c.lenientString(.city) ?? ""
        state = try c.lenientString(.state) ?? ""
        pincode = try c.lenientString(.pincode) ?? ""
    }
}

/// Body of `POST /api/v3/remove-warehouse`.
public struct ParcelXRemoveWarehouseRequest: Codable, Sendable, Hashable {
    public var warehouseId: String

    enum CodingKeys: String, CodingKey { case warehouseId = "warehouse_id" }

    public init(warehouseId: String) { self.warehouseId = warehouseId }

    public init(from decoder: Decoder) throws {
        warehouseId = try decoder.container(keyedBy: CodingKeys.self).lenientString(.warehouseId) ?? ""
    }
}

public typealias ParcelXCreateWarehouseResponse = ParcelXEnvelope<ParcelXCreateWarehouseData>
public typealias ParcelXWarehouseListResponse = ParcelXEnvelope<[ParcelXWarehouse]>
public typealias ParcelXRemoveWarehouseResponse = ParcelXStatusResponse
