import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// How the provider client's URLSession is configured, in one place: ParcelXSvc's client uses
/// it, and so does `bench parcelx` when it measures that client alone.
public enum ParcelXSession {
    public static func configuration(maxConnections: Int, requestTimeoutS: Double, totalTimeoutS: Double) -> URLSessionConfiguration {
        let cfg = URLSessionConfiguration.ephemeral
        cfg.timeoutIntervalForRequest = requestTimeoutS
        cfg.timeoutIntervalForResource = totalTimeoutS
        cfg.httpMaximumConnectionsPerHost = maxConnections
        cfg.requestCachePolicy = .reloadIgnoringLocalCacheData
        // An API client keeps no cookies, cache or credentials: looking them up on every call
        // was 5 % of ParcelXSvc's CPU, and a provider answer must never come from a cache.
        cfg.urlCache = nil
        cfg.httpCookieStorage = nil
        cfg.httpShouldSetCookies = false
        cfg.urlCredentialStorage = nil
        return cfg
    }
}
