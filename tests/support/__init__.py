"""Shared test helpers (no tests here). Test modules import from here, never from each other."""
