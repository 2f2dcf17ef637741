import JSON
import RPC

/// The queue dashboard at /admin/queues (issue "Queue dashboard"): server-rendered HTML.
enum Dashboard {
    static func routes(_ g: Gateway) -> [Route] {
        [
            Route("GET", "/admin/queues", .admin, "The queue dashboard (HTML)") { rc throws(RPCError) in
                .json(200, try g.call("parcelx", "queues.overview", .object([:]), rc))
            },
        ]
    }
}
