"""Named tolerances shared by the tests (float64 throughout)."""

# closed form vs an independent high-precision route (mpmath quadrature, diffrax at rtol 1e-13)
THEORY_RTOL = 1e-10
# the special function itself against 30-digit mpmath
SPECIAL_RTOL = 1e-13
# jit vs no-jit, vmap vs loop: identical algorithms, only op fusion differs
SAME_ALGORITHM_RTOL = 1e-12


def autol2_reference(measurements, *, initial, factor, refractory, every):
    """Algorithm 1 of the L2 paper's SM E, transcribed loop by loop (error compared with min_error,
    minima updated with the previous measurement only when no decay happened, as NOTES.md says)."""
    min_loss = min_error = prev_loss = prev_error = float("inf")
    min_step, l2, out = 0.0, initial, []
    for i, (loss, error) in enumerate(measurements):
        t = i * every
        increases = (loss > min_loss and prev_loss > min_loss) or (error > min_error and prev_error > min_error)
        if increases and t > min_step:
            l2 = l2 / factor
            min_step = refractory / l2 + t
        else:
            min_loss, min_error = min(prev_loss, min_loss), min(prev_error, min_error)
        prev_loss, prev_error = loss, error
        out.append(l2)
    return out
