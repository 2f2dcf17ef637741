import CMongoC
import JSON
@testable import Store
import XCTest

/// JSON ↔ BSON through libbson, checked from outside with libbson's own canonical extended JSON,
/// so the MongoDB mapping is proven in every run without a server.
final class BSONCodecTests: XCTestCase {
    private func canonical(_ doc: [String: JSON]) throws -> JSON {
        let b = try BSONCodec.make(object: doc)
        defer { bson_destroy(b) }
        return try JSONParser.parse(BSONCodec.canonicalExtendedJSON(b))
    }

    private func roundTrip(_ doc: [String: JSON]) throws -> JSON {
        let b = try BSONCodec.make(object: doc)
        defer { bson_destroy(b) }
        return try BSONCodec.decode(b)
    }

    func testIntegersAreInt64AndSurviveBeyond53Bits() throws {
        let doc: [String: JSON] = ["small": 1, "big": .int(9_007_199_254_740_993), "min": .int(Int64.min), "max": .int(Int64.max)]
        let c = try canonical(doc)
        XCTAssertEqual(c["small"], ["$numberLong": "1"])
        XCTAssertEqual(c["big"], ["$numberLong": "9007199254740993"])
        XCTAssertEqual(c["min"], ["$numberLong": "-9223372036854775808"])
        XCTAssertEqual(c["max"], ["$numberLong": "9223372036854775807"])
        XCTAssertEqual(try roundTrip(doc), .object(doc))
    }

    func testDoublesBooleansNullAndStrings() throws {
        let doc: [String: JSON] = ["d": 1.5, "whole": .double(2), "t": true, "f": false, "n": .null, "s": "नमस्ते \"q\"", "e": ""]
        let c = try canonical(doc)
        XCTAssertEqual(c["d"], ["$numberDouble": "1.5"])
        XCTAssertEqual(c["whole"], ["$numberDouble": "2.0"])
        XCTAssertEqual(c["t"], true)
        XCTAssertEqual(c["f"], false)
        XCTAssertEqual(c["n"], .null)
        XCTAssertEqual(c["s"], "नमस्ते \"q\"")
        XCTAssertEqual(c["e"], "")
        XCTAssertEqual(try roundTrip(doc), .object(doc))
    }

    func testDatesBecomeBSONDatetimes() throws {
        let doc: [String: JSON] = ["at": ["$date": .int(1_700_000_000_123)], "notADate": ["$date": "x"]]
        let c = try canonical(doc)
        XCTAssertEqual(c["at"], ["$date": ["$numberLong": "1700000000123"]])
        // Only {"$date": integer} is a date; anything else stays a document.
        let b = try BSONCodec.make(object: doc)
        defer { bson_destroy(b) }
        let it = CMongoC_iter_new()!
        defer { CMongoC_iter_free(it) }
        XCTAssertTrue(bson_iter_init_find(it, b, "at"))
        XCTAssertEqual(bson_iter_type(it), BSON_TYPE_DATE_TIME)
        XCTAssertTrue(bson_iter_init_find(it, b, "notADate"))
        XCTAssertEqual(bson_iter_type(it), BSON_TYPE_DOCUMENT)
        XCTAssertEqual(try roundTrip(doc), .object(doc))
    }

    func testNestedDocumentsAndArrays() throws {
        let doc: [String: JSON] = [
            "_id": "o1",
            "payment": ["mode": "cod", "codAmountPaise": 5000],
            "items": [["sku": "A", "qty": 2], ["sku": "B", "qty": 1]],
            "mixed": [1, "two", 3.5, true, .null, [], [:], ["$date": 5]],
        ]
        let c = try canonical(doc)
        XCTAssertEqual(c["payment"], ["mode": "cod", "codAmountPaise": ["$numberLong": "5000"]])
        XCTAssertEqual(c["items"]?.arrayValue?.count, 2)
        XCTAssertEqual(c["mixed"], [["$numberLong": "1"], "two", ["$numberDouble": "3.5"], true, .null, [], [:],
                                    ["$date": ["$numberLong": "5"]]])
        XCTAssertEqual(try roundTrip(doc), .object(doc))
    }

    func testDocumentsWrittenByOtherToolsDecode() throws {
        // int32 and ObjectId come from mongosh or other drivers, never from this store.
        var err = bson_error_t()
        let text = #"{"_id": {"$oid": "65a1b2c3d4e5f60718293a4b"}, "n": {"$numberInt": "7"}, "when": {"$date": {"$numberLong": "42"}}}"#
        let b = try XCTUnwrap(bson_new_from_json(text, -1, &err))
        defer { bson_destroy(b) }
        XCTAssertEqual(try BSONCodec.decode(b), ["_id": "65a1b2c3d4e5f60718293a4b", "n": 7, "when": ["$date": 42]])
    }

    func testFilterAndUpdateDocumentsKeepFieldOrder() throws {
        let sort = try MongoQuery.sort([.desc("createdAt"), .asc("status")])
        let b = try BSONCodec.make([("sort", sort)])
        defer { bson_destroy(b) }
        // Compound sort order lives in field order, which must not be shuffled.
        XCTAssertEqual(BSONCodec.canonicalExtendedJSON(b),
                       #"{ "sort" : { "createdAt" : { "$numberInt" : "-1" }, "status" : { "$numberInt" : "1" }, "_id" : { "$numberInt" : "1" } } }"#)
        let f = try BSONCodec.make(try MongoQuery.filter(.and([.gte("balance", 100), .ne("status", "x"), .or([])])))
        defer { bson_destroy(f) }
        XCTAssertEqual(try JSONParser.parse(BSONCodec.canonicalExtendedJSON(f)),
                       ["$and": [["balance": ["$gte": ["$numberLong": "100"]]], ["status": ["$ne": "x"]], ["_id": ["$exists": false]]]])
        let u = try BSONCodec.make(try MongoQuery.update(Update(set: ["a.b": 1], unset: ["c"], inc: ["n": -5], push: ["h": ["s": "x"]])))
        defer { bson_destroy(u) }
        XCTAssertEqual(try JSONParser.parse(BSONCodec.canonicalExtendedJSON(u)),
                       ["$set": ["a.b": ["$numberLong": "1"]], "$unset": ["c": ""], "$inc": ["n": ["$numberLong": "-5"]], "$push": ["h": ["s": "x"]]])
    }
}
