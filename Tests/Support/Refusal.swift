import JSON
import RPC
import XCTest

/// The error an RPC call was refused with; a test failure (and nil) when it succeeded or threw
/// anything but an `RPCError`. The unit tests of the service cores ask their Dispatchers this way.
public func expectRefusal(_ method: String, file: StaticString = #filePath, line: UInt = #line, _ call: () throws -> JSON) -> RPCError? {
    do {
        let r = try call()
        XCTFail("\(method) succeeded: \(r.serialized())", file: file, line: line)
        return nil
    } catch let e as RPCError {
        return e
    } catch {
        XCTFail("\(method) threw \(error)", file: file, line: line)
        return nil
    }
}
