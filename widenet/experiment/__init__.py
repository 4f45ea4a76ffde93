"""Finite-width experiments: the shared trainer, and sweeps shared over processes and hosts."""

from . import distributed, train

__all__ = ["train", "distributed"]
