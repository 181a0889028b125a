"""The entry points of a whole-bus numba module at one point of floats and float64 arrays,
for `emit.numba_loops` (docs/numba.md): `_<name>`, which calls the kernel over a batch
of one point, and the Hessians made from `hvp` along each colour of its columns
(`_hvp_colours`, `_hessian_at`, `_sparse_hessian_at`, `hessian`, `sparse_hessian`).
`EntryPoints` is mixed into `NumbaLoopsWriter`, whose kernels' arrays it reads (`name`,
`result_of`, `products`).
"""

from __future__ import annotations

import math

from .frame import Function
from .numba import signature
from .text import LINE, tuple_display


class EntryPoints:
    """The compiled entry points at one point, as lines of a module."""

    def entry(self, f: Function, arrays, starts: list[str], checked: bool) -> None:
        """`_<name>`: the compiled entry point at one point of floats and float64 arrays. The
        numbers among its arguments and results are one array's elements, `numbers`, which
        is made at once (an array each would cost more than the kernel at small sizes)."""
        p = f.plan
        types, args, numbers, given = [], [], [], []
        for b in f.params:
            shape = p.shape(b)
            ident = self.name(b)
            if not shape:
                types.append("float64")
                args.append(f"numbers[{len(numbers)}:{len(numbers) + 1}]")
                given.append(f"    numbers[{len(numbers)}] = {ident}")
                numbers.append(ident)
            else:
                types.append(f"float64[{', '.join([':'] * (len(shape) - 1) + ['::1'])}]")
                args.append(ident if len(shape) == 1 else f"{ident}.reshape({math.prod(shape)})")
        lines = ["", "", f"@numba.njit({signature(types)}, cache=True, error_model=\"numpy\")",
                 f"def _{f.name}({', '.join(self.name(b) for b in f.params)}):",
                 f'    """{f.name} at one point of floats and float64 arrays, compiled'
                 + ('; FloatingPointError where a gate\'s value is not finite."""' if checked else '."""'),
                 "    B = np.int64(1)  # not the literal 1, for which numba compiles the kernel again"]
        made, values = [], {}
        for (b, rows), start in zip(arrays, starts):
            size = math.prod(p.shape(b))
            ident = self.name(b) if rows == self.result_of.get(b) else rows
            if not p.shape(b):
                values[b] = f"numbers[{len(numbers)}]"
                made.append(f"numbers[{len(numbers)}:{len(numbers) + 1}]")
                if start != "None":
                    given.append(f"    numbers[{len(numbers)}] = {start}")
                numbers.append(ident)
                continue
            made.append(ident)
            values[b] = ident if len(p.shape(b)) == 1 else f"{ident}.reshape({p.shape(b)!r})"
            new = {"None": f"np.empty({size})", "0.0": f"np.zeros({size})"}.get(start, f"_full({size}, -0.0)")
            lines.append(f"    {ident} = {new}")
        if numbers:
            lines.append(f"    numbers = np.empty({len(numbers)})  # {', '.join(numbers)}")
            lines += given
        if checked:
            lines.append("    bad = np.zeros(1, np.bool_)")
        names = args + made + (["bad"] if checked else [])
        call = f"    _{f.name}_points(B, B, B - B, B, {', '.join(names)})"
        if len(call) > LINE:
            call = f"    _{f.name}_points(\n        B, B, B - B, B,\n" + "".join(
                f"        {a},\n" for a in names) + "    )"
        lines += call.split("\n")
        if checked:
            lines += ["    if bad[0]:", '        raise FloatingPointError("not finite")']

        values = [values[b] for b, _ in arrays]
        n = len(f.values)
        k = n + len(f.grads)
        groups: list = [values[0] if n == 1 else values[:n]]
        if f.name in ("backward", "hvp"):
            groups.append(values[n:k])
        if f.name == "jvp":
            groups.append(values[n] if len(values) == n + 1 else values[n:])
        if f.name == "hvp":
            groups.append(values[k:])
        ret = "    return " + ", ".join(g if isinstance(g, str) else tuple_display(g) if g else "()"
                                     for g in groups)
        if len(ret) > LINE:
            ret = "    return " + ", ".join(g if isinstance(g, str) else tuple_display(g, "    ") if g else "()"
                                         for g in groups)
        lines += ret.split("\n")
        self.lines += lines

    def hessians(self) -> list[str]:
        """`hessian` and `sparse_hessian`, each compiled at one point of floats and float64
        arrays (`_hessian_at`, `_sparse_hessian_at`) from `_hvp_colours`, the `hvp` kernel
        along the sum of each colour's unit directions, and otherwise (a batch, other
        types) from `hvp` by `_dense_hessian` and `_sparse_hessian`; and the module's
        `__getattr__` that lists `HESSIAN_PATTERN`."""
        f, arrays, starts, checked = self.products
        p = f.plan
        n = sum(math.prod(p.shape(b)) for b in p.wrt)
        inputs = [self.name(b) for b in p.inputs]
        seeds = [self.name(p.seeds[o]) for o in p.outputs]
        types, args, numbers, given = [], [], [], []

        def number(value: str) -> str:
            given.append(f"    numbers[{len(numbers)}] = {value}")
            numbers.append(value)
            return f"numbers[{len(numbers) - 1}:{len(numbers)}]"
        for b in p.inputs + tuple(p.seeds[o] for o in p.outputs):
            shape, ident = p.shape(b), self.name(b)
            types.append(f"float64[{', '.join([':'] * (len(shape) - 1) + ['::1'])}]" if shape else "float64")
            args.append(number(ident) if not shape else
                        ident if len(shape) == 1 else f"{ident}.reshape({math.prod(shape)})")
        directions = []
        lines = ["", "", "@_jit",
                 f"def _hvp_colours({', '.join(inputs + seeds)}, colour, count):",
                 ('    """hvp at one point along the sum of each colour\'s unit directions: the value, '
                 'the\n    gradient, and the products, a row per colour over the elements of WRT."""'),
                 "    B = np.int64(count)",
                 "    one = np.int64(1)  # not the literal 1, for which numba compiles the kernel again"]
        k = 0
        for name in p.wrt:
            size = math.prod(p.shape(name))
            direction = self.name(p.directions[name])
            directions.append(direction)
            lines += [f"    {direction} = np.zeros(count * {size})",
                      f"    for k in range({size}):",
                      f"        {direction}[colour[{f'{k} + ' if k else ''}k] * {size} + k] = 1.0"]
            k += size
        made, values = [], {}
        for (b, rows), start in zip(arrays, starts):
            size = math.prod(p.shape(b))
            ident = self.name(b) if rows == self.result_of.get(b) else rows
            made.append(ident)
            new = "np.empty" if start == "None" else "np.zeros"
            count = "count" if size == 1 else f"count * {size}"
            lines.append(f"    {ident} = {new}({count})" if start != "-0.0" else
                         f"    {ident} = _full({count}, -0.0)")
            values[b] = (ident, p.shape(b))
        if numbers:
            lines.append(f"    numbers = np.empty({len(numbers)})  # {', '.join(numbers)}")
            lines += given
        lines += ["    bad = np.zeros(count, np.bool_)"] if checked else []
        names = args[:len(inputs)] + directions + args[len(inputs):] + made + (["bad"] if checked else [])
        lines += ["    _hvp_points(", "        B, one, one - one, one,",
                  *(f"        {a}," for a in names), "    )"]
        if checked:
            lines += ["    if bad.any():", '        raise FloatingPointError("not finite")']
        lines.append(f"    products = np.empty((count, {n}))")
        k = 0
        for (name, b) in f.tangents:
            ident, shape = values[b]
            size = math.prod(shape)
            lines.append(f"    products[:, {k}:{k + size}] = {ident}.reshape((count, {size}))")
            k += size

        def value(b: str) -> str:
            ident, shape = values[b]
            size = math.prod(shape)
            return f"{ident}[0]" if not shape else f"{ident}[:{size}]" if len(shape) == 1 else \
                f"{ident}[:{size}].reshape({shape!r})"
        outs = [value(b) for b in f.values]
        grads = [value(b) for _, b in f.grads]
        ret = f"    return {outs[0] if len(outs) == 1 else tuple_display(outs)}, {tuple_display(grads) if grads else '()'}, products"
        lines += ret.split("\n") if len(ret) <= LINE else [
            (f"    return {outs[0] if len(outs) == 1 else tuple_display(outs, '    ')}, "
            f"{tuple_display(grads, '    ') if grads else '()'}, products")]
        signature_types = signature(types + ["int64[:, ::1]", "int64[::1]", "int64"])
        params = ", ".join(inputs + seeds)
        for entry, doc, result in (
                ("_hessian_at", "the Hessian as an array", [
                    f"    H = np.zeros(({n}, {n}))",
                    "    for at in range(len(pattern)):",
                    "        j, k = pattern[at, 0], pattern[at, 1]",
                    "        H[j, k] = H[k, j] = products[colour[k], j]",
                    "    return value, grads, H"]),
                ("_sparse_hessian_at", "its entries at the places of HESSIAN_PATTERN", [
                    "    entries = np.empty(len(pattern))",
                    "    for at in range(len(pattern)):",
                    "        entries[at] = products[colour[pattern[at, 1]], pattern[at, 0]]",
                    "    return value, grads, entries"])):
            lines += ["", "", f'@numba.njit({signature_types}, cache=True, error_model="numpy")',
                      f"def {entry}({params}, pattern, colour, count):",
                      f'    """(value, grads, {doc}) at one point of floats and float64 arrays, compiled."""',
                      f"    value, grads, products = _hvp_colours({params}, colour, count)",
                      *result]
        seed_sum = " + ".join(f"sum({s}*{o})" if p.shape(o) else f"{s}*{o}" for s, o in zip(seeds, p.outputs))
        outs_doc = f"({', '.join(p.outputs)})" if len(p.outputs) > 1 else p.outputs[0]
        head = f"({', '.join(inputs + [s + '=1.0' for s in seeds])}):"
        for name, entry, helper, doc in (
                ("sparse_hessian", "_sparse_hessian_at", "_sparse_hessian",
                 (f"Return ({outs_doc}, grads, entries), entries[k] = the entry of the Hessian of "
                 f"{seed_sum} at HESSIAN_PATTERN[k]: one hvp per colour of its columns.")),
                ("hessian", "_hessian_at", "_dense_hessian",
                 (f"Return ({outs_doc}, grads, H), the Hessian of {seed_sum} as an array over the "
                 "elements of WRT, from sparse_hessian."))):
            lines += ["", "", f"def {name}{head}", f'    """{doc}"""',
                      "    pattern, colour, count = _hessian_layout()",
                      "    try:",
                      f"        return {entry}({params}, pattern, colour, max(count, 1))",
                      "    except (TypeError, FloatingPointError):  # arrays, other types; a value not finite",
                      f"        return {helper}(hvp, {tuple_display(inputs)}, {tuple_display(seeds)})"]
        lines += ["", "", "def __getattr__(name):",
                  '    """HESSIAN_PATTERN, listed from HESSIAN_PIECES when first asked for."""',
                  '    if name == "HESSIAN_PATTERN":',
                  "        return _hessian_layout()[0]",
                  '    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")']
        return lines
