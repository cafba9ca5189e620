"""The health domain: liveness and readiness of the process and what it depends on."""
