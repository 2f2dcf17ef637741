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
        ("status", OrderStatus.schema),
        ("providerSyncStatus", ProviderSyncStatus.schema),
        ("parcelxRequestRefId", .nullable(.string())), ("parcelxResponseRefId", .nullable(.string())),
        ("awbNumber", .nullable(.string())), ("courierName", .nullable(.string())),
        ("chargePaise", .int()), ("consignee", .anything), ("pickupAddressId", .string()), ("payment", .anything),
        ("package", .anything), ("items", .anything), ("expressType", .string()), ("history", .anything),
        ("createdAt", .string()), ("updatedAt", .string()),
        ("trackingStatus", TrackingStatus.schema), ("tracking", .anything),
    ], additional: true)

    static let page = Schema.object([
        ("status", OrderStatus.schema),
        ("cursor", Paging.cursor(idPrefix: "ord")),
        ("limit", Paging.limit),
        ("userId", .string(min: 1, max: 64)),
    ])

    static let orderId = Schema.object([("orderId", .id)], required: ["orderId"])

    // The provider outcomes ParcelXSvc reports (`orders.provider.*`): what happened, never a status.
    static let awb = Schema.string(min: 1, max: 32)
    static let refs: [(String, Schema)] = [("parcelxRequestRefId", .string(max: 64)), ("parcelxResponseRefId", .string(max: 64))]
    static let message = Schema.string(max: 2000)

    static let providerPlaced = Schema.object([("orderId", .id), ("awbNumber", awb), ("courierName", .string(max: 100))] + refs,
                                              required: ["orderId", "awbNumber"])
    static let providerFailed = Schema.object([
        ("orderId", .id),
        // retrying: the job tries again (only the refs are kept); refused: the provider said no;
        // exhausted: no usable answer for the whole retry window.
        ("outcome", .string(oneOf: ["retrying", "refused", "exhausted"])),
        ("message", message),
        ("mayHaveBooked", .boolean),
    ] + refs, required: ["orderId", "outcome"])
    static let providerCancelled = Schema.object([("orderId", .id), ("atProvider", .boolean), ("awbNumber", awb)] + refs,
                                                 required: ["orderId", "atProvider"])
    static let providerCancelRefused = Schema.object([("orderId", .id), ("message", message), ("awbNumber", awb)] + refs,
                                                     required: ["orderId"])
    static let providerTracked = Schema.object([
        ("orderId", .id),
        // The provider's own status, kept as it came; `trackingStatus` only when the map knows it.
        ("providerStatusCode", .int(min: 0, max: 1_000_000)),
        ("providerStatusTitle", .string(max: 200)),
        ("trackingStatus", TrackingStatus.schema),
        ("eventAt", .string(max: 64)), ("location", .string(max: 200)), ("remark", message),
    ], required: ["orderId", "providerStatusCode", "providerStatusTitle"])
    static let providerResult = Schema.object([("applied", .boolean), ("status", OrderStatus.schema), ("jobs", .array(.string())),
                                               ("trackingStatus", .nullable(TrackingStatus.schema)), ("tracks", .boolean)])
}
