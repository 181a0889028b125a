"""Contractions of a whole-bus numba kernel computed as matrix products by BLAS, for
`emit.numba_loops` (docs/numba.md).

A contraction whose operands are a weight (an input read whole, one row for every point)
and a row per point, or whose target is the gradient of such a weight, is a matrix
product (`np.dot`) over the chunk's points where the product is large enough
(`_GEMM_FROM` multiplications); the kernel keeps its loops beside it for the other
cases, and in the interpreter (`_BLAS` false). `MatrixProducts` is mixed into
`NumbaLoopsWriter`, whose buffers it reads (`storage`, `rows`, `each`, `shared`, `outer`).
"""

from __future__ import annotations

from ..indexed.ir import ADJOINT, Access, Map


class MatrixProducts:
    """The writes of a map that are matrix products, as lines of a kernel."""

    def contractions(self, m: Map) -> dict[int, tuple[str, list[str], int, str]]:
        """The writes of `m` that are matrix products: per write, the line computing it, the
        conditions it needs at run time, and its multiplications per point."""
        if len(m.domain) != 2 or any(a.start for a in m.domain):
            return {}
        found = {}
        for k, ((_, node), w) in enumerate(zip(m.body.outputs, m.writes)):
            made = self.product(m, node, w)
            if made is not None:
                found[k] = made
        return found

    def whole(self, access: Access, m: Map) -> bool:
        """Whether `access` takes its whole buffer, a variable an axis, each once."""
        if access.name is None:
            return False
        axes = {a.var: a for a in m.domain}
        shape = self.f.plan.shape(access.name)
        if len(access.vars) != len(shape):
            return False
        return all(v is not None and a == 1 and c == 0 and axes[v].size == n
                   for (v, a, c), n in zip(access.index, shape))

    def product(self, m: Map, node: int, w) -> tuple[str, list[str], int, str] | None:
        """Write `w` of value `node` as a matrix product, where it is one (see the module
        docstring): the line adding it into its target, the conditions it needs, its
        multiplications per point, the product itself; or None."""
        nodes = m.body.nodes
        if not w.add or nodes[node].op != "mul":
            return None
        reads = []
        for a in nodes[node].args:
            if nodes[a].op != "input":
                return None
            reads.append(m.reads[int(nodes[a].attr[1:-1])])
        if not all(self.whole(r, m) for r in reads) or not self.whole(w.target, m):
            return None
        plan = self.f.plan
        rows = "(stop - start)"
        n = {a.var: a.size for a in m.domain}
        weights = [r for r in reads if len(r.vars) == 2 and plan.buffers[r.name].role == "input"]
        vectors = [r for r in reads if len(r.vars) == 1]
        target = w.target
        if len(target.vars) == 1 and len(weights) == 1 and len(vectors) == 1:
            (t,), (s,) = target.vars, vectors[0].vars
            weight = weights[0]
            if s == t or set(weight.vars) != {s, t}:
                return None
            ns, nt = n[s], n[t]
            matrix = self.rows(weight.name)
            matrix = (f"{matrix}.reshape(({ns}, {nt}))" if weight.vars == (s, t)
                      else f"{matrix}.reshape(({nt}, {ns})).T")
            operand, more = self.chunk_rows(vectors[0].name, ns)
            out, also = self.chunk_rows(target.name, nt, write=True)
            if operand is None or out is None:
                return None
            how = "_put" if w in self.outer(m)[1] else "_add"
            self.helpers.add(how)
            product = f"np.dot({operand}.reshape(({rows}, {ns})), {matrix})"
            return (f"{how}({out}, 0, {product})", [f"len({self.rows(weight.name)}) == {ns * nt}", *more, *also],
                    ns * nt, product)
        weight = target.name[1:] if target.name.startswith(ADJOINT) else None
        if len(target.vars) == 2 and len(vectors) == 2 and weight in plan.inputs and target.name in self.shared:
            t1, t2 = target.vars
            by_var = {r.vars[0]: r for r in vectors}
            if set(by_var) != {t1, t2}:
                return None
            first, more1 = self.chunk_rows(by_var[t1].name, n[t1])
            second, more2 = self.chunk_rows(by_var[t2].name, n[t2])
            if first is None or second is None:
                return None
            self.helpers.add("_add")
            product = f"np.dot({first}.reshape(({rows}, {n[t1]})).T, {second}.reshape(({rows}, {n[t2]})))"
            return (f"_add({self.rows(target.name)}, chunk * {n[t1] * n[t2]}, {product})",
                    [f"len({self.rows(weight)}) == {n[t1] * n[t2]}", *more1, *more2], n[t1] * n[t2], product)
        return None

    def chunk_rows(self, name: str, size: int, write: bool = False) -> tuple[str | None, list[str]]:
        """The rows of the chunk's points of a one-axis buffer, its array or a slice of it,
        and the conditions for there being a row per point; None where there may not be."""
        kind = self.storage(name)
        rows = self.rows(name)
        if kind == "local":
            return rows, []
        if kind == "input":
            if write:
                return None, []
            return f"{rows}[start * {size}:stop * {size}]", [f"({self.each(name)} or B == 1)"]
        return f"{rows}[start * {size}:stop * {size}]", [self.each(name)] if name in self.shared else []
