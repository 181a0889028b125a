"""A few well-known bus circuits against SymPy's symbolic derivatives, an oracle we did
not write: micrograd's MLP with its max-margin loss, Rosenbrock's function, softmax
with its cross-entropy, a matrix product, a layer normalization with GELU (`mean`, `erf`,
`erfc`, `log1p`, `expm1`). Each output is written here as a SymPy
expression of the input elements; the generated module's values, and its gradients
under random seeds on every output element, must agree at random points."""

from __future__ import annotations

import math
import types
from itertools import product

import numpy as np
import pytest
import sympy

import circuitc
from circuitc import api

MLP = """\
size n = 16
input x[2], y
input W1[n, 2], b1[n], W2[n, n], b2[n], w3[n], c
h1[i] = relu(sum(W1[i, j] * x[j] for j) + b1[i])
h2[i] = relu(sum(W2[i, j] * h1[j] for j) + b2[i])
score = sum(w3[i] * h2[i] for i) + c
loss = relu(1 - y * score)
output loss, score
"""

ROSENBROCK = """\
size n = 5
input x[n]
f = sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i)
"""

SOFTMAX = """\
size k = 4
input z[k], y[k]
lse = logsumexp(z[i] for i)
p[i] = exp(z[i] - lse)
loss = lse - sum(y[i] * z[i] for i)
output loss, p
"""

MATMUL = """\
size n = 2
size m = n + 1
input A[n, m], B[m, 2]
C[i, j] = sum(A[i, k] * B[k, j] for k)
norm = sqrt(sum(C[i, j] ** 2 for i, j))
output C, norm
"""

LAYERNORM = """\
size k = 4
input x[k], g[k]
m = mean(x[i] for i)
v = mean((x[i] - m) ** 2 for i)
y[i] = g[i] * (x[i] - m) / sqrt(v + 0.001)
a[i] = 0.5 * y[i] * (1 + erf(y[i] / sqrt(2)))
tails = mean(0.5 * erfc(-x[i] / sqrt(2)) + log1p(x[i] * x[i]) + expm1(g[i]) for i)
pairs = mean(x[i] * g[j] for i, j in range(1, 4))
output a, tails, pairs
"""


def _symbols(name: str, shape) -> np.ndarray:
    """The elements of a bus as SymPy symbols, in an array of its shape."""
    flat = [sympy.Symbol("_".join([name, *map(str, k)]), real=True)
            for k in product(*map(range, shape))]
    return np.array(flat, dtype=object).reshape(shape)


def relu(e):
    return sympy.Max(e, 0)


def _mlp(n):
    x, y = _symbols("x", (2,)), sympy.Symbol("y", real=True)
    W1, b1, W2, b2 = _symbols("W1", (n, 2)), _symbols("b1", (n,)), _symbols("W2", (n, n)), \
        _symbols("b2", (n,))
    w3, c = _symbols("w3", (n,)), sympy.Symbol("c", real=True)
    h1 = [relu(sum(W1[i, j] * x[j] for j in range(2)) + b1[i]) for i in range(n)]
    h2 = [relu(sum(W2[i, j] * h1[j] for j in range(n)) + b2[i]) for i in range(n)]
    score = sum(w3[i] * h2[i] for i in range(n)) + c
    inputs = {"x": x, "y": y, "W1": W1, "b1": b1, "W2": W2, "b2": b2, "w3": w3, "c": c}
    return inputs, {"loss": relu(1 - y * score), "score": score}


def _rosenbrock(n):
    x = _symbols("x", (n,))
    f = sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(n - 1))
    return {"x": x}, {"f": f}


def _softmax(k):
    z, y = _symbols("z", (k,)), _symbols("y", (k,))
    lse = sympy.log(sum(sympy.exp(z[i]) for i in range(k)))
    p = np.array([sympy.exp(z[i]) / sum(sympy.exp(z[j]) for j in range(k)) for i in range(k)])
    return {"z": z, "y": y}, {"loss": lse - sum(y[i] * z[i] for i in range(k)), "p": p}


def _matmul(n):
    A, B = _symbols("A", (n, n + 1)), _symbols("B", (n + 1, 2))
    C = A.dot(B)
    return {"A": A, "B": B}, {"C": C, "norm": sympy.sqrt(sum(e ** 2 for e in C.flat))}


