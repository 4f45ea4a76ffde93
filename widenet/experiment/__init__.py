"""Finite-width experiments: the shared trainer and resumable sweeps."""
