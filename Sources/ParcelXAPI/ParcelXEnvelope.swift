import JSON

/// The provider's `responsemsg`: a string, or an array of strings (failures usually).
public enum ParcelXMessage: Codable, Sendable, Hashable {
    case text(String)
    case list([String])

    /// The message a person should read: the string, or the first element of the array.
    public var text: String? {
        switch self {
        case .text(let s): return s
        case .list(let a): return a.first
        }
    }

    /// Every message, in order.
    public var all: [String] {
        switch self {
        case .text(let s): return [s]
        case .list(let a): return a
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .text(s) }
        else if let a = try? c.decode([ParcelXLenientString].self) { self = .list(a.map(\.value)) }
        else if let o = try? c.decode(JSON.self) { self = .text(o.serialized()) }  // an object: keep it readable
        else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "responsemsg is neither a string nor an array") }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .text(let s): try c.encode(s)
        case .list(let a): try c.encode(a)
        }
    }

    /// The readable message of any provider body (`responsemsg`, or `message` as some error
    /// bodies spell it); nil when there is none.
    public static func first(in body: JSON) -> String? {
        for key in ["responsemsg", "message"] {
            switch body[key] {
            case .string(let s)?: return s
            case .array(let a)?: if let s = a.first?.stringValue { return s }
            default: continue
            }
        }
        return nil
    }
}

/// The envelope of every provider answer: `{status, responsemsg, data}`.
/// A business refusal is HTTP 200 with `status: false`.
public struct ParcelXEnvelope<Payload: Codable & Sendable>: Codable, Sendable {
    public var status: Bool
    public var responsemsg: ParcelXMessage?
    public var data: Payload?

    public init(status: Bool, responsemsg: ParcelXMessage? = nil, data: Payload? = nil) {
        self.status = status
        self.responsemsg = responsemsg
        self.data = data
    }

    /// `responsemsg` as one readable string.
    public var message: String? { responsemsg?.text }

    enum CodingKeys: String, CodingKey { case status, responsemsg, data }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        status = try c.lenientBool(.status) ?? false
        responsemsg = try c.decodeIfPresent(ParcelXMessage.self, forKey: .responsemsg)
        // A failure may carry `data: []` or `data: ""` where success carries an object.
        data = status ? try c.decodeIfPresent(Payload.self, forKey: .data) : try? c.decodeIfPresent(Payload.self, forKey: .data)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(status, forKey: .status)
        try c.encodeIfPresent(responsemsg, forKey: .responsemsg)
        try c.encodeIfPresent(data, forKey: .data)
    }
}

/// Answers that carry no data (cancel, remove-warehouse).
public typealias ParcelXStatusResponse = ParcelXEnvelope<JSON>
