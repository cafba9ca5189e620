"""Authentication use cases: signing in and out and the sessions in between (``AuthService``), and
account recovery by mail (``RecoveryService``)."""

from py_app.auth.services._recovery import BAD_TOKEN, RecoveryLimits, RecoveryService
from py_app.auth.services._sessions import BAD_CREDENTIALS, BAD_REFRESH, BAD_SESSION, AuthLimits, AuthService
from py_app.auth.services._throttle import LoginPolicies, LoginThrottle

__all__ = [
    "BAD_CREDENTIALS",
    "BAD_REFRESH",
    "BAD_SESSION",
    "BAD_TOKEN",
    "AuthLimits",
    "AuthService",
    "LoginPolicies",
    "LoginThrottle",
    "RecoveryLimits",
    "RecoveryService",
]
