import Foundation
import XCTest
import JSON
import OrderCore
import ParcelXAPI
@testable import ParcelXCore

/// The order → provider payload mapping, field by field.
final class ParcelXOrderMapperTests: XCTestCase {
    /// The typed order `orders.create` would store for these params.
    static func typed(_ params: JSON) throws -> Order {
        Order(id: "ord_01ABC", userId: "usr_1", request: try params.decode(OrderRequest.self), fingerprint: "fp", chargePaise: 4000,
              requestId: "req_1", nowMs: 1, nowISO: "2026-11-28T10:00:00.000Z")
    }

    let order: JSON = [
        "clientOrderId": "SHOP-42", "pickupAddressId": "WH-7", "expressType": "air",
        "consignee": ["name": "Ravi Kumar", "mobile": "9876543210", "email": "ravi@example.com", "address1": .string(String(repeating: "a", count: 200)),
                      "address2": "Near the park", "city": "Kolkata", "state": "West Bengal", "pincode": "700016"],
        "payment": ["mode": "cod", "codAmountPaise": 123_456],
        "package": ["weightGrams": 1250, "lengthCm": 20, "widthCm": 15, "heightCm": 10],
        "items": [["sku": "TEA-1", "name": "Assam tea", "quantity": 2, "pricePaise": 25_050, "hsn": "0902", "taxPercent": 5, "category": "Grocery"],
                  ["sku": "MUG", "name": "Mug", "quantity": 1, "pricePaise": 19_900]],
    ]

    func testEveryFieldOfTheCreatePayload() throws {
        let r = ParcelXOrderMapper.createRequest(order: try Self.typed(order))
        XCTAssertEqual(r.clientOrderId, "ord_01ABC", "the provider key is the OOPS order id")
        XCTAssertEqual(r.invoiceNumber, "SHOP-42")
        XCTAssertEqual(r.consigneeName, "Ravi Kumar")
        XCTAssertEqual(r.consigneeMobile, "9876543210")
        XCTAssertEqual(r.consigneePhone, "9876543210")
        XCTAssertEqual(r.consigneeEmailId, "ravi@example.com")
        XCTAssertEqual(r.consigneeAddress1.count, 150, "capped at 150 characters like the provider's clients")
        XCTAssertEqual(r.consigneeAddress2, "Near the park, Kolkata, West Bengal")
        XCTAssertEqual(r.consigneePincode, "700016")
        XCTAssertEqual(r.pickAddressId, "WH-7")
        XCTAssertEqual(r.returnAddressId, "")
        XCTAssertEqual(r.expressType, "air")
        XCTAssertEqual(r.paymentMode, "COD")
        XCTAssertEqual(r.codAmount, "1234.56")
        XCTAssertEqual(r.orderAmount, "700.00")  // 2 × 250.50 + 199.00
        XCTAssertEqual(r.taxAmount, "25.05")  // 5% of 501.00
        XCTAssertEqual(r.extraCharges, "0")
        XCTAssertEqual(r.courierType, 0)
        XCTAssertEqual(r.shipmentLength, ["20"])
        XCTAssertEqual(r.shipmentWidth, ["15"])
        XCTAssertEqual(r.shipmentHeight, ["10"])
        XCTAssertEqual(r.shipmentWeight, ["1.25"])
        XCTAssertEqual(r.products.count, 2)
        XCTAssertEqual(r.products[0].productSku, "TEA-1")
        XCTAssertEqual(r.products[0].productName, "Assam tea")
        XCTAssertEqual(r.products[0].productValue, "250.50")
        XCTAssertEqual(r.products[0].productHsnsac, "0902")
        XCTAssertEqual(r.products[0].productTaxper, 5)
        XCTAssertEqual(r.products[0].productCategory, "Grocery")
        XCTAssertEqual(r.products[0].productQuantity, "2")
        XCTAssertEqual(r.products[1].productHsnsac, "")
    }

    func testPrepaidAndTheWireNames() throws {
        var o = order
        o["payment"] = ["mode": "prepaid", "codAmountPaise": 0]
        o["expressType"] = "surface"
        let r = ParcelXOrderMapper.createRequest(order: try Self.typed(o))
        XCTAssertEqual(r.paymentMode, "Prepaid")
        XCTAssertEqual(r.codAmount, "0")
        let wire = try JSON(encoding: r)
        for key in ["client_order_id", "consignee_name", "consignee_mobile", "consignee_address1", "consignee_pincode", "pick_address_id",
                    "express_type", "payment_mode", "cod_amount", "order_amount", "shipment_weight", "products"] {
            XCTAssertNotNil(wire[key], key)
        }
        XCTAssertEqual(wire["shipment_weight"], ["1.25"])
        XCTAssertEqual(wire["products"]?.arrayValue?.first?["product_value"], "250.50")
    }

    /// The DTO becomes the same JSON through JSONValueEncoder as through Foundation's encoder.
    func testThePayloadEncodesAsFoundationWouldEncodeIt() throws {
        var prepaid = order.objectValue!
        prepaid["payment"] = ["mode": "prepaid"]
        prepaid["items"] = []
        for o in [order, JSON.object(prepaid)] {
            let r = ParcelXOrderMapper.createRequest(order: try Self.typed(o))
            XCTAssertEqual(try JSON(encoding: r), try JSONParser.parse([UInt8](try JSONEncoder().encode(r))))
        }
    }

    func testKilogramStrings() {
        XCTAssertEqual(ParcelXOrderMapper.kilograms(500), "0.5")
        XCTAssertEqual(ParcelXOrderMapper.kilograms(1000), "1")
        XCTAssertEqual(ParcelXOrderMapper.kilograms(1005), "1.005")
    }
}
