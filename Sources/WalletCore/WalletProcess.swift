import Domain
import Foundation
import JSON
import RPC
import Runtime
import Store

// WalletSvc: wallets and the ledger. Wiring only; the protocol lives in WalletService.swift.
//
// Settings (environment): OOPS_WALLET_SWEEP_MS (how often the recovery sweep runs, default 2000)
// and OOPS_WALLET_RECOVER_AFTER_MS (age at which a pending entry or a wallet lock counts as
// stranded, default 2000). OOPS_WALLET_FAILPOINT is for crash tests only (see `Failpoint`).
public enum WalletProcess {
    /// Opens what the service needs and returns its RPC methods; `ServiceHost.main` runs it.
    @Sendable public static func build(_ env: ServiceEnvironment) throws -> ServiceParts {
        let store = try StoreFactory.open(service: ServiceName.wallet, dataDir: env.config.dataDir, mongoURI: env.config.mongoURI, log: env.log)
        // Registered first so it runs last: after the RPC server drained and the sweeper stopped.
        env.onStop("wallet store") { store.close() }
        let repo = WalletRepository(store: store)
        try repo.prepare()
        let failpoint = Failpoint(env.config.string("OOPS_WALLET_FAILPOINT", default: ""))
        if let f = failpoint { env.log.warn("test failpoint armed", ["step": .string(f.step.rawValue), "refPrefix": .string(f.refPrefix)]) }
        let service = WalletService(repository: repo, log: env.log, failpoint: failpoint)

        // Whatever a crashed predecessor left half-done is settled before the first request. Entries
        // of live sibling instances may be settled too; the protocol makes that harmless.
        let recovered = service.recover(olderThanMs: 0)
        if recovered > 0 { env.log.warn("startup recovery finished", ["settled": .int(Int64(recovered))]) }

        let sweepMs = env.config.int("OOPS_WALLET_SWEEP_MS", default: 2000)
        let strandedAfterMs = Int64(env.config.int("OOPS_WALLET_RECOVER_AFTER_MS", default: 2000))
        Metrics.shared.describe([
            "oops_wallet_postings_total": "Ledger entries applied, by reason and type (credit/debit).",
            "oops_wallet_paise_total": "Money moved through the ledger, in paise, by reason and type.",
            "oops_wallet_refused_total": "Debits refused, by reason.",
        ])
        let sweeper = PeriodicTask(name: "wallet-recovery", intervalMs: max(sweepMs, 50), initialDelayMs: sweepMs) {
            service.recover(olderThanMs: strandedAfterMs)
        }
        // stop() waits for a sweep in progress, so the store closes only after it.
        env.onStop("wallet recovery sweep") { sweeper.stop() }

        return ServiceParts(methods: WalletHandlers(service: service).methods, healthChecks: {
            ["store": store.healthCheck]
        })
    }
}
