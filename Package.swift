// swift-tools-version:6.0
// OOPS: a shipping-platform backend as separate processes speaking JSON-RPC over Unix sockets.
// No Swift package dependencies: Foundation, the toolchain, and C libraries from Debian.
import PackageDescription

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
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(name: "CMongoC", pkgConfig: "libmongoc-1.0", providers: [.apt(["libmongoc-dev", "libbson-dev"])]),

        // Shared libraries, named by what they do.
        .target(name: "JSON"),
        .target(name: "Runtime", dependencies: ["JSON"]),
        .target(name: "RPC", dependencies: ["JSON", "Runtime"]),
        .target(name: "Crypto", dependencies: ["CSodium", "JSON"]),
        .target(name: "Store", dependencies: ["JSON", "Runtime", "CSQLite", "CMongoC"]),
        .target(name: "Redis", dependencies: ["CHiredis", "Runtime"]),
        .target(name: "Queue", dependencies: ["Redis", "JSON", "Runtime"]),
        .target(name: "HTTPServer", dependencies: ["CMicroHTTPD", "Runtime"]),
        .target(name: "ParcelXAPI", dependencies: ["JSON"]),
        .target(name: "Domain", dependencies: ["JSON", "RPC"]),

        // Processes.
        .executableTarget(name: "AuthSvc", dependencies: ["RPC", "Runtime", "Store", "Crypto", "Domain"]),
        .executableTarget(name: "WalletSvc", dependencies: ["RPC", "Runtime", "Store", "Domain"]),
        .executableTarget(name: "OrderSvc", dependencies: ["RPC", "Runtime", "Store", "Queue", "Domain", "Crypto", "CSQLite"]),
        .executableTarget(name: "ParcelXSvc", dependencies: ["RPC", "Runtime", "Store", "Queue", "Domain", "ParcelXAPI"]),
        .executableTarget(name: "Gateway", dependencies: ["RPC", "Runtime", "HTTPServer", "Crypto", "Domain", "Queue", "Redis"]),
        .executableTarget(name: "ParcelXSandbox", dependencies: ["HTTPServer", "Runtime", "ParcelXAPI", "JSON"]),
        .executableTarget(name: "oopsctl", dependencies: ["RPC", "Runtime", "JSON", "Domain"]),
        .executableTarget(name: "bench", dependencies: ["RPC", "Runtime", "JSON", "Store", "Queue", "Redis", "Domain", "Crypto", "CSQLite"]),

        // Test helpers shared by test targets: redis-server on a free port, temp dirs, child processes.
        .target(name: "TestSupport", dependencies: ["Runtime", "JSON"], path: "Tests/Support"),

        // One test target per library (unit tests, and integration tests against real Redis and
        // real sockets in files named *IntegrationTests), and SystemTests for the whole process set.
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "RPCTests", dependencies: ["RPC", "JSON", "Runtime", "TestSupport"]),
        .testTarget(name: "StoreTests", dependencies: ["Store", "JSON", "Runtime", "TestSupport"]),
        .testTarget(name: "QueueTests", dependencies: ["Queue", "Redis", "JSON", "Runtime", "TestSupport"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "Runtime", "TestSupport", "JSON", "ParcelXAPI"]),
        .testTarget(name: "CryptoTests", dependencies: ["Crypto", "JSON"]),
        .testTarget(name: "DomainTests", dependencies: ["Domain", "ParcelXAPI", "JSON"]),
        .testTarget(name: "SystemTests", dependencies: ["JSON", "RPC", "Runtime", "Redis", "Queue", "TestSupport", "Crypto"]),
    ],
    swiftLanguageModes: [.v6]
)
