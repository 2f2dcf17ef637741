import JSON

/// Maps an OOPS order record to the provider's create payload. The provider's
/// `client_order_id` is the OOPS order id, not the merchant's `clientOrderId`: several
/// merchants share one provider account, and their own numbers may collide.
public enum ParcelXOrderMapper {
    /// Paise as a rupee decimal string (`12345` → `"123.45"`).
    public static func rupees(_ paise: Int64) -> String {
        let a = abs(paise)
        let r = a % 100
        return "\(paise < 0 ? "-" : "")\(a / 100).\(r < 10 ? "0" : "")\(r)"
    }

    /// Grams as a kilogram decimal string (`1250` → `"1.25"`, `500` → `"0.5"`).
    public static func kilograms(_ grams: Int64) -> String {
        let whole = grams / 1000
        var frac = String(grams % 1000)
        while frac.count < 3 { frac = "0" + frac }
        while frac.hasSuffix("0") { frac.removeLast() }
        return frac.isEmpty ? "\(whole)" : "\(whole).\(frac)"
    }

    public static func createRequest(order o: JSON) -> ParcelXCreateOrderRequest {
        let c = o["consignee"] ?? .object([:])
        let pkg = o["package"] ?? .object([:])
        let isCOD = o["payment"]?["mode"] == "cod"
        let items = o["items"]?.arrayValue ?? []
        let orderValue = items.reduce(Int64(0)) { $0 + ($1["pricePaise"]?.intValue ?? 0) * ($1["quantity"]?.intValue ?? 0) }
        let tax = items.reduce(Int64(0)) { acc, i in
            let line = (i["pricePaise"]?.intValue ?? 0) * (i["quantity"]?.intValue ?? 0)
            return acc + line * (i["taxPercent"]?.intValue ?? 0) / 100
        }
        let id = o["id"]?.stringValue ?? o["_id"]?.stringValue ?? ""
        var address2 = c["address2"]?.stringValue ?? ""
        for part in [c["city"]?.stringValue, c["state"]?.stringValue] {
            if let p = part, !p.isEmpty { address2 += address2.isEmpty ? p : ", " + p }
        }
        return ParcelXCreateOrderRequest(
            clientOrderId: id,
            invoiceNumber: o["clientOrderId"]?.stringValue ?? id,
            consigneeName: c["name"]?.stringValue ?? "",
            consigneeMobile: c["mobile"]?.stringValue ?? "",
            consigneePhone: c["phone"]?.stringValue ?? (c["mobile"]?.stringValue ?? ""),
            consigneeEmailId: c["email"]?.stringValue ?? "",
            consigneeAddress1: String((c["address1"]?.stringValue ?? "").prefix(150)),
            consigneeAddress2: String(address2.prefix(150)),
            consigneePincode: c["pincode"]?.stringValue ?? "",
            pickAddressId: o["pickupAddressId"]?.stringValue ?? "",
            returnAddressId: "",
            expressType: o["expressType"] == "air" ? "air" : "surface",
            paymentMode: isCOD ? "COD" : "Prepaid",
            codAmount: isCOD ? rupees(o["payment"]?["codAmountPaise"]?.intValue ?? 0) : "0",
            orderAmount: rupees(orderValue),
            taxAmount: rupees(tax),
            extraCharges: "0",
            courierType: 0,
            courierCode: "",
            mps: "0",
            b2b: false,
            addressType: "Home",
            pregeneratedAwb: "",
            shipmentLength: [String(pkg["lengthCm"]?.intValue ?? 0)],
            shipmentWidth: [String(pkg["widthCm"]?.intValue ?? 0)],
            shipmentHeight: [String(pkg["heightCm"]?.intValue ?? 0)],
            shipmentWeight: [kilograms(pkg["weightGrams"]?.intValue ?? 0)],
            products: items.map { i in
                ParcelXProduct(
                    productSku: i["sku"]?.stringValue ?? "",
                    productName: i["name"]?.stringValue ?? "",
                    productValue: rupees(i["pricePaise"]?.intValue ?? 0),
                    productHsnsac: i["hsn"]?.stringValue ?? "",
                    productTaxper: Int(i["taxPercent"]?.intValue ?? 0),
                    productCategory: i["category"]?.stringValue ?? "",
                    productQuantity: String(i["quantity"]?.intValue ?? 0),
                    productDescription: i["name"]?.stringValue ?? "")
            })
    }
}
