import JSON
import RPC

/// OrderSvc's face: method declarations. Handlers parse and validate; OrderService decides.
enum OrderHandlers {
    static func methods(_ s: OrderService) -> [Method] {
        [
            Method("orders.create", summary: "Create an order; idempotent on (merchant, clientOrderId)", roles: [.merchant],
                   params: OrderSchemas.create,
                   result: .object([("created", .boolean), ("order", OrderSchemas.order)]),
                   errors: [-32602, -32009, -32022, -32050]) { p, ctx throws in
                let r = try s.create(p, ctx: ctx)
                return ["created": .bool(r.created), "order": r.order]
            },
            Method("orders.cancel", summary: "Request cancellation (queued); repeating it is harmless", roles: [.merchant, .admin],
                   params: OrderSchemas.orderId, result: .object([("order", OrderSchemas.order)]), errors: [-32004, -32022]) { p, ctx throws in
                ["order": try s.cancel(orderId: p["orderId"]!.stringValue!, ctx: ctx)]
            },
            Method("orders.get", summary: "One order with its status history (owner or admin)", roles: [.merchant, .admin, .system],
                   params: OrderSchemas.orderId, result: OrderSchemas.order, errors: [-32004]) { p, ctx throws in
                try s.get(orderId: p["orderId"]!.stringValue!, ctx: ctx)
            },
            Method("orders.list", summary: "Orders newest first, with a status filter and a cursor", roles: [.merchant, .admin],
                   params: OrderSchemas.page,
                   result: .object([("items", .array(OrderSchemas.order)), ("nextCursor", .nullable(.string()))])) { p, ctx throws in
                try s.list(p, ctx: ctx)
            },
            Method("orders.internal.get", summary: "The full order record, for the provider workers", roles: [.system],
                   params: OrderSchemas.orderId, result: .anything, errors: [-32004]) { p, _ throws in
                guard let o = try s.repo.get(p["orderId"]!.stringValue!) else { throw RPCError.notFound("Order not found") }
                return o
            },
            Method("orders.internal.transition", summary: "Compare-and-set of status and provider fields, with an optional refund",
                   roles: [.system], params: OrderSchemas.transition,
                   result: .object([("applied", .boolean), ("order", .anything)]), errors: [-32004]) { p, ctx throws in
                try s.transition(p, ctx: ctx)
            },
            Method("orders.recover", summary: "Run the recovery pass now (operators)", roles: [.admin, .system],
                   params: .empty, result: .object([("finished", .int())])) { _, _ in
                ["finished": .int(Int64(s.recoverOnce()))]
            },
        ]
    }
}
