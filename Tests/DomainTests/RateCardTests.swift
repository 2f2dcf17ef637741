import XCTest
@testable import Domain

final class RateCardTests: XCTestCase {
    func testSurfaceSlabs() {
        XCTAssertEqual(RateCard.chargePaise(weightGrams: 1, lengthCm: 1, widthCm: 1, heightCm: 1, express: false, codAmountPaise: nil), 4000)
        XCTAssertEqual(RateCard.chargePaise(weightGrams: 500, lengthCm: 1, widthCm: 1, heightCm: 1, express: false, codAmountPaise: nil), 4000)
        XCTAssertEqual(RateCard.chargePaise(weightGrams: 501, lengthCm: 1, widthCm: 1, heightCm: 1, express: false, codAmountPaise: nil), 7000)
        XCTAssertEqual(RateCard.chargePaise(weightGrams: 1200, lengthCm: 20, widthCm: 15, heightCm: 10, express: false, codAmountPaise: nil), 10000)
    }

    func testVolumetricWeightWinsWhenLarger() {
        // 50 × 40 × 30 cm = 60,000 cm³ → 12,000 g volumetric, 24 slabs.
        XCTAssertEqual(RateCard.chargeableGrams(weightGrams: 1000, lengthCm: 50, widthCm: 40, heightCm: 30), 12_000)
        XCTAssertEqual(RateCard.chargePaise(weightGrams: 1000, lengthCm: 50, widthCm: 40, heightCm: 30, express: false, codAmountPaise: nil), 4000 + 23 * 3000)
    }

    func testAirAndCOD() {
        XCTAssertEqual(RateCard.chargePaise(weightGrams: 900, lengthCm: 1, widthCm: 1, heightCm: 1, express: true, codAmountPaise: nil), 7000 + 5000)
        // COD minimum ₹30 below ₹1,500 to collect, 2% above (rounded up to a paisa).
        XCTAssertEqual(RateCard.chargePaise(weightGrams: 100, lengthCm: 1, widthCm: 1, heightCm: 1, express: false, codAmountPaise: 50_000), 4000 + 3000)
        XCTAssertEqual(RateCard.chargePaise(weightGrams: 100, lengthCm: 1, widthCm: 1, heightCm: 1, express: false, codAmountPaise: 1_000_001), 4000 + 20_001)
    }

    func testRupeeStrings() {
        XCTAssertEqual(rupees(0), "0.00")
        XCTAssertEqual(rupees(5), "0.05")
        XCTAssertEqual(rupees(12345), "123.45")
        XCTAssertEqual(rupees(-250), "-2.50")
    }
}
