import Foundation
import ParcelXAPI

/// The checks a provider makes on a create payload before booking; each failure is one message
/// in `responsemsg`, worded the way such APIs word them.
enum CreateOrderValidation {
    static let couriers: [String: String] = [
        "PXDEL01": "Delhivery", "PXBDE01": "Bluedart", "PXXBS02": "XpressBees", "PXEK02": "Ekart",
    ]

    static func problems(_ r: ParcelXCreateOrderRequest) -> [String] {
        var out: [String] = []
        func required(_ value: String, _ field: String) {
            if value.trimmingCharacters(in: .whitespaces).isEmpty { out.append("The \(field) field is required.") }
        }
        required(r.clientOrderId, "client_order_id")
        required(r.consigneeName, "consignee_name")
        required(r.consigneeAddress1, "consignee_address1")
        required(r.pickAddressId, "pick_address_id")

        if !isDigits(r.consigneeMobile, count: 10) { out.append("The consignee_mobile must be 10 digits.") }
        if !isDigits(r.consigneePincode, count: 6) || r.consigneePincode.hasPrefix("0") {
            out.append("The consignee_pincode must be a valid 6 digit pincode.")
        }
        if r.consigneeAddress1.count > 150 { out.append("The consignee_address1 may not be greater than 150 characters.") }

        if !["surface", "air"].contains(r.expressType.lowercased()) { out.append("The express_type must be surface or air.") }
        switch r.paymentMode.lowercased() {
        case "prepaid": break
        case "cod":
            if (Double(r.codAmount) ?? 0) <= 0 { out.append("The cod_amount must be greater than 0 for COD orders.") }
        default: out.append("The payment_mode must be Prepaid or COD.")
        }
        if Double(r.orderAmount).map({ $0 < 0 }) ?? true { out.append("The order_amount must be a number.") }

        if r.shipmentWeight.isEmpty {
            out.append("The shipment_weight field is required.")
        } else if !r.shipmentWeight.allSatisfy({ (Double($0) ?? 0) > 0 }) {
            out.append("The shipment_weight must be greater than 0.")
        }
        for (name, values) in [("shipment_length", r.shipmentLength), ("shipment_width", r.shipmentWidth), ("shipment_height", r.shipmentHeight)] {
            if values.isEmpty { out.append("The \(name) field is required.") }
            else if !values.allSatisfy({ (Double($0) ?? 0) > 0 }) { out.append("The \(name) must be greater than 0.") }
            else if !r.shipmentWeight.isEmpty && values.count != r.shipmentWeight.count {
                out.append("The \(name) must have one entry per box.")
            }
        }

        if r.products.isEmpty { out.append("The products field is required.") }
        for (i, p) in r.products.enumerated() {
            if p.productName.trimmingCharacters(in: .whitespaces).isEmpty { out.append("The products.\(i).product_name field is required.") }
            if Double(p.productValue).map({ $0 < 0 }) ?? true { out.append("The products.\(i).product_value must be a number.") }
            if (Int(p.productQuantity) ?? 0) < 1 { out.append("The products.\(i).product_quantity must be at least 1.") }
        }

        switch r.courierType {
        case 0: break
        case 1:
            if couriers[r.courierCode] == nil { out.append("The selected courier_code is invalid.") }
        default: out.append("The courier_type must be 0 or 1.")
        }
        return out
    }

    private static func isDigits(_ s: String, count: Int) -> Bool {
        s.utf8.count == count && s.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }
}
