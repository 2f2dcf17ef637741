import Foundation
import Runtime

/// Opens the store a service is configured for: MongoDB when a URI is given, otherwise the
/// SQLite file `<dataDir>/<service>.sqlite`.
public enum StoreFactory {
    public static func open(service: String, dataDir: String, mongoURI: String?, log: Logger) throws -> any DocumentStore {
        try DocumentPath.validateName(service, what: "service")
        if let uri = mongoURI, !uri.isEmpty {
            return try MongoStore(uri: uri, service: service, log: log)
        }
        do {
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o750])
        } catch {
            throw StoreError(.unavailable, "cannot create the data directory \(dataDir)", detail: "\(error)")
        }
        let store = try SQLiteStore(path: "\(dataDir)/\(service).sqlite", log: log)
        log.info("store opened", ["backend": "sqlite", "path": .string(store.path)])
        return store
    }
}
