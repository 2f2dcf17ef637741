import Foundation
import CCurl

/// Limits and TLS trust of a `CurlHTTPClient`, each range-checked by `init`.
public struct CurlClientOptions: Sendable {
    /// Time to set up a connection (TCP and TLS), per call.
    public var connectTimeoutMs: Int = 10_000
    /// Time for the whole call, from hand-over (including any wait for a free connection) to the last byte.
    public var totalTimeoutMs: Int = 15_000
    /// Open connections per host; further calls wait for one to be free (or multiplex on HTTP/2).
    public var maxConnectionsPerHost: Int = 64
    /// Response bytes kept per call; the rest is read and dropped.
    public var maxResponseBytes: Int = 1 << 20
    /// A PEM file of CA certificates trusted instead of the system's (a test CA, a private PKI).
    public var caFile: String?

    public init() {}
}

public struct CurlClientError: Error, CustomStringConvertible {
    public let description: String
}

/// An HTTP client on libcurl's multi interface: one thread drives every call in flight (any
/// number of them) with poll, connections are kept alive and reused across calls, HTTP/2 is
/// used when a TLS server offers it (HTTP/1.1 pipelining stays off), certificates and host
/// names are verified. Each call has its own connect and total timeout.
public final class CurlHTTPClient: HTTPTransport, @unchecked Sendable {
    public let options: CurlClientOptions
    private let multi: UnsafeMutableRawPointer
    private let share: UnsafeMutableRawPointer
    /// The epoll set and wake-up the loop waits on (see oops_ev_step in the shim).
    private let events: UnsafeMutablePointer<oops_curl_ev>
    /// Calls handed over and not yet added to the multi handle, and whether the loop still runs.
    private let lock = NSLock()
    private var pending: [Transfer] = []
    private var closing = false
    private var inFlightCount = 0
    private let stopped = DispatchSemaphore(value: 0)

    // Loop-thread state.
    private var idleHandles: [UnsafeMutableRawPointer] = []
    private var running: [UnsafeMutableRawPointer: Transfer] = [:]

    private static let globalInit: Bool = oops_global_init() == CURLE_OK

