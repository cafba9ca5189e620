"""The audit domain: an append-only record of security events, read by administrators."""
