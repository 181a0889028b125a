"""The analysis of a file with buses (`circuitc.shapes`), directly: sizes, shapes, the
range of each index variable where it is bound, what the whole-bus back end's choice reads
(`largest`), and the integer-affine index forms (`circuitc.affine`) it is built on."""

from __future__ import annotations

import pytest

from circuitc.affine import affine, index_text, value_at
from circuitc.errors import CircuitError
from circuitc.parse import parse
from circuitc.shapes import analyze
from circuitc.syntax import BusAssign, Reduce, walk_all


def analysis(text: str, sizes=None):
    return analyze(parse(text), sizes)


def ranges(a) -> dict[str, range]:
    """Each index variable's range, by its name (the tests' names are unique)."""
    return {name: r for (_, name), r in a.ranges.items()}


def test_a_file_without_buses_has_no_analysis():
    assert analysis("input x\nf = x * 2\n") is None
    with pytest.raises(CircuitError, match="-D n: the circuit declares no size of that name"):
        analysis("input x\nf = x\n", {"n": 3})


def test_sizes_are_computed_in_order_and_overridden():
    a = analysis("size m = 2 * n - 1\nsize n = 3\ninput x[m]\nf = sum(x[i] for i)\n")
    assert a.sizes == {"m": 5, "n": 3} and a.buses.sizes == a.sizes
    assert a.buses.shapes == {"x": (5,)}
    assert analysis("size m = 2 * n - 1\nsize n = 3\ninput x[m]\nf = x[0]\n", {"n": 10}).sizes == {
        "m": 19, "n": 10}
    with pytest.raises(CircuitError, match="sizes defined in a cycle: m -> n -> m"):
        analysis("size m = n\nsize n = m\ninput x[m]\nf = x[0]\n")


def test_ranges_are_inferred_from_every_access():
    a = analysis("size n = 5\ninput x[n], W[3, n]\n"
                 "d[i] = x[i + 1] - x[i]\n"                       # 0 <= i < 4
                 "h[k] = sum(W[k, j] * x[j] for j)\n"               # k < 3, j < 5
                 "s = sum(x[q] - x[q - 1] for q)\n"                 # a reduction may start later
                 "t = sum(x[2 * p] for p)\n"                        # 0 <= 2p < 5
                 "u = sum(x[r] for r in range(1, 3))\n")            # given: not inferred
    assert ranges(a) == {"i": range(4), "k": range(3), "j": range(5),
                         "q": range(1, 5), "p": range(3)}
    assert a.buses.shapes == {"x": (5,), "W": (3, 5), "d": (4,), "h": (3,)}
    assert set(a.buses.definitions) == {"d", "h"} and a.buses.definitions["h"].shape == (3,)


def test_ranges_are_kept_by_the_place_that_binds_them():
    statements = parse("size n = 4\ninput x[n]\nf = sum(x[i] for i) + sum(x[i + 1] for i)\n")
    a = analyze(statements)
    reductions = [e for e in walk_all(statements[-1].expr) if type(e) is Reduce]
    assert [a.ranges[r.span, "i"] for r in reductions] == [range(3), range(4)]


def test_definitions_are_analysed_after_the_buses_they_read():
    text = "size n = 3\ninput x[n]\ng[i] = h[i] * 2\nh[i] = x[i + 1]\nf = sum(g[i] for i)\n"
    a = analysis(text)
    assert a.buses.shapes["h"] == (2,) and a.buses.shapes["g"] == (2,)
    definition = next(s for s in parse(text) if type(s) is BusAssign and s.target.id == "g")
    assert a.ranges[definition.target.span, "i"] == range(2)


@pytest.mark.parametrize(("text", "message"), [
    ("size n = 3\ninput x[n], y[2]\nf = sum(x[i] * y[i] for i)\n",
     "'i' indexes 'x' (size 3) and 'y' (size 2): the sizes differ"),
    ("size n = 3\ninput x[n]\nd[i] = x[i] - x[i - 1]\n",
     "'x' would be read below index 0 when i = 0"),
    ("size n = 1\ninput x[n]\nf = sum(x[i + 1] for i)\n", "the range of 'i' is empty"),
    ("size n = 3\ninput x[n]\nf = sum(x[i + j] for i, j)\n", "cannot infer the range of 'i'"),
    ("size n = 3\ninput x[n]\nf = x[3]\n", "index 3 is out of range for 'x' of size 3"),
    ("size n = 3\ninput W[n, n]\nf = W[0]\n", "'W' has 2 dimensions, indexed with 1"),
    ("size n = 3\ninput x[n]\nf = x * 2\n", "'x' is a bus of shape [3]: index it"),
    ("size n = 3\ninput x[n], x\nf = x[0]\n", "'x' is declared twice"),
    ("size n = 3\ninput x[n]\nf = sum(x[n] for n)\n", "index variable 'n' shadows the size 'n'"),
])
def test_what_the_analysis_refuses(text, message):
    with pytest.raises(CircuitError) as raised:
        analysis(text)
    assert message in raised.value.message


def test_largest_counts_a_bus_or_the_terms_of_a_domain():
    assert analysis("size n = 3\ninput x[n]\nf = sum(x[i] for i)\n").largest() == 3
    # a reduction over two variables: 7 * 5 terms, more than any bus's elements
    a = analysis("input A[7, 5]\nf = sum(A[i, j] * A[i, j] for i, j)\n")
    assert a.largest() == 35
    assert analysis("input W[4, 6], x[6]\nh[i] = sum(W[i, j] * x[j] for j)\nf = h[0]\n").largest() == 24


def test_affine_forms():
    (expr,) = [parse(f"f = x[{text}]\n")[0].expr.args[0] for text in ["2 * i + n - 1"]]
    form = affine(expr, {"n": 5}, {"i"})
    assert form == {"i": 2, "": 4}
    assert value_at(form, {"i": 3}) == 10
    assert [index_text("i", a, c) for a, c in [(1, 0), (1, 2), (-1, 4), (2, -1)]] == [
        "i", "i + 2", "-i + 4", "2*i - 1"]
    with pytest.raises(CircuitError, match="multiply and divide index variables only by constants"):
        affine(parse("f = x[i * i]\n")[0].expr.args[0], {}, {"i"})
    with pytest.raises(CircuitError, match="integer division by zero"):
        affine(parse("f = x[n // 0]\n")[0].expr.args[0], {"n": 2})
