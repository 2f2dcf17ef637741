import Domain
import AuthCore
import RPC

// AuthSvc: a short main; the service's logic and wiring live in the AuthCore library (AuthProcess.swift).
ServiceHost.main(name: ServiceName.auth, build: AuthProcess.build)