    public init(options: CurlClientOptions, name: String = "http-client") throws {
        guard (1...600_000).contains(options.connectTimeoutMs), (1...3_600_000).contains(options.totalTimeoutMs),
              (1...10_000).contains(options.maxConnectionsPerHost), (0...(64 << 20)).contains(options.maxResponseBytes) else {
            throw CurlClientError(description: "HTTP client limits out of range: connect timeout 1..600000 ms, total timeout 1..3600000 ms, "
                                  + "connections per host 1..10000, response bytes 0..64 MiB")
        }
        if let ca = options.caFile, !FileManager.default.isReadableFile(atPath: ca) {
            throw CurlClientError(description: "CA file \(ca) cannot be read")
        }
        guard Self.globalInit, let m = curl_multi_init(), let s = curl_share_init() else {
            throw CurlClientError(description: "libcurl could not be initialised")
        }
        events = .allocate(capacity: 1)
        guard oops_ev_init(events, m) == 0 else {
            oops_ev_close(events)
            events.deallocate()
            curl_multi_cleanup(m)
            curl_share_cleanup(s)
            throw CurlClientError(description: "epoll for the HTTP client could not be set up: \(String(cString: strerror(errno)))")
        }
        self.options = options
        multi = m
        share = s
        // Every call runs on the loop thread, so the share needs no lock callbacks.
        _ = oops_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_DNS.rawValue))
        _ = oops_share_setopt_long(share, CURLSHOPT_SHARE, Int(CURL_LOCK_DATA_SSL_SESSION.rawValue))
        _ = oops_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
        _ = oops_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, options.maxConnectionsPerHost)
        _ = oops_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, options.maxConnectionsPerHost)
        let t = Thread { [self] in loop() }
        t.name = name
        t.start()
    }

    /// Only once the loop has ended (it holds the client while it runs).
    deinit { events.deallocate() }

    /// Calls handed over and not yet answered.
    public var inFlight: Int { lock.lock(); defer { lock.unlock() }; return inFlightCount }

    public func start(_ call: HTTPCall, completion: @escaping @Sendable (HTTPAnswer) -> Void) {
        let t = Transfer(call: call, completion: completion, keep: options.maxResponseBytes)
        lock.lock()
        if closing {
            lock.unlock()
            t.finish(status: nil, failure: .transport("client closed"))
            return
        }
        pending.append(t)
        inFlightCount += 1
        lock.unlock()
        oops_ev_wake(events)
    }

    /// Stops the loop: calls in flight end with a transport failure. Waits for the loop to exit.
    public func close() {
        lock.lock()
        let first = !closing
        closing = true
        lock.unlock()
        guard first else { return }
        oops_ev_wake(events)
        stopped.wait()
    }

    private func loop() {
        while true {
            lock.lock()
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            let stop = closing
            lock.unlock()
            for t in batch { add(t) }
            if stop { break }
            // Wakes on socket activity, on curl's next timeout, or on a new call; drives curl
            // for what is ready only.
            oops_ev_step(events, multi, 1000)
            var left: Int32 = 0
            while let msg = curl_multi_info_read(multi, &left) {
                guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle else { continue }
                done(easy, code: oops_msg_result(msg))
            }
        }
        for (easy, t) in running {
            curl_multi_remove_handle(multi, easy)
            curl_easy_cleanup(easy)
            t.finish(status: nil, failure: .transport("client closed"))
        }
        running.removeAll()
        lock.lock()
        inFlightCount = 0
        lock.unlock()
        for easy in idleHandles { curl_easy_cleanup(easy) }
        idleHandles.removeAll()
        curl_multi_cleanup(multi)
        curl_share_cleanup(share)
        oops_ev_close(events)
        stopped.signal()
    }

    private func add(_ t: Transfer) {
        guard let easy = idleHandles.popLast() ?? curl_easy_init() else {
            ended(t, status: nil, failure: .transport("libcurl could not make a handle"))
            return
        }
        if let problem = configure(easy, t) {
            curl_easy_reset(easy)
            idleHandles.append(easy)
            ended(t, status: nil, failure: .transport(problem))
            return
        }
        running[easy] = t
        curl_multi_add_handle(multi, easy)
    }

    /// Sets one call's options on a fresh or reset handle; returns what was wrong, if anything.
    private func configure(_ easy: UnsafeMutableRawPointer, _ t: Transfer) -> String? {
        let o = options
        var rc = CURLE_OK
        func set(_ opt: CURLoption, _ v: Int) { if rc == CURLE_OK { rc = oops_easy_setopt_long(easy, opt, v) } }
        func set(_ opt: CURLoption, _ v: String) { if rc == CURLE_OK { rc = oops_easy_setopt_str(easy, opt, v) } }
        set(CURLOPT_URL, t.call.url)
        // Only the schemes a provider API uses; no redirects (a 3xx is the provider's answer).
        set(CURLOPT_PROTOCOLS_STR, "http,https")
        set(CURLOPT_NOSIGNAL, 1)
        set(CURLOPT_CONNECTTIMEOUT_MS, o.connectTimeoutMs)
        set(CURLOPT_TIMEOUT_MS, o.totalTimeoutMs)
        set(CURLOPT_TCP_KEEPALIVE, 1)
        set(CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        set(CURLOPT_SSL_VERIFYPEER, 1)
        set(CURLOPT_SSL_VERIFYHOST, 2)
        if let ca = o.caFile { set(CURLOPT_CAINFO, ca) }
        if rc == CURLE_OK { rc = oops_easy_setopt_ptr(easy, CURLOPT_SHARE, share) }
        switch t.call.method {
        case "GET": set(CURLOPT_HTTPGET, 1)
        case "POST": set(CURLOPT_POST, 1)
        default: set(CURLOPT_CUSTOMREQUEST, t.call.method)
        }
        if let body = t.call.body {
            if t.call.method == "GET" { set(CURLOPT_CUSTOMREQUEST, "GET") }
            if rc == CURLE_OK { rc = oops_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)) }
            if rc == CURLE_OK { rc = body.withUnsafeBytes { oops_easy_setopt_ptr(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!)) } }
        }
        var list: UnsafeMutablePointer<curl_slist>?
        for (name, value) in t.call.headers {
            guard Self.headerIsClean(name, value) else { curl_slist_free_all(list); return "header \(name) has a line break or bad name" }
            list = curl_slist_append(list, "\(name): \(value)")
        }
        // A body is sent at once, never after an `Expect: 100-continue` round trip.
        list = curl_slist_append(list, "Expect:")
        t.headerList = list
        if rc == CURLE_OK { rc = oops_easy_setopt_ptr(easy, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list)) }
        if !t.call.resolve.isEmpty {
            var pins: UnsafeMutablePointer<curl_slist>?
            for r in t.call.resolve { pins = curl_slist_append(pins, r) }
            t.resolveList = pins
            if rc == CURLE_OK { rc = oops_easy_setopt_ptr(easy, CURLOPT_RESOLVE, UnsafeMutableRawPointer(pins)) }
        }
        let me = Unmanaged.passUnretained(t).toOpaque()
        if rc == CURLE_OK { rc = oops_easy_setopt_write(easy, CURLOPT_WRITEFUNCTION, Transfer.onBody) }
        if rc == CURLE_OK { rc = oops_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, me) }
        if rc == CURLE_OK { rc = oops_easy_setopt_write(easy, CURLOPT_HEADERFUNCTION, Transfer.onHeader) }
        if rc == CURLE_OK { rc = oops_easy_setopt_ptr(easy, CURLOPT_HEADERDATA, me) }
        return rc == CURLE_OK ? nil : String(cString: curl_easy_strerror(rc))
    }

    static func headerIsClean(_ name: String, _ value: String) -> Bool {
        !name.isEmpty && !name.utf8.contains { $0 <= 32 || $0 == UInt8(ascii: ":") || $0 >= 127 }
            && !value.utf8.contains { $0 == 13 || $0 == 10 || $0 == 0 }
    }

    private func done(_ easy: UnsafeMutableRawPointer, code: CURLcode) {
        curl_multi_remove_handle(multi, easy)
        guard let t = running.removeValue(forKey: easy) else { return }
        var status = 0
        _ = oops_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        curl_easy_reset(easy)
        idleHandles.append(easy)
        let failure: HTTPCallFailure?
        switch code {
        case CURLE_OK: failure = nil
        case CURLE_OPERATION_TIMEDOUT: failure = .timedOut
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR:
            failure = .untrustedCertificate(String(cString: curl_easy_strerror(code)))
        default: failure = .transport("\(code.rawValue) \(String(cString: curl_easy_strerror(code)))")
        }
        ended(t, status: failure == nil && status > 0 ? status : nil, failure: failure)
    }

    private func ended(_ t: Transfer, status: Int?, failure: HTTPCallFailure?) {
        lock.lock()
        inFlightCount -= 1
        lock.unlock()
        t.finish(status: status, failure: failure)
    }
}

