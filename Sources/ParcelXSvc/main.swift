import Domain
import ParcelXCore
import RPC

// ParcelXSvc: a short main; the service's logic and wiring live in the ParcelXCore library (ParcelXProcess.swift).
ServiceHost.main(name: ServiceName.parcelx, build: ParcelXProcess.build)
