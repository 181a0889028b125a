"""Which entries of a plan's Hessian can be non-zero, from its index patterns.

The Hessian-vector product of a plan (`ad.hvp`) is forward mode over its gradient:
entry `(j, k)` can be non-zero exactly where the tangent of input element `j`'s adjoint
depends on the direction of input element `k`. `hessian_pattern(plan)` follows that
dependence through the stages of the `hvp` plan, as the written-out module's
`HESSIAN_PATTERN` follows it through the gates of its graph, and agrees with it entry
for entry (except where the written-out optimizer simplifies an element on its own, as
`x[i] ** i` at `i = 1`).

Dependence is kept as sets of pairs `(element of a buffer, element of a direction)`,
each a `Piece`: the pairs `(b(p), v(p))` for every point `p` of a box of integer
parameters, each coordinate an integer-affine function of one parameter. A stage
composes its reads' pieces with its accesses: a read of `x[i + 1]` from a piece
`(x[q], ⋅x[q])` meets where `i + 1 = q`, a linear equation in two parameters, solved
over the integers (`_System`). The pieces of a banded or block pattern are a few per
stage whatever the sizes of the buses, so the pattern costs time independent of the
element count; only its listing (in the module, `HESSIAN_PATTERN`) grows with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .ad import hvp
from .ir import Access, Fold, Map, Plan

Coord = tuple[int | None, int, int]  # (parameter, coefficient, constant); parameter None: constant


@dataclass(frozen=True)
class Piece:
    """The pairs `(b(p), v(p))` of a buffer's elements and direction `direction`'s elements,
    for every `p` with `0 <= p[i] < sizes[i]`, except the points where, for one group of
    `distinct`, each pair of coordinates is equal."""

    sizes: tuple[int, ...]
    b: tuple[Coord, ...]
    direction: str
    v: tuple[Coord, ...]
    distinct: tuple[tuple[tuple[Coord, Coord], ...], ...] = ()


def hessian_pattern(plan: Plan) -> list[tuple[tuple[int, ...], tuple, tuple, tuple]]:
    """The places `(row, column)`, row <= column, of the Hessian of `sum(∂out * out)` with
    respect to the elements of `WRT` (buses in row-major order) that can be non-zero, as
    flat pieces `(sizes, row, column, distinct)`: `row` and `column` as `(constant,
    coefficients)` over the parameters (`emit.hessian_helpers._pattern` lists them)."""
    second = hvp(plan)
    relations = dependence(second, {second.directions[n]: n for n in plan.wrt})
    offsets, strides, k = {}, {}, 0
    for name in plan.wrt:
        shape = plan.shape(name)
        offsets[name] = k
        strides[name] = [math.prod(shape[d + 1:]) for d in range(len(shape))]
        k += math.prod(shape)
    inputs = {b: n for n, b in second.directions.items()}
    flat = []
    for name, (_, buffer) in zip(plan.wrt, second.tangents):
        for piece in relations.get(buffer, ()):
            direction = inputs[piece.direction]
            row = _flat(piece.b, offsets[name], strides[name], len(piece.sizes))
            column = _flat(piece.v, offsets[direction], strides[direction], len(piece.sizes))
            distinct = tuple(tuple((_flat((a,), 0, [1], len(piece.sizes)),
                                    _flat((b,), 0, [1], len(piece.sizes))) for a, b in group)
                             for group in piece.distinct)
            flat.append((piece.sizes, row, column, distinct))
    return list(dict.fromkeys(flat))


def _flat(coords, offset: int, strides, n: int) -> tuple[int, tuple[int, ...]]:
    """The flat index `offset + sum(stride * coordinate)`, as (constant, coefficient per
    parameter)."""
    constant, coefficients = offset, [0] * n
    for (p, a, c), stride in zip(coords, strides):
        constant += stride * c
        if p is not None:
            coefficients[p] += stride * a
    return constant, tuple(coefficients)


def band(pieces) -> int | None:
    """How far from the diagonal the pattern of flat pieces lies, where each piece keeps
    one distance between row and column; None where one does not."""
    far = 0
    for _, (r0, rows), (c0, columns), distinct in pieces:
        if rows != columns or distinct:
            return None
        far = max(far, abs(c0 - r0))
    return far


# -- dependence through a plan --------------------------------------------------------


def dependence(plan: Plan, directions) -> dict[str, list[Piece]]:
    """For each tangent buffer of `plan`, the pieces of its dependence on the elements of
    the buffers `directions` names.

    A tangent of an adjoint can be non-zero only where the adjoint itself can: a term of
    the `hvp` plan that multiplies a tangent by an adjoint (`∂h[i] * ⋅x[i]`) counts only
    at the elements of the adjoint that some output reaches (its *support*, pieces of
    the adjoint's elements alone, followed from the seeds as dependence is from the
    directions)."""
    relations: dict[str, list[Piece]] = {}
    for name in directions:
        shape = plan.shape(name)
        coords = tuple((d, 1, 0) for d in range(len(shape)))
        relations[name] = [Piece(tuple(shape), coords, name, coords)]
    for name in plan.seeds.values():
        shape = plan.shape(name)
        relations[name] = [Piece(tuple(shape), tuple((d, 1, 0) for d in range(len(shape))), "", ())]
    for stage in plan.stages:
        for target, read, fresh, distinct, mask in _flows(stage, plan.buffers):
            for piece in relations.get(read.name, ()):
                for support in (relations.get(mask.name, ()) if mask else (None,)):
                    made = _compose(piece, stage.domain, read, target, fresh, distinct,
                                    support and (support, mask))
                    if made is not None:
                        found = relations.setdefault(target.name, [])
                        if made not in found:
                            found.append(made)
    return relations


def _flows(stage, buffers):
    """`(target, read, fresh, distinct, mask)` for each way a stage's write depends on a read
    of a tangent or an adjoint: `fresh`, the domain variables the read takes at every
    value (a fold's terms); `distinct`, whether they must differ from the write's own (the
    terms other than its own, `prod_except`); `mask`, an adjoint read the dependence is
    multiplied by (`_terms`)."""
    if isinstance(stage, Fold):
        over = tuple(a.var for a in stage.domain[len(stage.kept):])
        others = stage.kind.startswith("prod_except")
        for term in stage.terms:
            yield stage.target, term, over, others, None
        return
    m: Map = stage
    terms = _terms(m, buffers)
    for (_, node), w in zip(m.body.outputs, m.writes):
        free, pairs, adjoints = terms[node][1:]
        for k in sorted(free | adjoints):
            yield w.target, m.reads[k], (), False, None
        for k, a in sorted(pairs):
            yield w.target, m.reads[k], (), False, m.reads[a]


def _terms(m: Map, buffers) -> list[tuple[bool, frozenset, frozenset, frozenset]]:
    """For each node of a map's body, the kinds of its terms, as a polynomial in its reads
    would have them: (whether it has a term of neither tangents nor adjoints, the tangent
    reads of its terms without an adjoint, the (tangent, adjoint) reads of its terms with
    both, the adjoint reads of its terms without a tangent). A tangent of an adjoint
    (`⋅∂h`) is a tangent: where it is zero, its own dependence is empty."""
    out = []
    empty = frozenset()
    for node in m.body.nodes:
        if node.op == "input":
            k = int(node.attr[1:-1])
            name = m.reads[k].name
            kind = name and buffers[name].derivative
            if kind == "tangent":
                out.append((False, frozenset([k]), empty, empty))
            elif kind == "adjoint":
                out.append((False, empty, empty, frozenset([k])))
            else:
                out.append((True, empty, empty, empty))
        elif node.op == "const":
            out.append((True, empty, empty, empty))
        elif node.op in ("mul", "div"):
            (one, free, pairs, adj), (one2, free2, pairs2, adj2) = (out[a] for a in node.args)
            out.append((one and one2,
                        (free if one2 else empty) | (free2 if one else empty),
                        (pairs if one2 else empty) | (pairs2 if one else empty)
                        | frozenset((t, a) for t in free for a in adj2)
                        | frozenset((t, a) for t in free2 for a in adj),
                        (adj if one2 else empty) | (adj2 if one else empty)))
        else:  # linear in each operand, or of neither tangents nor adjoints
            parts = [out[a] for a in node.args]
            if node.op == "where":  # linear in its branches, the condition only chooses, and
                # a branch 0 (an adjoint's mask) is no term at all
                parts = [out[a] for a in node.args[1:] if m.body.nodes[a].op != "const"
                         or m.body.nodes[a].attr != 0.0]
            out.append((any(p[0] for p in parts), *(frozenset().union(*(p[i] for p in parts))
                                                    for i in (1, 2, 3))))
    return out


def _compose(piece: Piece, domain, read: Access, target: Access, fresh, distinct,
             mask=None) -> Piece | None:
    """The pairs (element of `target`, element of the direction) that `piece`, of the
    buffer `read` reads, gives through a stage over `domain`, where `mask` (a support
    piece and the adjoint read it is of) has the adjoint's element; None where there are
    none."""
    n = len(domain)
    index = {a.var: k for k, a in enumerate(domain)}
    again = {v: n + k for k, v in enumerate(a.var for a in domain if a.var in fresh)}
    shift = n + len(again)
    sizes = [a.size for a in domain] + [a.size for a in domain if a.var in fresh] + list(piece.sizes)

    def coord(v, a, c, variables) -> Coord:
        if v is None:
            return None, 0, c
        return variables[v], a, a * domain[index[v]].start + c

    def moved(c: Coord, by: int = shift) -> Coord:
        return c if c[0] is None else (c[0] + by, c[1], c[2])

    system = _System(sizes)
    for x, c in zip(read.index, piece.b):
        if not system.equate(coord(*x, {**index, **again}), moved(c)):
            return None
    if mask is not None:
        support, adjoint = mask
        by = len(system.sizes)
        system.sizes += support.sizes
        for x, c in zip(adjoint.index, support.b):
            if not system.equate(coord(*x, index), moved(c, by)):
                return None
    groups = [tuple((moved(a), moved(b)) for a, b in group) for group in piece.distinct]
    if distinct and again:
        groups.append(tuple(((again[v], 1, 0), (index[v], 1, 0)) for v in again))
    return system.piece(tuple(coord(*x, index) for x in target.index), piece.direction,
                        tuple(moved(c) for c in piece.v), groups)


class _System:
    """Integer parameters, each `0 <= p < size`, and the equations between affine forms of
    them met so far, kept solved: a parameter met by an equation is replaced by an affine
    form of a new one (or a constant)."""

    def __init__(self, sizes):
        self.sizes = list(sizes)
        self.solved: dict[int, Coord] = {}

    def value(self, c: Coord) -> Coord:
        p, a, k = c
        while p is not None and p in self.solved:
            q, m, j = self.solved[p]
            p, a, k = q, a * m, a * j + k
        return (None, 0, k) if p is None or a == 0 else (p, a, k)

    def fix(self, p: int, value: int) -> bool:
        if not 0 <= value < self.sizes[p]:
            return False
        self.solved[p] = (None, 0, value)
        return True

    def equate(self, x: Coord, y: Coord) -> bool:
        """Add the equation `x == y`; False where it has no solution in range."""
        (p, a, c), (q, g, e) = self.value(x), self.value(y)
        if p is None:
            (p, a, c), (q, g, e) = (q, g, e), (p, a, c)
        if p is None:
            return c == e
        if q is None:
            return (e - c) % a == 0 and self.fix(p, (e - c) // a)
        if p == q:
            if a == g:
                return c == e
            return (e - c) % (a - g) == 0 and self.fix(p, (e - c) // (a - g))
        # a p - g q = e - c: p = p0 + (-g/d) s, q = q0 - (a/d) s over the integers s.
        d, x0, y0 = _gcd(a, -g)
        if (e - c) % d:
            return False
        f = (e - c) // d
        p0, q0, mp, mq = x0 * f, y0 * f, -g // d, -(a // d)
        lo, hi = _within(p0, mp, self.sizes[p])
        lo2, hi2 = _within(q0, mq, self.sizes[q])
        lo, hi = max(lo, lo2), min(hi, hi2)
        if lo >= hi:
            return False
        s = len(self.sizes)
        self.sizes.append(hi - lo)
        self.solved[p] = (s, mp, p0 + mp * lo)
        self.solved[q] = (s, mq, q0 + mq * lo)
        return True

    def piece(self, b, direction: str, v, groups) -> Piece | None:
        """The piece of the pairs `(b, v)` at the solutions, parameters renumbered by first
        use; None where a group of `distinct` always holds."""
        b, v = tuple(map(self.value, b)), tuple(map(self.value, v))
        kept = []
        for group in groups:
            pairs = [(self.value(x), self.value(y)) for x, y in group]
            if any(x[0] is None and y[0] is None and x != y for x, y in pairs):
                continue  # never all equal
            pairs = [(x, y) for x, y in pairs if x != y]
            if not pairs:
                return None  # always all equal: no point is left
            kept.append(tuple(pairs))
        used: dict[int, int] = {}
        for p, _, _ in (*b, *v, *(c for group in kept for pair in group for c in pair)):
            if p is not None:
                used.setdefault(p, len(used))

        def renamed(c: Coord) -> Coord:
            return c if c[0] is None else (used[c[0]], c[1], c[2])
        return Piece(tuple(self.sizes[p] for p in used), tuple(map(renamed, b)), direction,
                     tuple(map(renamed, v)),
                     tuple(tuple((renamed(x), renamed(y)) for x, y in g) for g in kept))


def _gcd(a: int, b: int) -> tuple[int, int, int]:
    """(d, x, y) with a x + b y = d = gcd(a, b) > 0."""
    x0, y0, x1, y1 = 1, 0, 0, 1
    while b:
        q, a, b = a // b, b, a % b
        x0, x1, y0, y1 = x1, x0 - q * x1, y1, y0 - q * y1
    return (a, x0, y0) if a > 0 else (-a, -x0, -y0)


def _within(k: int, m: int, n: int) -> tuple[int, int]:
    """The integers s with 0 <= k + m s < n (m != 0), as a range [lo, hi)."""
    if m > 0:
        return -(k // m), (n - 1 - k) // m + 1
    return -((n - 1 - k) // -m), k // -m + 1
