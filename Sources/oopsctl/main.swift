import Foundation
import JSON
import RPC
import Runtime
import Domain
import Store

/// oopsctl: the operator's tool. Talks JSON-RPC to the services over their Unix sockets (the
/// same trust boundary as the Gateway), so it must run on the host, as a user who can open
/// `$OOPS_RUN_DIR`.
let usage = """
usage: oopsctl <command> [args]

  call <service> <method> ['<json params>'] [--as system|admin|merchant:<userId>]
                               call any method of any service and pretty-print the answer
  methods <service>            list a service's methods (from rpc.discover)
  health                       rpc.health of every instance of every service
  admin <email> <password> [name]
                               create the first admin (or promote a user to admin)
  reconcile                    prove every wallet's balance equals the sum of its ledger
  recover                      run the order recovery pass now
  queues                       counts per state of both provider queues
  queue <retry-all|pause|resume> <queue>
  queue <retry|promote|remove> <queue> <jobId>
  queue clean <queue> <state> <olderThanSeconds>
  migrate-to-mongodb <mongodb-uri>
                               copy every service's SQLite data (in OOPS_DATA_DIR) into MongoDB,
                               one way; resumable: run it again (last with the services stopped)
                               until it reports no change; then verifies counts and the wallets

services: \(ServiceName.all.joined(separator: ", ")); queues: \(QueueNames.all.joined(separator: ", "))
environment: OOPS_RUN_DIR (default var/run) selects the system to talk to; OOPS_DATA_DIR
(default var/data) the SQLite files to migrate.
"""

let config = Config.fromEnvironment()
var args = Array(CommandLine.arguments.dropFirst())
var chosenActor = Actor.system
if let i = args.firstIndex(of: "--as"), i + 1 < args.count {
    let v = args[i + 1]
    if v == "admin" { chosenActor = Actor(userId: "operator", role: .admin) } else if v.hasPrefix("merchant:") {
        chosenActor = Actor(userId: String(v.dropFirst(9)), role: .merchant)
    }
    args.removeSubrange(i...(i + 1))
}
let actor = chosenActor

func fail(_ m: String, code: Int32 = 2) -> Never {
    FileHandle.standardError.write((m + "\n").data(using: .utf8)!)
    exit(code)
}

@MainActor func call(_ service: String, _ method: String, _ params: JSON = .object([:]), timeoutMs: Int = 30_000) -> JSON {
    guard ServiceName.all.contains(service) else { fail("unknown service \(service); one of \(ServiceName.all.joined(separator: ", "))") }
    let client = RPCClient(runDir: config.runDir, service: service)
    do {
        return try client.call(method, params, ctx: .new(actor: actor, timeoutMs: timeoutMs))
    } catch {
        var m = "error \(error.code): \(error.message)"
        if let d = error.data { m += "\n" + d.prettyPrinted() }
        fail(m, code: 1)
    }
}

func show(_ j: JSON) { print(j.prettyPrinted()) }

guard let cmd = args.first else { fail(usage) }
let rest = Array(args.dropFirst())
switch cmd {
case "call":
    guard rest.count >= 2 else { fail(usage) }
    var params: JSON = .object([:])
    if rest.count >= 3 {
        do { params = try JSONParser.parse(rest[2]) } catch { fail("params are not valid JSON: \(error)") }
        guard params.objectValue != nil else { fail("params must be a JSON object (by-name)") }
    }
    show(call(rest[0], rest[1], params))
case "methods":
    guard rest.count == 1 else { fail(usage) }
    let doc = call(rest[0], "rpc.discover")
    for m in doc["methods"]?.arrayValue ?? [] {
        let roles = (m["x-roles"]?.arrayValue ?? []).compactMap { $0.stringValue }
        let name = m["name"]?.stringValue ?? ""
        print("\(name.padding(toLength: 30, withPad: " ", startingAt: 0)) [\(roles.isEmpty ? "anyone" : roles.joined(separator: ","))] \(m["summary"]?.stringValue ?? "")")
    }
case "health":
    var all: [String: JSON] = [:]
    var ok = true
    for s in ServiceName.all {
        let client = RPCClient(runDir: config.runDir, service: s)
        var inst: [JSON] = []
        for p in client.instancePaths() {
            do { inst.append(try client.call(instancePath: p, "rpc.health", ctx: .new(timeoutMs: 2000))) } catch {
                ok = false
                inst.append(["socket": .string(p), "status": "down", "error": .string(error.message)])
            }
        }
        if inst.isEmpty { ok = false }
        all[s] = .array(inst)
    }
    show(.object(all))
    exit(ok ? 0 : 1)
case "admin":
    guard rest.count >= 2 else { fail(usage) }
    show(call(ServiceName.auth, "users.ensureAdmin", ["email": .string(rest[0]), "password": .string(rest[1]), "name": .string(rest.count > 2 ? rest[2] : "Administrator")]))
case "reconcile":
    let r = call(ServiceName.wallet, "wallet.reconcile")
    show(r)
    exit(r["ok"] == true ? 0 : 1)
case "recover":
    show(call(ServiceName.order, "orders.recover"))
case "queues":
    show(call(ServiceName.parcelx, "queues.overview"))
case "queue":
    guard rest.count >= 2 else { fail(usage) }
    let q = rest[1]
    switch rest[0] {
    case "retry-all": show(call(ServiceName.parcelx, "queues.retryAll", ["queue": .string(q)]))
    case "pause": show(call(ServiceName.parcelx, "queues.pause", ["queue": .string(q)]))
    case "resume": show(call(ServiceName.parcelx, "queues.resume", ["queue": .string(q)]))
    case "retry", "promote", "remove":
        guard rest.count == 3 else { fail(usage) }
        show(call(ServiceName.parcelx, "queues.\(rest[0])", ["queue": .string(q), "jobId": .string(rest[2])]))
    case "clean":
        guard rest.count == 4, let secs = Int64(rest[3]) else { fail(usage) }
        // The service checks the range; this only must not overflow on the way there.
        let (ms, overflow) = secs.multipliedReportingOverflow(by: 1000)
        guard !overflow else { fail("olderThanSeconds is out of range") }
        show(call(ServiceName.parcelx, "queues.clean", ["queue": .string(q), "state": .string(rest[2]), "olderThanMs": .int(ms)]))
    default: fail(usage)
    }
case "migrate-to-mongodb":
    guard rest.count == 1 else { fail(usage) }
    exit(migrateToMongoDB(uri: rest[0], dataDir: config.dataDir))
case "help", "--help", "-h":
    print(usage)
default:
    fail(usage)
}
