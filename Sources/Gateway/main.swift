import GatewayCore

// Gateway: a short main; the HTTP routes, sessions and wiring live in the GatewayCore library.
GatewayProcess.main()
