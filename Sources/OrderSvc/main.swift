import Domain
import OrderCore
import RPC

// OrderSvc: a short main; the service's logic and wiring live in the OrderCore library (OrderProcess.swift).
ServiceHost.main(name: ServiceName.order, build: OrderProcess.build)
