/// The shipping charge, in integer paise, from a simple published rate card.
///
/// - Chargeable weight is the larger of the actual weight and the volumetric weight
///   (L × W × H in cm ÷ 5000, in kg — i.e. L×W×H ÷ 5 grams), rounded up to 500 g slabs.
/// - Surface: ₹40 for the first slab, ₹30 for each further slab.
///   Air (express): ₹70 for the first slab, ₹50 for each further slab.
/// - Cash on delivery adds the larger of ₹30 and 2% of the amount to collect (rounded up to a paisa).
public enum RateCard {
    public static let slabGrams: Int64 = 500
    public static let surfaceFirst: Int64 = 4000, surfaceNext: Int64 = 3000
    public static let airFirst: Int64 = 7000, airNext: Int64 = 5000
    public static let codMinimum: Int64 = 3000, codPercent: Int64 = 2

    public static func chargeableGrams(weightGrams: Int64, lengthCm: Int64, widthCm: Int64, heightCm: Int64) -> Int64 {
        let volumetric = (lengthCm * widthCm * heightCm + 4) / 5
        return max(weightGrams, volumetric)
    }

    public static func chargePaise(weightGrams: Int64, lengthCm: Int64, widthCm: Int64, heightCm: Int64,
                                   express: Bool, codAmountPaise: Int64?) -> Int64 {
        let grams = max(1, chargeableGrams(weightGrams: weightGrams, lengthCm: lengthCm, widthCm: widthCm, heightCm: heightCm))
        let slabs = (grams + slabGrams - 1) / slabGrams
        var charge = express ? airFirst + (slabs - 1) * airNext : surfaceFirst + (slabs - 1) * surfaceNext
        if let cod = codAmountPaise, cod > 0 {
            charge += max(codMinimum, (cod * codPercent + 99) / 100)
        }
        return charge
    }
}

/// Paise to a rupee decimal string, as the provider wants amounts (`12345` → `"123.45"`).
public func rupees(_ paise: Int64) -> String {
    let sign = paise < 0 ? "-" : ""
    let a = abs(paise)
    let r = a % 100
    return "\(sign)\(a / 100).\(r < 10 ? "0" : "")\(r)"
}
