import Foundation
import JSON
import Runtime

/// A JSON Schema subset used to declare and validate method params and results. The same value
/// validates input (producing field-level errors) and is published in `rpc.discover` and in the
/// Gateway's OpenAPI document, so the documentation cannot drift from the checks.
public indirect enum Schema: Sendable {
    case object(properties: [(String, Schema)], required: [String], additional: Bool)
    case string(minLength: Int?, maxLength: Int?, pattern: String?, enumValues: [String]?, format: String?)
    case integer(minimum: Int64?, maximum: Int64?)
    case number
    case boolean
    case array(items: Schema, minItems: Int?, maxItems: Int?)
    case any(description: String?)
    case nullable(Schema)
    case ref(String)

    // Builders that read well in declarations.
    public static func object(_ props: [(String, Schema)], required: [String] = [], additional: Bool = false) -> Schema {
        .object(properties: props, required: required, additional: additional)
    }
    public static func string(min: Int? = nil, max: Int? = nil, pattern: String? = nil, oneOf: [String]? = nil, format: String? = nil) -> Schema {
        .string(minLength: min, maxLength: max, pattern: pattern, enumValues: oneOf, format: format)
    }
    public static func int(min: Int64? = nil, max: Int64? = nil) -> Schema { .integer(minimum: min, maximum: max) }
    public static func array(_ items: Schema, min: Int? = nil, max: Int? = nil) -> Schema { .array(items: items, minItems: min, maxItems: max) }
    public static let anything = Schema.any(description: nil)
    public static let empty = Schema.object([], required: [])
    public static let id = Schema.string(min: 1, max: 64, pattern: "^[A-Za-z0-9_-]+$")

    /// The JSON Schema (2020-12 subset) form.
    public var json: JSON {
        switch self {
        case .object(let props, let req, let add):
            var p: [String: JSON] = [:]
            for (k, s) in props { p[k] = s.json }
            var o: [String: JSON] = ["type": "object", "properties": .object(p), "additionalProperties": .bool(add)]
            if !req.isEmpty { o["required"] = .array(req.map { .string($0) }) }
            return .object(o)
        case .string(let mn, let mx, let pat, let en, let fmt):
            var o: [String: JSON] = ["type": "string"]
            if let mn { o["minLength"] = .int(Int64(mn)) }
            if let mx { o["maxLength"] = .int(Int64(mx)) }
            if let pat { o["pattern"] = .string(pat) }
            if let en { o["enum"] = .array(en.map { .string($0) }) }
            if let fmt { o["format"] = .string(fmt) }
            return .object(o)
        case .integer(let mn, let mx):
            var o: [String: JSON] = ["type": "integer"]
            if let mn { o["minimum"] = .int(mn) }
            if let mx { o["maximum"] = .int(mx) }
            return .object(o)
        case .number: return ["type": "number"]
        case .boolean: return ["type": "boolean"]
        case .array(let items, let mn, let mx):
            var o: [String: JSON] = ["type": "array", "items": items.json]
            if let mn { o["minItems"] = .int(Int64(mn)) }
            if let mx { o["maxItems"] = .int(Int64(mx)) }
            return .object(o)
        case .any(let d): return d.map { ["description": .string($0)] } ?? .object([:])
        case .nullable(let s):
            return ["anyOf": [s.json, ["type": "null"]]]
        case .ref(let name): return ["$ref": .string("#/components/schemas/\(name)")]
        }
    }

    /// Validates `value`, returning every problem with its path (empty when valid).
    public func validate(_ value: JSON, path: String = "") -> [FieldError] {
        var errs: [FieldError] = []
        check(value, path, &errs)
        return errs
    }

    private func check(_ v: JSON, _ path: String, _ errs: inout [FieldError]) {
        let here = path.isEmpty ? "$" : path
        switch self {
        case .any, .ref: return
        case .nullable(let s):
            if v.isNull { return }
            s.check(v, path, &errs)
        case .boolean:
            if v.boolValue == nil { errs.append(FieldError(path: here, message: "must be a boolean")) }
        case .number:
            if v.doubleValue == nil { errs.append(FieldError(path: here, message: "must be a number")) }
        case .integer(let mn, let mx):
            guard let i = v.intValue else { errs.append(FieldError(path: here, message: "must be an integer")); return }
            if let mn, i < mn { errs.append(FieldError(path: here, message: "must be at least \(mn)")) }
            if let mx, i > mx { errs.append(FieldError(path: here, message: "must be at most \(mx)")) }
        case .string(let mn, let mx, let pat, let en, _):
            guard let s = v.stringValue else { errs.append(FieldError(path: here, message: "must be a string")); return }
            let n = s.count
            if let mn, n < mn { errs.append(FieldError(path: here, message: mn == 1 ? "must not be empty" : "must be at least \(mn) characters")); return }
            if let mx, n > mx { errs.append(FieldError(path: here, message: "must be at most \(mx) characters")); return }
            if let en, !en.contains(s) { errs.append(FieldError(path: here, message: "must be one of: \(en.joined(separator: ", "))")); return }
            if let pat, !Schema.matches(s, pat) { errs.append(FieldError(path: here, message: "has an invalid format")) }
        case .array(let items, let mn, let mx):
            guard let a = v.arrayValue else { errs.append(FieldError(path: here, message: "must be an array")); return }
            if let mn, a.count < mn { errs.append(FieldError(path: here, message: "must have at least \(mn) items")) }
            if let mx, a.count > mx { errs.append(FieldError(path: here, message: "must have at most \(mx) items")); return }
            for (i, e) in a.enumerated() { items.check(e, "\(path)[\(i)]", &errs) }
        case .object(let props, let req, let add):
            guard let o = v.objectValue else { errs.append(FieldError(path: here, message: "must be an object")); return }
            for r in req where o[r] == nil || (o[r]!.isNull && !Schema.allowsNull(props, r)) {
                errs.append(FieldError(path: path.isEmpty ? r : "\(path).\(r)", message: "is required"))
            }
            for (k, s) in props {
                guard let e = o[k] else { continue }
                if e.isNull && !req.contains(k) { continue }
                if e.isNull && req.contains(k) { continue }  // reported above
                s.check(e, path.isEmpty ? k : "\(path).\(k)", &errs)
            }
            if !add {
                // Properties are few: a scan beats building a set for every object checked.
                var unknown: [String] = []
                for k in o.keys where !props.contains(where: { $0.0 == k }) { unknown.append(k) }
                for k in unknown.sorted() {
                    errs.append(FieldError(path: path.isEmpty ? k : "\(path).\(k)", message: "is not allowed"))
                }
            }
        }
    }

    private static func allowsNull(_ props: [(String, Schema)], _ name: String) -> Bool {
        for (k, s) in props where k == name { if case .nullable = s { return true } }
        return false
    }

    /// A pattern as it is matched: by SimplePattern when it is in that subset, else by Foundation.
    private enum Matcher: @unchecked Sendable {
        case simple(SimplePattern)
        case foundation(NSRegularExpression)
        case invalid
    }

    private static let matchers = Locked<[String: Matcher]>([:])

    static func matches(_ s: String, _ pattern: String) -> Bool {
        let m: Matcher = matchers.withLock { c in
            if let m = c[pattern] { return m }
            let m: Matcher = SimplePattern.compile(pattern).map { .simple($0) }
                ?? (try? NSRegularExpression(pattern: pattern)).map { .foundation($0) } ?? .invalid
            c[pattern] = m
            return m
        }
        switch m {
        case .simple(let p): return p.matches(s)
        case .foundation(let re):
            // ICU lets `$` match before a final line break; in JSON Schema (ECMA-262) it is the end.
            let n = (s as NSString).length
            let strictEnd = pattern.hasSuffix("$") && !pattern.hasSuffix("\\$")
            return re.matches(in: s, range: NSRange(location: 0, length: n)).contains { !strictEnd || NSMaxRange($0.range) == n }
        case .invalid: return false
        }
    }
}
