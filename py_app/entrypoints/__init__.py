"""Transports and process runners: REST (Litestar), gRPC (grpc.aio), the CLI, the server processes."""
