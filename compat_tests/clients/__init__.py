"""Helpers for the compatibility tests: drivers for each stock client, external tools (kcat,
node), a frame-aware TCP proxy and independent re-implementations of client partitioners."""
