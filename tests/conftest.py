"""Test configuration: float64 and strict rank promotion (the library itself never flips jax config)."""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
