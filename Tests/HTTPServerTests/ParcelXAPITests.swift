import Foundation
import JSON
import ParcelXAPI
import XCTest

/// The shared provider contract read against bodies shaped like the provider's own.
final class ParcelXAPITests: XCTestCase {
    func testDecodesTheRealCreateCaptureWithNullsAndNumericIds() throws {
        let body = """
        {"status": true, "responsemsg": "Order Placed Successfully.",
         "data": {"awb_number": "13630911386265", "order_number": 12513560, "job_id": null,
                  "lrnum": "", "waybills_num_json": null, "lable_data": null, "routing_code": "DEL/KIS",
                  "payment_mode": "COD", "client_order_id": "1", "partner_display_name": "Delhivery",
                  "courier_code": "PXDEL01", "pickup_id": "4257544", "courier_name": "Delhivery"}}
        """
        let r = try JSONDecoder().decode(ParcelXCreateOrderResponse.self, from: Data(body.utf8))
        XCTAssertTrue(r.status)
        XCTAssertEqual(r.message, "Order Placed Successfully.")
        XCTAssertEqual(r.data?.awbNumber, "13630911386265")
        XCTAssertEqual(r.data?.orderNumber, "12513560")
        XCTAssertNil(r.data?.jobId)
        XCTAssertEqual(r.data?.pickupId, "4257544")
    }

    func testFailureMessageIsTheFirstOfAnArrayAndDataMayBeJunk() throws {
        let body = #"{"status": false, "responsemsg": ["Insufficient wallet balance", "second"], "data": []}"#
        let r = try JSONDecoder().decode(ParcelXCreateOrderResponse.self, from: Data(body.utf8))
        XCTAssertFalse(r.status)
        XCTAssertEqual(r.message, "Insufficient wallet balance")
        XCTAssertEqual(r.responsemsg?.all.count, 2)
        XCTAssertNil(r.data)
        XCTAssertEqual(ParcelXMessage.first(in: try JSONParser.parse(body)), "Insufficient wallet balance")
        XCTAssertEqual(ParcelXMessage.first(in: ["responsemsg": "plain"]), "plain")
        XCTAssertNil(ParcelXMessage.first(in: ["status": false]))
    }

    func testCreateRequestEncodesTheProviderFieldNames() throws {
        let o = ParcelXCreateOrderRequest(clientOrderId: "A1", consigneeName: "N", consigneeMobile: "9876543210", consigneeAddress1: "a",
                                          consigneePincode: "110001", pickAddressId: "7", shipmentLength: ["10"], shipmentWidth: ["10"],
                                          shipmentHeight: ["5"], shipmentWeight: ["0.5"],
                                          products: [ParcelXProduct(productName: "P", productValue: "10", productTaxper: 18)])
        let j = try JSON(encoding: o)
        XCTAssertEqual(j["client_order_id"], "A1")
        XCTAssertEqual(j["consignee_emailid"], "")
        XCTAssertEqual(j["shipment_weight"], ["0.5"])
        XCTAssertEqual(j["courier_type"], .int(0))
        XCTAssertEqual(j["b2b"], false)
        XCTAssertEqual(j["products"]?.arrayValue?.first?["product_taxper"], .int(18))
        XCTAssertEqual(j["products"]?.arrayValue?.first?["product_quantity"], "1")
        XCTAssertEqual(j.objectValue?.count, 28)
        XCTAssertEqual(try j.decode(ParcelXCreateOrderRequest.self), o)
    }

    func testAccessTokenIsBase64OfKeyColonSecretAndIsRedactedForLogs() {
        let t = ParcelXAuth.accessToken(accessKey: "ACCESS", secretKey: "SECRET")
        XCTAssertEqual(t, "QUNDRVNTOlNFQ1JFVA==")
        XCTAssertTrue(ParcelXAuth.matches(t, accessKey: "ACCESS", secretKey: "SECRET"))
        XCTAssertFalse(ParcelXAuth.matches(t + "x", accessKey: "ACCESS", secretKey: "SECRET"))
        XCTAssertFalse(ParcelXAuth.matches(nil, accessKey: "ACCESS", secretKey: "SECRET"))
        let logged = ParcelXAuth.redacted([("Access-Token", t), ("Content-Type", "application/json")])
        XCTAssertEqual(logged.map(\.1), [ParcelXAuth.redactedValue, "application/json"])
    }

    func testEndpointsAndLookupURLs() {
        XCTAssertEqual(ParcelXOperation.createOrder.endpoint.url(baseURL: "https://app.parcelx.in/"),
                       "https://app.parcelx.in/api/v3/order/create_order")
        XCTAssertEqual(ParcelXOperation.trackByClientOrderId.endpoint.url(baseURL: "https://app.parcelx.in", value: "ORD 1/&"),
                       "https://app.parcelx.in/api/v1/track_order?channel_order_no=ORD%201%2F%26")
        XCTAssertEqual(ParcelXOperation.trackOrder.endpoint.url(baseURL: "http://h", value: "123"), "http://h/api/v3/track_order?awb=123")
        XCTAssertEqual(ParcelXOperation(method: "GET", path: "/api/v3/warehouse-list"), .warehouseList)
        XCTAssertNil(ParcelXOperation(method: "GET", path: "/api/v3/order/create_order"))
        XCTAssertEqual(Set(ParcelXOperation.allCases.map(\.endpoint)).count, ParcelXOperation.allCases.count)
    }

    func testTrackStatusAcceptsCodeAsTextAndKnowsTheTable() throws {
        let s = try JSONDecoder().decode(ParcelXTrackStatus.self, from: Data(#"{"status_code":"227","status_title":"Cancelled"}"#.utf8))
        XCTAssertEqual(s.code, .cancelled)
        XCTAssertEqual(ParcelXStatusCode.pending.rawValue, 220)
        XCTAssertEqual(ParcelXStatusCode(rawValue: 238)?.title, "Out For Pickup")
        XCTAssertFalse(ParcelXStatusCode.delivered.isCancellable)
        XCTAssertTrue(ParcelXStatusCode.booked.isCancellable)
    }
}
