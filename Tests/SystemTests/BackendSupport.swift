import Foundation
import Runtime
import Store
import TestSupport

// Data-relevant system tests run on both store backends. Each such class reads its backend from
// `class var backend` (SQLite); a `…MongoSystemTests` subclass overrides it and every test
// method. Linux test discovery lists a subclass only when it declares test methods (and then
// runs its inherited ones too), so the subclasses name each test explicitly: what runs on
// MongoDB is visible in one place.

extension ProcessSet {
    /// A handle on the store `service` uses in this set (its SQLite file, or its MongoDB
    /// collections), for tests that plant or inspect documents directly. Close it when done.
    func openStore(_ service: String) throws -> any DocumentStore {
        try StoreFactory.open(service: service, dataDir: dataDir, mongoURI: mongo?.uri,
                              log: Logger(service: "test", instance: 0, level: .error))
    }
}
