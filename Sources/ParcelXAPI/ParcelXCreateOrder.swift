/// Body of `POST /api/v3/order/create_order`, with the provider's field names.
/// Amounts are rupees as decimal strings; dimensions are one array entry per box.
public struct ParcelXCreateOrderRequest: Codable, Sendable, Hashable {
    public var clientOrderId: String
    public var invoiceNumber: String
    public var consigneeName: String
    /// 10 digits.
    public var consigneeMobile: String
    public var consigneePhone: String
    public var consigneeEmailId: String
    /// Clients cap it at 150 characters.
    public var consigneeAddress1: String
    public var consigneeAddress2: String
    /// 6 digits.
    public var consigneePincode: String
    public var pickAddressId: String
    public var returnAddressId: String
    /// `surface` or `air`.
    public var expressType: String
    /// `Prepaid` or `COD`.
    public var paymentMode: String
    public var codAmount: String
    public var orderAmount: String
    public var taxAmount: String
    public var extraCharges: String
    /// 0 = the provider picks the cheapest courier, 1 = use `courierCode`.
    public var courierType: Int
    public var courierCode: String
    public var mps: String
    public var b2b: Bool
    public var addressType: String
    public var pregeneratedAwb: String
    /// Centimetres, one entry per box.
    public var shipmentLength: [String]
    public var shipmentWidth: [String]
    public var shipmentHeight: [String]
    /// Kilograms, one entry per box.
    public var shipmentWeight: [String]
    public var products: [ParcelXProduct]

    enum CodingKeys: String, CodingKey {
        case clientOrderId = "client_order_id"
        case invoiceNumber = "invoice_number"
        case consigneeName = "consignee_name"
        case consigneeMobile = "consignee_mobile"
        case consigneePhone = "consignee_phone"
        case consigneeEmailId = "consignee_emailid"
        case consigneeAddress1 = "consignee_address1"
        case consigneeAddress2 = "consignee_address2"
        case consigneePincode = "consignee_pincode"
        case pickAddressId = "pick_address_id"
        case returnAddressId = "return_address_id"
        case expressType = "express_type"
        case paymentMode = "payment_mode"
        case codAmount = "cod_amount"
        case orderAmount = "order_amount"
        case taxAmount = "tax_amount"
        case extraCharges = "extra_charges"
        case courierType = "courier_type"
        case courierCode = "courier_code"
        case mps
        case b2b
        case addressType = "address_type"
        case pregeneratedAwb = "pregenerated_awb"
        case shipmentLength = "shipment_length"
        case shipmentWidth = "shipment_width"
        case shipmentHeight = "shipment_height"
        case shipmentWeight = "shipment_weight"
        case products
    }

    public init(clientOrderId: String, invoiceNumber: String = "", consigneeName: String, consigneeMobile: String,
                consigneePhone: String = "", consigneeEmailId: String = "", consigneeAddress1: String, consigneeAddress2: String = "",
                consigneePincode: String, pickAddressId: String, returnAddressId: String = "", expressType: String = "surface",
                paymentMode: String = "Prepaid", codAmount: String = "0", orderAmount: String = "0", taxAmount: String = "0",
                extraCharges: String = "0", courierType: Int = 0, courierCode: String = "", mps: String = "0", b2b: Bool = false,
                addressType: String = "Home", pregeneratedAwb: String = "", shipmentLength: [String] = [], shipmentWidth: [String] = [],
                shipmentHeight: [String] = [], shipmentWeight: [String] = [], products: [ParcelXProduct] = []) {
        self.clientOrderId = clientOrderId
        self.invoiceNumber = invoiceNumber
        self.consigneeName = consigneeName
        self.consigneeMobile = consigneeMobile
        self.consigneePhone = consigneePhone
        self.consigneeEmailId = consigneeEmailId
        self.consigneeAddress1 = consigneeAddress1
        self.consigneeAddress2 = consigneeAddress2
        self.consigneePincode = consigneePincode
        self.pickAddressId = pickAddressId
        self.returnAddressId = returnAddressId
        self.expressType = expressType
        self.paymentMode = paymentMode
        self.codAmount = codAmount
        self.orderAmount = orderAmount
        self.taxAmount = taxAmount
        self.extraCharges = extraCharges
        self.courierType = courierType
        self.courierCode = courierCode
        self.mps = mps
        self.b2b = b2b
        self.addressType = addressType
        self.pregeneratedAwb = pregeneratedAwb
        self.shipmentLength = shipmentLength
        self.shipmentWidth = shipmentWidth
        self.shipmentHeight = shipmentHeight
        self.shipmentWeight = shipmentWeight
        self.products = products
    }

