"""The users domain: accounts, profiles, roles and status."""
