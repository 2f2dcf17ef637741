import XCTest
@testable import OrderCore
