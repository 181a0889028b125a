"""Generated modules seen element by element, and what a module's functions return.

A module with buses takes and returns whole buses (nested lists, or arrays); `Elements`
shows it with one number per element instead, which `evaluate`, the verifier and
`circuitc step` work on. `outputs_of`, `gradient_of` and `hessian_of` read what a
module's `forward`, `backward` and `hessian` return, in `OUTPUTS` and `WRT` order.
"""

from __future__ import annotations

import math
import types
from collections.abc import Sequence

from .graph import elements


class Elements:
    """A module whose buses are seen element by element: what `evaluate`, the verifier
    and `circuitc step` work on.

    `INPUTS`, `OUTPUTS`, `WRT` and `DEFAULTS` name numbers: scalars, and each bus's
    elements in row-major order (`x[0]`, `W[1,0]`); `forward(*inputs)` and
    `backward(*inputs, *seeds)` take one number per input element (and per output
    element's seed) and return one per output element and gradient element, in
    `OUTPUTS` and `WRT` order. `elementwise(module)` makes one, or returns a module
    without buses as it is, since that already is one.
    """

    def __init__(self, module: types.ModuleType):
        self.module = module
        self.shapes = {name: tuple(shape) for name, shape in module.SHAPES.items()}
        self.INPUTS = self._elements(module.INPUTS)
        self.OUTPUTS = self._elements(module.OUTPUTS)
        self.WRT = self._elements(module.WRT)
        self.DEFAULTS = {e: v for name, value in module.DEFAULTS.items()
                         for e, v in zip(self._elements([name]), self._flat(value, name))}
        # `hessian` and `hvp` only where the module has them, so that `hasattr` tells.
        if hasattr(module, "hessian"):
            self.hessian = self._hessian
        if hasattr(module, "hvp"):
            self.hvp = self._hvp

    def __getattr__(self, name: str):  # anything else, `__file__` included: the module's
        return getattr(self.module, name)

    def _elements(self, names) -> tuple[str, ...]:
        return tuple(e for name in names for e in elements(name, self.shapes[name]))

    def _flat(self, value, name: str) -> list:
        """A bus value as its elements (a number as itself)."""
        if hasattr(value, "tolist"):
            value = value.tolist()
        values = [value]
        for _ in self.shapes[name]:
            values = [x for row in values for x in row]
        return values

    def _per_name(self, flat, names) -> list:
        """Flat element values as one value per name in `names` (nested lists for a bus)."""
        values, k = [], 0
        for name in names:
            shape = self.shapes[name]
            count = math.prod(shape)
            value = list(flat[k:k + count])
            for n in reversed(shape[1:]):
                value = [value[j:j + n] for j in range(0, len(value), n)]
            values.append(value if shape else flat[k])
            k += count
        return values

    def _outputs(self, value) -> list:
        value = outputs_of(self.module, value)
        return [x for name, v in zip(self.module.OUTPUTS, value) for x in self._flat(v, name)]

    def forward(self, *inputs):
        outputs = self._outputs(self.module.forward(*self._per_name(inputs, self.module.INPUTS)))
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def backward(self, *args):
        return self._seeded(self.module.backward, args)

    def _hessian(self, *args):
        """`(value, grads, H)`, `H`'s rows and columns the elements of `WRT`."""
        return self._seeded(self.module.hessian, args)

    def _hvp(self, *args):
        """`(value, grads, hv)` for `hvp(*inputs, *directions, *seeds)`, a direction per
        element of `WRT`."""
        n = len(self.INPUTS)
        directions = self._per_name(args[n:n + len(self.WRT)], self.module.WRT)
        value, grads, hv = self._seeded(
            lambda *a: self.module.hvp(*a[:len(self.module.INPUTS)], *directions,
                                       *a[len(self.module.INPUTS):]),
            args[:n] + args[n + len(self.WRT):])
        return value, grads, self._flat_by(hv, self.module.WRT)

    def _seeded(self, function, args):
        inputs, seeds = args[:len(self.INPUTS)], args[len(self.INPUTS):]
        value, grads, *rest = function(*self._per_name(inputs, self.module.INPUTS),
                                       *self._per_name(seeds, self.module.OUTPUTS))
        outputs = self._outputs(value)
        return (outputs[0] if len(outputs) == 1 else tuple(outputs),
                self._flat_by(grads, self.module.WRT), *rest)

    def _flat_by(self, values, names) -> tuple:
        """One value per name (a bus's nested), as one tuple of numbers."""
        return tuple(x for name, v in zip(names, values) for x in self._flat(v, name))


def elementwise(module: types.ModuleType):
    """`module` seen element by element (`Elements`); a module without buses is itself."""
    shapes = getattr(module, "SHAPES", {})
    return Elements(module) if any(shapes.values()) else module


def evaluate(module: types.ModuleType, at: dict[str, float]) -> tuple[dict, dict]:
    """Each output's value at `at`, and each output's gradient as `{output: {input: value}}`,
    for a module without buses or one seen element by element (`elementwise`).

    Works for every target (at a point, every target returns Python floats).
    """
    args = [at[name] for name in module.INPUTS]
    outputs = dict(zip(module.OUTPUTS, outputs_of(module, module.forward(*args))))
    gradients = {out: dict(zip(module.WRT, gradient_of(module, args, k)))
                 for k, out in enumerate(module.OUTPUTS)}
    return outputs, gradients


def outputs_of(module: types.ModuleType, value) -> tuple:
    """What `module.forward` returned, as a tuple in `OUTPUTS` order (a module with
    one output returns the value itself)."""
    return tuple(value) if len(module.OUTPUTS) > 1 else (value,)


def gradient_of(module: types.ModuleType, args: Sequence, k: int) -> tuple:
    """The gradient of output number `k` at `args` (`INPUTS` order), one value per input
    of `WRT`: `module.backward` seeded 1.0 on that output and 0.0 on the others."""
    seeds = [float(j == k) for j in range(len(module.OUTPUTS))]
    return tuple(module.backward(*args, *seeds)[1])


def hessian_of(module: types.ModuleType, args: Sequence, k: int) -> tuple:
    """The Hessian of output number `k` at `args` (`INPUTS` order), a tuple of rows over
    the elements of `WRT`: `module.hessian` seeded like `gradient_of`."""
    seeds = [float(j == k) for j in range(len(module.OUTPUTS))]
    return tuple(map(tuple, hessian_rows(module.hessian(*args, *seeds)[2])))


def hessian_rows(H) -> list:
    """The rows of the Hessian a module's `hessian` returned: the python target's tuple of
    rows as it is, the numba target's array as lists of Python floats."""
    return H.tolist() if hasattr(H, "tolist") else list(H)
