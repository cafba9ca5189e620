"""Arcana: self-hosted user management and authentication, REST and gRPC over one service layer."""

__version__ = "0.1.0"
