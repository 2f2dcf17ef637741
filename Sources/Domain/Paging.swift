import RPC
import Runtime

/// The paging rule of every list method (`orders.list`, `wallet.transactions`, `kyc.list`): a
/// page holds 1 to 100 items, and a cursor is the id of the last item of the previous page,
/// exactly as `nextCursor` returned it. A cursor of any other form is a validation error (400 at
/// the Gateway) rather than a silently different page.
public enum Paging {
    public static let limits: ClosedRange<Int64> = 1...100
    public static let defaultLimit: Int64 = 20
    public static let limit = Schema.int(min: limits.lowerBound, max: limits.upperBound)

    /// The largest offset of `queues.jobs`, which pages a queue state by offset (the dashboard).
    public static let maxJobOffset: Int64 = 1_000_000

    /// The cursor of a list keyed by ids made with `ID.make(idPrefix)`.
    public static func cursor(idPrefix: String) -> Schema {
        .string(min: 1, max: 64, pattern: ID.pattern(idPrefix))
    }
}