def _layernorm(k):
    x, g = _symbols("x", (k,)), _symbols("g", (k,))
    m = sum(x) / k
    v = sum((x[i] - m) ** 2 for i in range(k)) / k
    y = [g[i] * (x[i] - m) / sympy.sqrt(v + sympy.Rational(1, 1000)) for i in range(k)]
    a = np.array([y[i] / 2 * (1 + sympy.erf(y[i] / sympy.sqrt(2))) for i in range(k)])
    tails = sum(sympy.erfc(-x[i] / sympy.sqrt(2)) / 2 + sympy.log(1 + x[i] ** 2)
                + sympy.exp(g[i]) - 1 for i in range(k)) / k
    pairs = sum(x[i] * g[j] for i in range(1, 4) for j in range(1, 4)) / 9
    return {"x": x, "g": g}, {"a": a, "tails": tails, "pairs": pairs}


CASES = [
    pytest.param(MLP, {"n": 3}, lambda: _mlp(3), id="mlp n=3"),
    pytest.param(ROSENBROCK, {}, lambda: _rosenbrock(5), id="rosenbrock"),
    pytest.param(SOFTMAX, {}, lambda: _softmax(4), id="softmax cross-entropy"),
    pytest.param(MATMUL, {}, lambda: _matmul(2), id="matrix product"),
    pytest.param(LAYERNORM, {}, lambda: _layernorm(4), id="layer normalization, GELU"),
]


# Each target, its whole-bus code (loops, for python, at any size) and its code written
# out element by element.
FORMS = ["python", "python elements", "numpy", "numpy elements"]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(("source", "sizes", "model"), CASES)
def test_gradients_agree_with_sympy(source, sizes, model, form, monkeypatch):
    target, _, elements = form.partition(" ")
    monkeypatch.setattr(api, "LOOPS_FROM", 0)
    module = _load(source, sizes, target, elements=bool(elements))
    inputs, outputs = model()
    assert [module.SHAPES[name] for name in inputs] == [np.shape(v) for v in inputs.values()]
    rng = np.random.default_rng(7)
    for _ in range(2):
        point = {name: rng.uniform(-1.5, 1.5, np.shape(v)) for name, v in inputs.items()}
        seeds = {name: rng.normal(size=np.shape(e)) for name, e in outputs.items()}
        subs = {s: sympy.Float(float(a), 30) for name in inputs
                for s, a in zip(np.ravel(inputs[name]), np.ravel(point[name]))}
        # The combination backward() differentiates: sum of seed * output element.
        total = sum(float(s) * e for name in outputs
                    for s, e in zip(np.ravel(seeds[name]), np.ravel(outputs[name])))
        value, grads = module.backward(*(point[n].tolist() for n in module.INPUTS),
                                       *(seeds[n].tolist() for n in module.OUTPUTS))
        value = value if len(module.OUTPUTS) > 1 else (value,)
        for name, got in zip(module.OUTPUTS, value):
            want = [float(sympy.sympify(e).xreplace(subs)) for e in np.ravel(outputs[name])]
            assert np.shape(got) == np.shape(outputs[name])
            assert np.allclose(np.ravel(np.array(got, dtype=float)), want, rtol=1e-12,
                               atol=1e-12)
        for name, got in zip(module.WRT, grads):
            want = [float(sympy.diff(total, s).xreplace(subs)) for s in np.ravel(inputs[name])]
            assert np.shape(got) == np.shape(inputs[name])
            assert np.allclose(np.ravel(np.array(got, dtype=float)), want, rtol=1e-10,
                               atol=1e-12), name


def _load(source: str, sizes, target: str = "python", **options):
    module = types.ModuleType("circuit")
    text = circuitc.compile_source(source, "c.circ", target, sizes=sizes, **options)
    exec(compile(text, "c.py", "exec"), module.__dict__)  # noqa: S102
    return module


def test_the_mlp_of_the_language_page_has_the_shapes_it_declares():
    module = _load(MLP, {})
    assert module.SHAPES["W2"] == (16, 16)
    assert math.isfinite(module.forward(*(0.1 for _ in module.INPUTS))[0])
