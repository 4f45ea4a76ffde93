"""Finite-width experiments: the shared trainer and resumable sweeps."""

from . import train

__all__ = ["train"]
