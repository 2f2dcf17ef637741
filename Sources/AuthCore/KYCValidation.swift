import Foundation
import RPC

/// Pure checks and normalisations of KYC numbers (PAN, GSTIN, IFSC, pincode, bank account),
/// and the masks under which the sensitive ones are shown. No I/O, so every rule is testable alone.
enum KYCValidation {
    /// The business types a merchant can declare; published in the method schema.
    static let businessTypes = ["individual", "proprietorship", "partnership", "llp", "private_limited",
                                "public_limited", "trust", "society", "huf", "other"]

    /// GST state codes in use (01–38), plus 97 (other territory) and 99 (centre jurisdiction).
    static let gstStateCodes: Set<Int> = Set(1...38).union([97, 99])

    private static let base36: [UInt8] = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

    /// Upper-cases and drops spaces, as people type codes with them ("abcde 1234 f").
    static func normaliseCode(_ s: String) -> String {
        String(s.uppercased().unicodeScalars.filter { !CharacterSet.whitespaces.contains($0) })
    }

    /// Drops spaces and dashes that people put between digit groups.
    static func normaliseDigits(_ s: String) -> String {
        String(s.unicodeScalars.filter { !CharacterSet.whitespaces.contains($0) && $0 != "-" })
    }

    static func isPAN(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 10 else { return false }
        return b[0..<5].allSatisfy(isUpper) && b[5..<9].allSatisfy(isDigit) && isUpper(b[9])
    }

    /// The GSTIN check character for the first 14 characters: the standard mod-36 scheme with
    /// weights alternating 1, 2 and the product's base-36 digits summed.
    static func gstinCheckCharacter(_ first14: String) -> Character? {
        let b = Array(first14.utf8)
        guard b.count == 14 else { return nil }
        var sum = 0
        for (i, c) in b.enumerated() {
            guard let v = base36.firstIndex(of: c) else { return nil }
            let product = v * (i % 2 == 0 ? 1 : 2)
            sum += product / 36 + product % 36
        }
        return Character(UnicodeScalar(base36[(36 - sum % 36) % 36]))
    }

    /// Why `gstin` is not a valid GSTIN for `pan`, or nil when it is.
    static func gstinProblem(_ gstin: String, pan: String?) -> String? {
        let b = Array(gstin.utf8)
        guard b.count == 15, b[0..<2].allSatisfy(isDigit), isPAN(String(decoding: b[2..<12], as: UTF8.self)),
              isUpper(b[12]) || (isDigit(b[12]) && b[12] != UInt8(ascii: "0")), b[13] == UInt8(ascii: "Z"),
              isUpper(b[14]) || isDigit(b[14])
        else { return "must be 15 characters: 2-digit state code, the PAN, entity code, Z and a check character" }
        if !gstStateCodes.contains(Int(String(decoding: b[0..<2], as: UTF8.self)) ?? 0) { return "has an unknown state code" }
        if let pan, String(decoding: b[2..<12], as: UTF8.self) != pan { return "must contain the PAN as characters 3 to 12" }
        if gstinCheckCharacter(String(decoding: b[0..<14], as: UTF8.self)) != Character(UnicodeScalar(b[14])) {
            return "has a wrong check character"
        }
        return nil
    }

    static func isIFSC(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 11 else { return false }
        return b[0..<4].allSatisfy(isUpper) && b[4] == UInt8(ascii: "0") && b[5...].allSatisfy { isUpper($0) || isDigit($0) }
    }

    static func isPincode(_ s: String) -> Bool {
        let b = Array(s.utf8)
        return b.count == 6 && b.allSatisfy(isDigit) && b[0] != UInt8(ascii: "0")
    }

    static func isAccountNumber(_ s: String) -> Bool {
        let b = Array(s.utf8)
        return (9...18).contains(b.count) && b.allSatisfy(isDigit)
    }

    // Masks keep just enough to recognise one's own number, as bank statements do.

    /// `ABCDE1234F` → `XXXXX1234X`.
    static func maskPAN(_ pan: String) -> String {
        let b = Array(pan.utf8)
        guard b.count == 10 else { return String(repeating: "X", count: b.count) }
        return "XXXXX" + String(decoding: b[5..<9], as: UTF8.self) + "X"
    }

