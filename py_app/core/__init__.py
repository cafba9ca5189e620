"""Shared kernel: domain errors and ports, pure Python with no framework imports."""
