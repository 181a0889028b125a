"""The numpy target's erf and erfc: accuracy against Python's `math.erf` and `math.erfc`,
and time per call at 10^6 elements, against the alternatives NumPy allows.

    python benchmarks/erf.py            # 7 rounds
    python benchmarks/erf.py --quick    # 3 rounds

NumPy has no erf. A module may need nothing but NumPy, so the choice is between applying
`math.erf` per element (`np.frompyfunc`, `np.vectorize`: exactly `math`'s values, at a
Python call per element) and a vectorized approximation: `numpy_helpers._erf`, W. J.
Cody's rational approximations, as generated modules carry it. SciPy's `special.erf`
(C, vectorized) is shown for scale where SciPy is installed; modules cannot use it.

Accuracy: the largest and the mean error in units in the last place of `math`'s value,
over 10^6 points: uniform on [-6, 6] (where erf and erfc are not 0, 1 or 2) and on
[-30, 30] (the tails, erfc subnormal beyond 26.5 and 0 beyond 27.2), and uniform in
magnitude on [1e-300, 1]. Times are this process's CPU time per call at 10^6 elements
drawn from N(0, 2²), the best of the rounds, each round running every contender in turn.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from circuitc.emit.numpy import ERRSTATE, HELPER_SOURCES

N = 10**6


def _module_erf():
    namespace = {"np": np}
    exec(HELPER_SOURCES["_erf"], namespace)  # noqa: S102
    return namespace["_erf"]


def contenders() -> dict[str, tuple]:
    """Each contender's name: its (erf, erfc) on a float64 array."""
    erf = _module_erf()
    per_erf, per_erfc = np.frompyfunc(math.erf, 1, 1), np.frompyfunc(math.erfc, 1, 1)
    found = {
        "numpy_helpers._erf (Cody, vectorized)": (erf, lambda x: erf(x, complement=True)),
        "np.frompyfunc(math.erf)": (lambda x: per_erf(x).astype(np.float64),
                                    lambda x: per_erfc(x).astype(np.float64)),
        "np.vectorize(math.erf)": (np.vectorize(math.erf, otypes=[float]),
                                   np.vectorize(math.erfc, otypes=[float])),
    }
    try:
        from scipy import special
    except ImportError:
        return found
    found["scipy.special.erf (not allowed in a module)"] = (special.erf, special.erfc)
    return found


def accuracy(erf, erfc) -> list[str]:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-6, 6, N // 2), rng.uniform(-30, 30, N // 4),
                        rng.choice((-1, 1), N // 4) * 10.0 ** rng.uniform(-300, 0, N // 4)])
    cells = []
    for f, reference in ((erf, math.erf), (erfc, math.erfc)):
        want = np.array([reference(v) for v in x.tolist()])
        with eval(ERRSTATE, {"np": np}):  # what generated code runs under
            got = f(x)
        ulps = np.abs(got - want) / np.spacing(np.abs(want))
        cells += [f"{ulps.max():.0f}", f"{ulps.mean():.3f}"]
    return cells


def timings(found: dict, rounds: int) -> dict[str, float]:
    x = np.random.default_rng(1).normal(0.0, 2.0, N)
    best = dict.fromkeys(found, math.inf)
    for _ in range(rounds):
        for name, (erf, _) in found.items():
            start = time.process_time()
            erf(x)
            best[name] = min(best[name], time.process_time() - start)
    return best


def main() -> None:
    rounds = 3 if "--quick" in sys.argv else 7
    found = contenders()
    best = timings(found, rounds)
    print("| contender | erf max ulp | erf mean ulp | erfc max ulp | erfc mean ulp "
          "| ms per 10^6 (erf) |")
    print("|---|---|---|---|---|---|")
    for name, (erf, erfc) in found.items():
        print(f"| {name} | {' | '.join(accuracy(erf, erfc))} | {best[name] * 1e3:.1f} |")


if __name__ == "__main__":
    main()
