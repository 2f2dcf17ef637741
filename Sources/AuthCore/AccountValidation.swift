import Foundation
import RPC

/// Pure rules for account fields: email normalisation, the password policy, names and Indian
/// mobile numbers. Each returns the normalised value or records a field error.
enum AccountValidation {
    /// Passwords long enough for the length rule but guessed first by every attacker.
    static let commonPasswords: Set<String> = [
        "password123", "password1234", "password12345", "password!", "password1!", "passw0rd123", "p@ssw0rd123",
        "1234567890", "12345678910", "123456789a", "a123456789", "0123456789", "9876543210", "0987654321",
        "1111111111", "0000000000", "1234512345", "1122334455", "1q2w3e4r5t", "1qaz2wsx3edc", "qwertyuiop",
        "qwerty1234", "qwerty12345", "qwerty123456", "asdfghjkl1", "asdfghjkl;", "zxcvbnm123", "abcdefghij",
        "abc1234567", "abcd123456", "iloveyou123", "letmein123", "welcome123", "welcome@123", "admin12345",
        "administrator", "football123", "baseball123", "sunshine123", "princess123", "dragon1234", "monkey1234",
        "trustno1234", "changeme123", "india12345", "india@1234", "bharat1234", "cricket123", "secret1234",
        "superman123", "starwars123", "whatever123", "computer123", "internet123", "qazwsxedcrfv",
    ]

    /// Trimmed and lower-cased, so `Asha@Example.com ` and `asha@example.com` are one account.
    static func normaliseEmail(_ raw: String) -> String {
        raw.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    static func emailProblem(_ email: String) -> String? {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64 else {
            return "must be an email address"
        }
        let domain = parts[1]
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2, labels.allSatisfy({ !$0.isEmpty }),
              email.unicodeScalars.allSatisfy({ !CharacterSet.whitespacesAndNewlines.contains($0) && !CharacterSet.controlCharacters.contains($0) })
        else { return "must be an email address" }
        return nil
    }

    static func passwordProblem(_ password: String, email: String) -> String? {
        if password.count < 10 || password.count > 128 { return "must be 10 to 128 characters" }
        let lower = password.lowercased()
        if commonPasswords.contains(lower) { return "is too common; choose a less guessable password" }
        if lower == email { return "must not be the email address" }
        if Set(password).count <= 2 { return "is too easy to guess" }
        return nil
    }

    /// Accepts `98765 43210`, `+91 98765 43210`, `09876543210`; stores the 10 digits.
    static func normalisePhone(_ raw: String) -> String? {
        var d = raw.unicodeScalars.filter { !CharacterSet.whitespaces.contains($0) && $0 != "-" && $0 != "(" && $0 != ")" }
            .map(Character.init)
        if d.first == "+" {
            guard d.count == 13, d[1] == "9", d[2] == "1" else { return nil }
            d.removeFirst(3)
        } else if d.count == 12, d[0] == "9", d[1] == "1" {
            d.removeFirst(2)
        } else if d.count == 11, d[0] == "0" {
            d.removeFirst()
        }
        // Indian mobile numbers have 10 digits and start with 6 to 9.
        guard d.count == 10, d.allSatisfy({ $0.isASCII && $0.isNumber }), "6789".contains(d[0]) else { return nil }
        return String(d)
    }

    static func normaliseName(_ raw: String) -> String? {
        let t = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...100).contains(t.count), t.unicodeScalars.allSatisfy({ !CharacterSet.controlCharacters.contains($0) }) else { return nil }
        return t
    }

    /// Normalises and checks register / ensureAdmin input, reporting every bad field at once.
    static func validate(email rawEmail: String, password: String, name rawName: String, phone rawPhone: String?)
        throws(RPCError) -> (email: String, name: String, phone: String?)
    {
        var errs: [FieldError] = []
        let email = normaliseEmail(rawEmail)
        if let p = emailProblem(email) { errs.append(FieldError(path: "email", message: p)) }
        if let p = passwordProblem(password, email: email) { errs.append(FieldError(path: "password", message: p)) }
        let name = normaliseName(rawName)
        if name == nil { errs.append(FieldError(path: "name", message: "must be 1 to 100 characters")) }
        var phone: String?
        if let rawPhone {
            phone = normalisePhone(rawPhone)
            if phone == nil { errs.append(FieldError(path: "phone", message: "must be a 10-digit Indian mobile number")) }
        }
        if !errs.isEmpty { throw RPCError.invalidParams(errs) }
        return (email, name!, phone)
    }
}
