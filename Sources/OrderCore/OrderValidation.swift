import Foundation
import JSON
import RPC

/// Rules the schema cannot express, reported with field paths like the schema's own errors.
enum OrderValidation {
    static func check(_ p: JSON) throws(RPCError) {
        var errs: [FieldError] = []
        let mode = p["payment"]?["mode"]?.stringValue
        let cod = p["payment"]?["codAmountPaise"]?.intValue
        if mode == "cod" && (cod ?? 0) <= 0 {
            errs.append(FieldError(path: "payment.codAmountPaise", message: "is required and must be positive for cash on delivery"))
        }
        if mode == "prepaid" && (cod ?? 0) != 0 {
            errs.append(FieldError(path: "payment.codAmountPaise", message: "must be 0 or absent for prepaid orders"))
        }
        if let items = p["items"]?.arrayValue, mode == "cod", let c = cod {
            let total = items.reduce(Int64(0)) { $0 + ($1["pricePaise"]?.intValue ?? 0) * ($1["quantity"]?.intValue ?? 0) }
            if c > total * 2 + 100_000 {
                errs.append(FieldError(path: "payment.codAmountPaise", message: "is far above the value of the items"))
            }
        }
        if let name = p["consignee"]?["name"]?.stringValue, name.unicodeScalars.allSatisfy(\.properties.isWhitespace) {
            errs.append(FieldError(path: "consignee.name", message: "must not be blank"))
        }
        if !errs.isEmpty { throw RPCError.invalidParams(errs) }
    }
}
