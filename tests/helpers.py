"""Named tolerances shared by the tests (float64 throughout)."""

# closed form vs an independent high-precision route (mpmath quadrature, diffrax at rtol 1e-13)
THEORY_RTOL = 1e-10
# the special function itself against 30-digit mpmath
SPECIAL_RTOL = 1e-13
# jit vs no-jit, vmap vs loop: identical algorithms, only op fusion differs
SAME_ALGORITHM_RTOL = 1e-12