    /// Tolerant the way a provider is: an absent optional field is empty, and a number sent
    /// where text is expected is read as its text. Whether the result is acceptable is the
    /// receiver's validation, not the decoder's.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        clientOrderId = try c.lenientString(.clientOrderId) ?? ""
        invoiceNumber = try c.lenientString(.invoiceNumber) ?? ""
        consigneeName = try c.lenientString(.consigneeName) ?? ""
        consigneeMobile = try c.lenientString(.consigneeMobile) ?? ""
        consigneePhone = try c.lenientString(.consigneePhone) ?? ""
        consigneeEmailId = try c.lenientString(.consigneeEmailId) ?? ""
        consigneeAddress1 = try c.lenientString(.consigneeAddress1) ?? ""
        consigneeAddress2 = try c.lenientString(.consigneeAddress2) ?? ""
        consigneePincode = try c.lenientString(.consigneePincode) ?? ""
        pickAddressId = try c.lenientString(.pickAddressId) ?? ""
        returnAddressId = try c.lenientString(.returnAddressId) ?? ""
        expressType = try c.lenientString(.expressType) ?? ""
        paymentMode = try c.lenientString(.paymentMode) ?? ""
        codAmount = try c.lenientString(.codAmount) ?? "0"
        orderAmount = try c.lenientString(.orderAmount) ?? "0"
        taxAmount = try c.lenientString(.taxAmount) ?? "0"
        extraCharges = try c.lenientString(.extraCharges) ?? "0"
        courierType = try c.lenientInt(.courierType) ?? 0
        courierCode = try c.lenientString(.courierCode) ?? ""
        mps = try c.lenientString(.mps) ?? "0"
        b2b = try c.lenientBool(.b2b) ?? false
        addressType = try c.lenientString(.addressType) ?? ""
        pregeneratedAwb = try c.lenientString(.pregeneratedAwb) ?? ""
        shipmentLength = try c.lenientStrings(.shipmentLength) ?? []
        shipmentWidth = try c.lenientStrings(.shipmentWidth) ?? []
        shipmentHeight = try c.lenientStrings(.shipmentHeight) ?? []
        shipmentWeight = try c.lenientStrings(.shipmentWeight) ?? []
        products = try c.decodeIfPresent([ParcelXProduct].self, forKey: .products) ?? []
    }
}

/// One line of `products[]` in a create call.
public struct ParcelXProduct: Codable, Sendable, Hashable {
    public var productSku: String
    public var productName: String
    /// Rupees as a decimal string.
    public var productValue: String
    public var productHsnsac: String
    /// Tax percent (an integer on the wire).
    public var productTaxper: Int
    public var productCategory: String
    /// A count, sent as a string.
    public var productQuantity: String
    public var productDescription: String

    enum CodingKeys: String, CodingKey {
        case productSku = "product_sku"
        case productName = "product_name"
        case productValue = "product_value"
        case productHsnsac = "product_hsnsac"
        case productTaxper = "product_taxper"
        case productCategory = "product_category"
        case productQuantity = "product_quantity"
        case productDescription = "product_description"
    }

    public init(productSku: String = "", productName: String, productValue: String, productHsnsac: String = "", productTaxper: Int = 0,
                productCategory: String = "", productQuantity: String = "1", productDescription: String = "") {
        self.productSku = productSku
        self.productName = productName
        self.productValue = productValue
        self.productHsnsac = productHsnsac
        self.productTaxper = productTaxper
        self.productCategory = productCategory
        self.productQuantity = productQuantity
        self.productDescription = productDescription
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        productSku = try c.lenientString(.productSku) ?? ""
        productName = try c.lenientString(.productName) ?? ""
        productValue = try c.lenientString(.productValue) ?? ""
        productHsnsac = try c.lenientString(.productHsnsac) ?? ""
        productTaxper = try c.lenientInt(.productTaxper) ?? 0
        productCategory = try c.lenientString(.productCategory) ?? ""
        productQuantity = try c.lenientString(.productQuantity) ?? ""
        productDescription = try c.lenientString(.productDescription) ?? ""
    }
}

