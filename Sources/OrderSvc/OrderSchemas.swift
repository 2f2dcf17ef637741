import RPC
import Domain

/// The schemas of OrderSvc's methods, declared once: they validate input and document it
/// (`rpc.discover`, and through it the Gateway's OpenAPI document).
enum OrderSchemas {
    static let mobile = Schema.string(pattern: "^[6-9][0-9]{9}$")
    static let pincode = Schema.string(pattern: "^[1-9][0-9]{5}$")

    static let consignee = Schema.object([
        ("name", .string(min: 1, max: 100)),
        ("mobile", mobile),
        ("phone", .string(max: 15, pattern: "^[0-9+ -]*$")),
        ("email", .string(max: 254, pattern: "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$")),
        ("address1", .string(min: 1, max: 150)),
        ("address2", .string(max: 150)),
        ("city", .string(max: 60)),
        ("state", .string(max: 60)),
        ("pincode", pincode),
    ], required: ["name", "mobile", "address1", "pincode"])

    static let payment = Schema.object([
        ("mode", .string(oneOf: ["prepaid", "cod"])),
        ("codAmountPaise", .int(min: 0, max: 10_000_000)),
    ], required: ["mode"])

    static let package = Schema.object([
        ("weightGrams", .int(min: 1, max: 50_000)),
        ("lengthCm", .int(min: 1, max: 300)),
        ("widthCm", .int(min: 1, max: 300)),
        ("heightCm", .int(min: 1, max: 300)),
    ], required: ["weightGrams", "lengthCm", "widthCm", "heightCm"])

    static let item = Schema.object([
        ("sku", .string(min: 1, max: 64)),
        ("name", .string(min: 1, max: 200)),
        ("quantity", .int(min: 1, max: 10_000)),
        ("pricePaise", .int(min: 0, max: 100_000_000)),
        ("hsn", .string(max: 16, pattern: "^[0-9]*$")),
        ("taxPercent", .int(min: 0, max: 28)),
        ("category", .string(max: 60)),
    ], required: ["sku", "name", "quantity", "pricePaise"])

    static let create = Schema.object([
        ("clientOrderId", .string(min: 1, max: 64, pattern: "^[A-Za-z0-9_./-]+$")),
        ("consignee", consignee),
        ("pickupAddressId", .string(min: 1, max: 64)),
        ("payment", payment),
        ("package", package),
        ("items", .array(item, min: 1, max: 100)),
        ("expressType", .string(oneOf: ["surface", "air"])),
    ], required: ["clientOrderId", "consignee", "pickupAddressId", "payment", "package", "items"])

    static let order = Schema.object([
        ("id", .string()), ("userId", .string()), ("clientOrderId", .string()),
        ("status", .string(oneOf: ["pending", "placed", "failed", "cancel_requested", "cancelled"])),
        ("providerSyncStatus", .string(oneOf: ["pending", "synced", "failed"])),
        ("parcelxRequestRefId", .nullable(.string())), ("parcelxResponseRefId", .nullable(.string())),
        ("awbNumber", .nullable(.string())), ("courierName", .nullable(.string())),
        ("chargePaise", .int()), ("consignee", .anything), ("pickupAddressId", .string()), ("payment", .anything),
        ("package", .anything), ("items", .anything), ("expressType", .string()), ("history", .anything),
        ("createdAt", .string()), ("updatedAt", .string()),
    ], additional: true)

    static let page = Schema.object([
        ("status", .string(oneOf: ["pending", "placed", "failed", "cancel_requested", "cancelled"])),
        ("cursor", Paging.cursor(idPrefix: "ord")),
        ("limit", Paging.limit),
        ("userId", .string(min: 1, max: 64)),
    ])

    static let orderId = Schema.object([("orderId", .id)], required: ["orderId"])

    /// The fields a provider outcome may set (ParcelXSvc, through `orders.internal.transition`).
    static let transition = Schema.object([
        ("orderId", .id),
        ("from", .array(.string(oneOf: ["pending", "placed", "failed", "cancel_requested", "cancelled"]), min: 1)),
        ("to", .string(oneOf: ["pending", "placed", "failed", "cancel_requested", "cancelled"])),
        ("set", .object([
            ("providerSyncStatus", .string(oneOf: ["pending", "synced", "failed"])),
            ("parcelxRequestRefId", .string(max: 64)), ("parcelxResponseRefId", .string(max: 64)),
            ("awbNumber", .string(max: 32)), ("courierName", .string(max: 100)), ("providerMessage", .string(max: 500)),
        ])),
        ("refund", .boolean),
        ("note", .string(max: 200)),
    ], required: ["orderId", "from"])
}
