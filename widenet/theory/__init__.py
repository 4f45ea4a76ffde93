"""Exact and numerical theory of wide-network training dynamics."""
