"""Adapters shared by the domains: database, security (the only importer of the Rust core), cache."""
