import Domain
import WalletCore
import RPC

// WalletSvc: a short main; the service's logic and wiring live in the WalletCore library (WalletProcess.swift).
ServiceHost.main(name: ServiceName.wallet, build: WalletProcess.build)
