import Domain
import OrderCore
import ParcelXAPI

/// Maps a typed OOPS `Order` to the provider's create payload. The provider's `client_order_id`
/// is the OOPS order id, not the merchant's `clientOrderId`: several merchants share one provider
/// account, and their own numbers may collide.
public enum ParcelXOrderMapper {
    /// Grams as a kilogram decimal string (`1250` → `"1.25"`, `500` → `"0.5"`).
    public static func kilograms(_ grams: Int64) -> String {
        let whole = grams / 1000
        var frac = String(grams % 1000)
        while frac.count < 3 { frac = "0" + frac }
        while frac.hasSuffix("0") { frac.removeLast() }
        return frac.isEmpty ? "\(whole)" : "\(whole).\(frac)"
    }

    public static func createRequest(order o: Order) -> ParcelXCreateOrderRequest {
        let c = o.consignee
        let pkg = o.package
        let isCOD = o.payment.isCOD
        let orderValue = o.items.reduce(Int64(0)) { $0 + $1.pricePaise * $1.quantity }
        let tax = o.items.reduce(Int64(0)) { acc, i in acc + i.pricePaise * i.quantity * (i.taxPercent ?? 0) / 100 }
        var address2 = c.address2 ?? ""
        for part in [c.city, c.state] {
            if let p = part, !p.isEmpty { address2 += address2.isEmpty ? p : ", " + p }
        }
        return ParcelXCreateOrderRequest(
            clientOrderId: o.id,
            invoiceNumber: o.clientOrderId,
            consigneeName: c.name,
            consigneeMobile: c.mobile,
            consigneePhone: c.phone ?? c.mobile,
            consigneeEmailId: c.email ?? "",
            consigneeAddress1: String(c.address1.prefix(150)),
            consigneeAddress2: String(address2.prefix(150)),
            consigneePincode: c.pincode,
            pickAddressId: o.pickupAddressId,
            returnAddressId: "",
            expressType: o.expressType == "air" ? "air" : "surface",
            paymentMode: isCOD ? "COD" : "Prepaid",
            codAmount: isCOD ? rupees(o.payment.codAmountPaise ?? 0) : "0",
            orderAmount: rupees(orderValue),
            taxAmount: rupees(tax),
            extraCharges: "0",
            courierType: 0,
            courierCode: "",
            mps: "0",
            b2b: false,
            addressType: "Home",
            pregeneratedAwb: "",
            shipmentLength: [String(pkg.lengthCm)],
            shipmentWidth: [String(pkg.widthCm)],
            shipmentHeight: [String(pkg.heightCm)],
            shipmentWeight: [kilograms(pkg.weightGrams)],
            products: o.items.map { i in
                ParcelXProduct(
                    productSku: i.sku,
                    productName: i.name,
                    productValue: rupees(i.pricePaise),
                    productHsnsac: i.hsn ?? "",
                    productTaxper: Int(i.taxPercent ?? 0),
                    productCategory: i.category ?? "",
                    productQuantity: String(i.quantity),
                    productDescription: i.name)
            })
    }
}