/// One call on the loop thread: the request, the answer as it arrives, and who to tell.
private final class Transfer {
    let call: HTTPCall
    let completion: @Sendable (HTTPAnswer) -> Void
    let keep: Int
    let startedAt = DispatchTime.now().uptimeNanoseconds
    var body: [UInt8] = []
    var retryAfter: String?
    var headerList: UnsafeMutablePointer<curl_slist>?
    var resolveList: UnsafeMutablePointer<curl_slist>?

    init(call: HTTPCall, completion: @escaping @Sendable (HTTPAnswer) -> Void, keep: Int) {
        self.call = call
        self.completion = completion
        self.keep = keep
    }

    func finish(status: Int?, failure: HTTPCallFailure?) {
        curl_slist_free_all(headerList)
        headerList = nil
        curl_slist_free_all(resolveList)
        resolveList = nil
        completion(HTTPAnswer(status: status, body: body, retryAfter: retryAfter, failure: failure,
                              durationNanos: DispatchTime.now().uptimeNanoseconds - startedAt))
    }

    static let onBody: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { ptr, size, n, me in
        let count = size * n
        guard let ptr, let me else { return count }
        let t = Unmanaged<Transfer>.fromOpaque(me).takeUnretainedValue()
        let room = t.keep - t.body.count
        if room > 0 {
            ptr.withMemoryRebound(to: UInt8.self, capacity: count) { t.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: min(room, count))) }
        }
        return count
    }

    /// Sees each header line of each response (interim ones too): keeps the final one's Retry-After.
    static let onHeader: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { ptr, size, n, me in
        let count = size * n
        guard let ptr, let me else { return count }
        let t = Unmanaged<Transfer>.fromOpaque(me).takeUnretainedValue()
        let line = UnsafeRawBufferPointer(start: ptr, count: count)
        if line.starts(with: "HTTP/".utf8) {
            t.retryAfter = nil
        } else if count > 12, line.prefix(12).elementsEqual("retry-after:".utf8, by: { ($0 | 0x20) == $1 }) {
            let v = String(decoding: line.dropFirst(12), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            t.retryAfter = String(v.prefix(64))
        }
        return count
    }
}
