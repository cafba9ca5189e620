"""The auth domain: sessions (refresh-token families), access tokens, login, logout."""