/// `data` of a successful create. Every field is optional text because the provider sends
/// nulls and mixes numbers and strings for ids. (`lable_data` is the provider's spelling.)
public struct ParcelXCreateOrderData: Codable, Sendable, Hashable {
    public var awbNumber: String?
    public var orderNumber: String?
    public var jobId: String?
    public var lrnum: String?
    public var waybillsNumJson: String?
    public var lableData: String?
    public var routingCode: String?
    public var paymentMode: String?
    public var clientOrderId: String?
    public var partnerDisplayName: String?
    public var courierCode: String?
    public var pickupId: String?
    public var courierName: String?

    enum CodingKeys: String, CodingKey {
        case awbNumber = "awb_number"
        case orderNumber = "order_number"
        case jobId = "job_id"
        case lrnum
        case waybillsNumJson = "waybills_num_json"
        case lableData = "lable_data"
        case routingCode = "routing_code"
        case paymentMode = "payment_mode"
        case clientOrderId = "client_order_id"
        case partnerDisplayName = "partner_display_name"
        case courierCode = "courier_code"
        case pickupId = "pickup_id"
        case courierName = "courier_name"
    }

    public init(awbNumber: String?, orderNumber: String? = nil, jobId: String? = nil, lrnum: String? = "", waybillsNumJson: String? = nil,
                lableData: String? = nil, routingCode: String? = nil, paymentMode: String? = nil, clientOrderId: String? = nil,
                partnerDisplayName: String? = nil, courierCode: String? = nil, pickupId: String? = nil, courierName: String? = nil) {
        self.awbNumber = awbNumber
        self.orderNumber = orderNumber
        self.jobId = jobId
        self.lrnum = lrnum
        self.waybillsNumJson = waybillsNumJson
        self.lableData = lableData
        self.routingCode = routingCode
        self.paymentMode = paymentMode
        self.clientOrderId = clientOrderId
        self.partnerDisplayName = partnerDisplayName
        self.courierCode = courierCode
        self.pickupId = pickupId
        self.courierName = courierName
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        awbNumber = try c.lenientString(.awbNumber)
        orderNumber = try c.lenientString(.orderNumber)
        // These two are blobs in some answers; a client only needs to know they are there.
        jobId = (try? c.lenientString(.jobId)) ?? nil
        lrnum = try? c.lenientString(.lrnum)
        waybillsNumJson = (try? c.lenientString(.waybillsNumJson)) ?? nil
        lableData = (try? c.lenientString(.lableData)) ?? nil
        routingCode = try? c.lenientString(.routingCode)
        paymentMode = try? c.lenientString(.paymentMode)
        clientOrderId = try c.lenientString(.clientOrderId)
        partnerDisplayName = try? c.lenientString(.partnerDisplayName)
        courierCode = try? c.lenientString(.courierCode)
        pickupId = try? c.lenientString(.pickupId)
        courierName = try? c.lenientString(.courierName)
    }

    /// Nulls are written out, as the provider does.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(awbNumber, forKey: .awbNumber)
        try c.encode(orderNumber, forKey: .orderNumber)
        try c.encode(jobId, forKey: .jobId)
        try c.encode(lrnum, forKey: .lrnum)
        try c.encode(waybillsNumJson, forKey: .waybillsNumJson)
        try c.encode(lableData, forKey: .lableData)
        try c.encode(routingCode, forKey: .routingCode)
        try c.encode(paymentMode, forKey: .paymentMode)
        try c.encode(clientOrderId, forKey: .clientOrderId)
        try c.encode(partnerDisplayName, forKey: .partnerDisplayName)
        try c.encode(courierCode, forKey: .courierCode)
        try c.encode(pickupId, forKey: .pickupId)
        try c.encode(courierName, forKey: .courierName)
    }
}

/// The whole answer to a create call.
public typealias ParcelXCreateOrderResponse = ParcelXEnvelope<ParcelXCreateOrderData>

/// Body of `POST /api/v3/order/cancel_order`.
public struct ParcelXCancelOrderRequest: Codable, Sendable, Hashable {
    public var awb: String
    public init(awb: String) { self.awb = awb }

    enum CodingKeys: String, CodingKey { case awb }
    public init(from decoder: Decoder) throws {
        awb = try decoder.container(keyedBy: CodingKeys.self).lenientString(.awb) ?? ""
    }
}

/// The answer to a cancel call: status and message only.
public typealias ParcelXCancelOrderResponse = ParcelXStatusResponse
