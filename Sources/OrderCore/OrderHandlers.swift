import JSON
import RPC

/// OrderSvc's face: method declarations. Handlers parse and validate; OrderService decides.
enum OrderHandlers {
    static func methods(_ s: OrderService) -> [Method] {
        [
            Method("orders.create", summary: "Create an order; idempotent on (merchant, clientOrderId)", roles: [.merchant],
                   params: OrderSchemas.create,
                   result: .object([("created", .boolean), ("order", OrderSchemas.order)]),
                   errors: [.invalidParams, .conflict, .businessRule, .unavailable]) { p, ctx throws in
                let r = try s.create(p, ctx: ctx)
                return ["created": .bool(r.created), "order": r.order]
            },
            Method("orders.cancel", summary: "Request cancellation (queued); repeating it is harmless", roles: [.merchant, .admin],
                   params: OrderSchemas.orderId, result: .object([("order", OrderSchemas.order)]), errors: [.notFound, .businessRule]) { p, ctx throws in
                ["order": try s.cancel(orderId: p.requiredString("orderId"), ctx: ctx)]
            },
            Method("orders.get", summary: "One order with its status history (owner or admin)", roles: [.merchant, .admin, .system],
                   params: OrderSchemas.orderId, result: OrderSchemas.order, errors: [.notFound]) { p, ctx throws in
                try s.get(orderId: p.requiredString("orderId"), ctx: ctx)
            },
            Method("orders.list", summary: "Orders newest first, with a status filter and a cursor", roles: [.merchant, .admin],
                   params: OrderSchemas.page,
                   result: .object([("items", .array(OrderSchemas.order)), ("nextCursor", .nullable(.string()))])) { p, ctx throws in
                try s.list(p, ctx: ctx)
            },
            Method("orders.internal.get", summary: "The full order record, for the provider workers", roles: [.system],
                   params: OrderSchemas.orderId, result: .anything, errors: [.notFound]) { p, _ throws in
                guard let o = try s.repo.get(p.requiredString("orderId")) else { throw RPCError.notFound("Order not found") }
                return o
            },
            // Provider outcomes: ParcelXSvc says what happened; OrderSvc decides what it means.
            Method("orders.provider.placed", summary: "The provider holds a live shipment for the order", roles: [.system],
                   params: OrderSchemas.providerPlaced, result: OrderSchemas.providerResult, errors: [.notFound]) { p, ctx throws in
                try s.report(p.requiredString("orderId"), .providerPlaced(ProviderBooking(awb: p.requiredString("awbNumber"),
                                                                                           courier: p["courierName"]?.stringValue, refs: refs(p))), ctx: ctx)
            },
            Method("orders.provider.failed", summary: "A create attempt failed: retrying, refused, or retries exhausted", roles: [.system],
                   params: OrderSchemas.providerFailed, result: OrderSchemas.providerResult, errors: [.notFound]) { p, ctx throws in
                let f = ProviderFailure(message: p["message"]?.stringValue ?? "", refs: refs(p), mayHaveBooked: p["mayHaveBooked"] == true)
                let event: OrderEvent
                switch try p.requiredString("outcome") {
                case "retrying": event = .providerAttempted(f.refs)
                case "refused": event = .providerRefused(f)
                default: event = .retriesExhausted(f)
                }
                return try s.report(p.requiredString("orderId"), event, ctx: ctx)
            },
            Method("orders.provider.cancelled", summary: "Nothing live is left at the provider for the order", roles: [.system],
                   params: OrderSchemas.providerCancelled, result: OrderSchemas.providerResult, errors: [.notFound]) { p, ctx throws in
                try s.report(p.requiredString("orderId"), .providerCancelled(ProviderCancellation(refs: refs(p), awb: p["awbNumber"]?.stringValue,
                                                                                                   atProvider: p["atProvider"] == true)), ctx: ctx)
            },
            Method("orders.provider.cancelRefused", summary: "The provider would not, or could not, cancel", roles: [.system],
                   params: OrderSchemas.providerCancelRefused, result: OrderSchemas.providerResult, errors: [.notFound]) { p, ctx throws in
                try s.report(p.requiredString("orderId"), .cancelRefused(ProviderFailure(message: p["message"]?.stringValue ?? "", refs: refs(p),
                                                                                         awb: p["awbNumber"]?.stringValue)), ctx: ctx)
            },
            Method("orders.provider.tracked", summary: "A tracking poll saw the shipment in this provider status", roles: [.system],
                   params: OrderSchemas.providerTracked, result: OrderSchemas.providerResult, errors: [.notFound]) { p, ctx throws in
                let u = TrackingUpdate(status: p["trackingStatus"]?.stringValue.flatMap(TrackingStatus.init(rawValue:)),
                                       providerCode: Int(p["providerStatusCode"]?.intValue ?? 0), providerTitle: p["providerStatusTitle"]?.stringValue ?? "",
                                       eventAt: p["eventAt"]?.stringValue, location: p["location"]?.stringValue, remark: p["remark"]?.stringValue)
                return try s.report(p.requiredString("orderId"), .tracked(u), ctx: ctx)
            },
            Method("orders.recover", summary: "Run the recovery pass now (operators)", roles: [.admin, .system],
                   params: .empty, result: .object([("finished", .int())])) { _, _ in
                ["finished": .int(Int64(s.recoverOnce()))]
            },
        ]
    }

    private static func refs(_ p: JSON) -> ProviderRefs {
        ProviderRefs(requestRefId: p["parcelxRequestRefId"]?.stringValue, responseRefId: p["parcelxResponseRefId"]?.stringValue)
    }
}