    /// `27ABCDE1234F1Z0` → `27XXXXX1234X1Z0`: the GSTIN embeds the PAN, so it is masked the same way.
    static func maskGSTIN(_ gstin: String) -> String {
        let b = Array(gstin.utf8)
        guard b.count == 15 else { return String(repeating: "X", count: b.count) }
        return String(decoding: b[0..<2], as: UTF8.self) + maskPAN(String(decoding: b[2..<12], as: UTF8.self))
            + String(decoding: b[12...], as: UTF8.self)
    }

    /// All but the last four digits replaced by `X`.
    static func maskAccountNumber(_ n: String) -> String {
        let b = Array(n.utf8)
        guard b.count > 4 else { return String(repeating: "X", count: b.count) }
        return String(repeating: "X", count: b.count - 4) + String(decoding: b[(b.count - 4)...], as: UTF8.self)
    }

    private static func isUpper(_ c: UInt8) -> Bool { c >= 0x41 && c <= 0x5A }
    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
}

/// `kyc.submit` params as the caller sent them.
struct KYCSubmission: Decodable, Sendable {
    struct Address: Decodable, Sendable {
        var line1: String
        var line2: String?
        var city: String
        var state: String
        var pincode: String
    }
    struct Bank: Decodable, Sendable {
        var accountNumber: String
        var ifsc: String
        var holderName: String
    }
    var businessType: String
    var legalName: String
    var pan: String
    var gstin: String?
    var address: Address
    var bank: Bank
}

/// A submission that passed every format check, normalised (codes upper-cased, spaces removed).
struct ValidKYC: Sendable {
    var businessType: String
    var legalName: String
    var pan: String
    var gstin: String?
    var address: KYCSubmission.Address
    var bank: KYCSubmission.Bank
}

extension KYCSubmission {
    /// Normalises and checks every field, reporting all problems at once with their paths.
    func validated() throws(RPCError) -> ValidKYC {
        var errs: [FieldError] = []
        func text(_ s: String, _ path: String, min: Int, max: Int) -> String {
            let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
            if t.count < min || t.count > max { errs.append(FieldError(path: path, message: "must be \(min) to \(max) characters")) }
            return t
        }
        let legal = text(legalName, "legalName", min: 2, max: 200)
        if !KYCValidation.businessTypes.contains(businessType) {
            errs.append(FieldError(path: "businessType", message: "must be one of: \(KYCValidation.businessTypes.joined(separator: ", "))"))
        }
        let pan = KYCValidation.normaliseCode(self.pan)
        let panOK = KYCValidation.isPAN(pan)
        if !panOK { errs.append(FieldError(path: "pan", message: "must be a PAN like ABCDE1234F: 5 letters, 4 digits, 1 letter")) }
        var gstin: String?
        if let g = self.gstin.map(KYCValidation.normaliseCode), !g.isEmpty {
            gstin = g
            if let p = KYCValidation.gstinProblem(g, pan: panOK ? pan : nil) { errs.append(FieldError(path: "gstin", message: p)) }
        }
        var addr = address
        addr.line1 = text(address.line1, "address.line1", min: 1, max: 200)
        addr.line2 = address.line2.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.flatMap { $0.isEmpty ? nil : $0 }
        if let l2 = addr.line2, l2.count > 200 { errs.append(FieldError(path: "address.line2", message: "must be at most 200 characters")) }
        addr.city = text(address.city, "address.city", min: 1, max: 100)
        addr.state = text(address.state, "address.state", min: 1, max: 100)
        addr.pincode = KYCValidation.normaliseDigits(address.pincode)
        if !KYCValidation.isPincode(addr.pincode) {
            errs.append(FieldError(path: "address.pincode", message: "must be 6 digits not starting with 0"))
        }
        var bank = self.bank
        bank.accountNumber = KYCValidation.normaliseDigits(self.bank.accountNumber)
        if !KYCValidation.isAccountNumber(bank.accountNumber) {
            errs.append(FieldError(path: "bank.accountNumber", message: "must be 9 to 18 digits"))
        }
        bank.ifsc = KYCValidation.normaliseCode(self.bank.ifsc)
        if !KYCValidation.isIFSC(bank.ifsc) {
            errs.append(FieldError(path: "bank.ifsc", message: "must be an IFSC like HDFC0001234: 4 letters, 0, then 6 letters or digits"))
        }
        bank.holderName = text(self.bank.holderName, "bank.holderName", min: 2, max: 100)
        if !errs.isEmpty { throw RPCError.invalidParams(errs) }
        return ValidKYC(businessType: businessType, legalName: legal, pan: pan, gstin: gstin, address: addr, bank: bank)
    }
}
