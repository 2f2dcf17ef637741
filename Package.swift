// swift-tools-version:6.0
// OOPS: a shipping-platform backend as separate processes speaking JSON-RPC over Unix sockets.
// No Swift package dependencies: Foundation, the toolchain, and C libraries from Debian.
import PackageDescription

/// Release builds specialise generics across modules (JSON, Locked, the RPC types are used from
/// every process) and drop the run-time exclusivity checks, which cost a thread-local lookup on
/// every access to a class's stored property; debug builds, which the tests run, keep the
/// checks and stay fast to compile. See docs/performance.md.
let optimized: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization", "-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "OOPS",
    products: [
        .executable(name: "Gateway", targets: ["Gateway"]),
        .executable(name: "AuthSvc", targets: ["AuthSvc"]),
        .executable(name: "WalletSvc", targets: ["WalletSvc"]),
        .executable(name: "OrderSvc", targets: ["OrderSvc"]),
        .executable(name: "ParcelXSvc", targets: ["ParcelXSvc"]),
        .executable(name: "ParcelXSandbox", targets: ["ParcelXSandbox"]),
        .executable(name: "oopsctl", targets: ["oopsctl"]),
        .executable(name: "bench", targets: ["bench"]),
    ],
    targets: [
        // C libraries from Debian, one system library target each.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CSodium", pkgConfig: "libsodium", providers: [.apt(["libsodium-dev"])]),
        // http-parser ships no pkg-config file; its module map names the library.
        .systemLibrary(name: "CHTTP", providers: [.apt(["libhttp-parser-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CMongoC", pkgConfig: "libmongoc-1.0", providers: [.apt(["libmongoc-dev", "libbson-dev"])]),

        // Shared libraries, named by what they do.
        .target(name: "JSON", swiftSettings: optimized),
        .target(name: "Runtime", dependencies: ["JSON"], swiftSettings: optimized),
        .target(name: "RPC", dependencies: ["JSON", "Runtime"], swiftSettings: optimized),
        .target(name: "Crypto", dependencies: ["CSodium", "JSON"], swiftSettings: optimized),
        .target(name: "Store", dependencies: ["JSON", "Runtime", "CSQLite", "CMongoC"], swiftSettings: optimized),
        .target(name: "Redis", dependencies: ["CHiredis", "Runtime"], swiftSettings: optimized),
        .target(name: "Queue", dependencies: ["Redis", "JSON", "Runtime"], swiftSettings: optimized),
        .target(name: "HTTPServer", dependencies: ["CHTTP", "Runtime"], swiftSettings: optimized),
        .target(name: "HTTPClient", dependencies: ["CCurl"], swiftSettings: optimized),
        .target(name: "ParcelXAPI", dependencies: ["JSON"], swiftSettings: optimized),
        .target(name: "Domain", dependencies: ["JSON", "RPC", "Runtime"], swiftSettings: optimized),
        // The order as a typed record and its life as one pure state machine (OrderLifecycle);
        // OrderSvc applies it, ParcelXSvc reads the typed order and reports provider outcomes.
        .target(name: "OrderCore", dependencies: ["RPC", "Runtime", "Store", "Queue", "JSON", "Domain", "Crypto", "CSQLite", "HTTPClient"], swiftSettings: optimized),
        // The provider adapter: a typed Order mapped to the ParcelX DTOs, the workers, the audit logs.
        .target(name: "ParcelXCore", dependencies: ["RPC", "Runtime", "Store", "Queue", "Redis", "Domain", "OrderCore", "ParcelXAPI", "HTTPClient"], swiftSettings: optimized),
        // Each service's logic and wiring, as a library its unit tests import; the executables
        // below are a one-line main each.
        .target(name: "WalletCore", dependencies: ["RPC", "Runtime", "Store", "Domain"], swiftSettings: optimized),
        .target(name: "AuthCore", dependencies: ["RPC", "Runtime", "Store", "Crypto", "Domain"], swiftSettings: optimized),
        .target(name: "GatewayCore", dependencies: ["RPC", "Runtime", "HTTPServer", "Crypto", "Domain", "Queue", "Redis"], swiftSettings: optimized),

        // Processes.
        .executableTarget(name: "AuthSvc", dependencies: ["AuthCore", "RPC", "Domain"], swiftSettings: optimized),
        .executableTarget(name: "WalletSvc", dependencies: ["WalletCore", "RPC", "Domain"], swiftSettings: optimized),
        .executableTarget(name: "OrderSvc", dependencies: ["OrderCore", "RPC", "Domain"], swiftSettings: optimized),
        .executableTarget(name: "ParcelXSvc", dependencies: ["ParcelXCore", "RPC", "Domain"], swiftSettings: optimized),
        .executableTarget(name: "Gateway", dependencies: ["GatewayCore"], swiftSettings: optimized),
        .executableTarget(name: "ParcelXSandbox", dependencies: ["HTTPServer", "Runtime", "ParcelXAPI", "JSON"], swiftSettings: optimized),
        .executableTarget(name: "oopsctl", dependencies: ["RPC", "Runtime", "JSON", "Domain", "Store"], swiftSettings: optimized),
        .executableTarget(name: "bench", dependencies: ["RPC", "Runtime", "JSON", "Store", "Queue", "Redis", "Domain", "Crypto", "CSQLite", "ParcelXAPI", "HTTPClient", "Harness"], swiftSettings: optimized),

        // The harness tests and benchmarks share: temp dirs, free ports, child processes, redis-server.
        .target(name: "Harness", dependencies: ["Runtime"]),
        // Test helpers on top of it (re-exported): process sets, the whole system, MongoDB, raw HTTP.
        .target(name: "TestSupport", dependencies: ["Harness", "Runtime", "JSON", "Store", "Queue", "Redis", "RPC"], path: "Tests/Support"),

        // Unit tests: one target per library, in-process, no servers, sockets or child processes
        // (real SQLite files are fine).
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime"]),
        .testTarget(name: "RPCTests", dependencies: ["RPC", "JSON", "Runtime", "TestSupport"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "JSON", "Runtime", "TestSupport"]),
        .testTarget(name: "QueueTests", dependencies: ["Queue", "Redis", "JSON", "Runtime", "TestSupport"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "Runtime", "TestSupport", "JSON", "ParcelXAPI"]),
        .testTarget(name: "CryptoTests", dependencies: ["Crypto", "JSON"]),
        .testTarget(name: "DomainTests", dependencies: ["Domain", "JSON"]),
        // The service cores, unit-tested in-process: MemoryStore, ManualClock, other services
        // through their Dispatchers, no sockets or processes.
        .testTarget(name: "WalletCoreTests", dependencies: ["WalletCore", "RPC", "Runtime", "Store", "JSON", "TestSupport"]),
        .testTarget(name: "AuthCoreTests", dependencies: ["AuthCore", "RPC", "Runtime", "Store", "Crypto", "JSON", "TestSupport"]),
        .testTarget(name: "OrderCoreTests", dependencies: ["OrderCore", "WalletCore", "Domain", "HTTPClient", "Queue", "RPC", "Runtime", "Store", "JSON",
                                                           "TestSupport"]),
        .testTarget(name: "ParcelXCoreTests", dependencies: ["ParcelXCore", "OrderCore", "WalletCore", "Domain", "ParcelXAPI", "HTTPClient", "Queue", "RPC", "Runtime", "Store", "JSON", "TestSupport"]),
        .testTarget(name: "GatewayCoreTests", dependencies: ["GatewayCore", "RPC", "Runtime", "JSON"]),
        // Integration tests of the libraries against real parts: redis-server (and Python bullmq),
        // real sockets (RPC, the HTTP server, libcurl against nginx), the MongoDB test server,
        // several processes on one SQLite file.
        .testTarget(name: "IntegrationTests", dependencies: ["RPC", "JSON", "Runtime", "Store", "Queue", "Redis", "HTTPServer", "HTTPClient",
                                                             "ParcelXAPI", "TestSupport"]),
        // The whole process set.
        .testTarget(name: "SystemTests", dependencies: ["JSON", "RPC", "Runtime", "Redis", "Queue", "TestSupport", "Crypto", "Store"]),
    ],
    swiftLanguageModes: [.v6]
)
