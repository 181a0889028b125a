"""`circuitc step`: the textbook's three ways up the hill reproduce its numbers exactly."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from circuitc.step import StepError, climb
from conftest import CIRCUITS, load_source, run_cli


def step_json(*args):
    result = run_cli("step", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# -- the textbook's numbers ---------------------------------------------------------------

@pytest.mark.parametrize(("name", "args", "after"), [
    ("multiply.circ", ["--method", "analytic"], -5.8706),
    ("multiply.circ", ["--method", "numerical", "--difference", "forward", "--h", "1e-4"],
     -5.87059999999986),
    ("add_multiply.circ", [], -11.5924),
    ("neuron.circ", [], 0.8825501816218984),
])
def test_textbook_steps_exactly(name, args, after):
    document = step_json(CIRCUITS / name, *args)
    assert document["after"]["output"] == after
    assert document["steps"] == 1 and document["history"] == [after]


def test_the_analytic_step_of_the_multiply_gate():
    # x += 0.01 * 3 and y += 0.01 * -2 land exactly on the doubles nearest -1.97 and 2.98;
    # their product is the double nearest -5.8706 (-5.87059999999999959641...).
    document = step_json(CIRCUITS / "multiply.circ")
    assert document["before"] == {"inputs": {"x": -2.0, "y": 3.0}, "output": -6.0}
    assert document["after"] == {"inputs": {"x": -1.97, "y": 2.98}, "output": -5.8706}


def test_the_numerical_step_moves_by_the_textbook_derivatives():
    document = step_json(CIRCUITS / "multiply.circ", "--method", "numerical",
                         "--difference", "forward", "--h", "1e-4")
    # (f(x+h) - f(x)) / h = 3.00000000000189 and -2.0000000000042206
    assert document["after"]["inputs"] == {"x": -2.0 + 0.01 * 3.00000000000189,
                                           "y": 3.0 + 0.01 * -2.0000000000042206}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_local_search_like_the_textbook(seed):
    document = step_json(CIRCUITS / "multiply.circ", "--method", "random", "--tries", "100",
                         "--tweak", "0.01", "--seed", str(seed))
    assert -6 < document["after"]["output"] <= -5.9501
    for name, before in document["before"]["inputs"].items():
        assert abs(document["after"]["inputs"][name] - before) <= 0.01


def test_random_search_is_seeded():
    args = (CIRCUITS / "neuron.circ", "--method", "random", "--steps", "3")
    assert step_json(*args) == step_json(*args)
    assert step_json(*args)["after"] != step_json(*args, "--seed", "5")["after"]


def test_random_search_never_goes_downhill():
    module = load_source("input x = 0\nf = -x*x\n")  # already at the top
    result = climb(module, {"x": 0.0}, method="random", steps=5)
    assert result.after == {"x": 0.0} and result.history == [-0.0] * 5


# -- several steps ------------------------------------------------------------------------

def test_the_neuron_climbs_monotonically_for_100_steps():
    document = step_json(CIRCUITS / "neuron.circ", "--steps", "100")
    history = [document["before"]["output"], *document["history"]]
    assert len(history) == 101
    assert all(a < b for a, b in pairwise(history))
    assert history[1] == 0.8825501816218984


@pytest.mark.parametrize("method", ["analytic", "numerical", "random"])
def test_minimize_descends(method):
    document = step_json(CIRCUITS / "svm_loss.circ", "--minimize", "--steps", "5",
                         "--method", method)
    history = [document["before"]["output"], *document["history"]]
    assert all(a > b for a, b in pairwise(history))


def test_central_numerical_steps_follow_the_analytic_ones():
    analytic = step_json(CIRCUITS / "two_layer.circ", "--steps", "10")
    numerical = step_json(CIRCUITS / "two_layer.circ", "--steps", "10", "--method", "numerical")
    for name, value in analytic["after"]["inputs"].items():
        assert numerical["after"]["inputs"][name] == pytest.approx(value, rel=1e-8)


def test_zero_steps_change_nothing():
    document = step_json(CIRCUITS / "neuron.circ", "--steps", "0")
    assert document["after"] == document["before"] and document["history"] == []


# -- output and errors ----------------------------------------------------------------------

def test_text_output_shows_inputs_and_output_before_and_after():
    result = run_cli("step", CIRCUITS / "add_multiply.circ")
    assert result.returncode == 0
    assert [line.split() for line in result.stdout.splitlines()] == [
        ["1", "analytic", "step", "up", "f,", "step", "size", "0.01:"],
        ["before", "after"],
        ["x", "-2.0", "-2.04"],
        ["y", "5.0", "4.96"],
        ["z", "-4.0", "-3.97"],
        ["f", "-12.0", "-11.5924", "(+0.4076)"],
    ]


def test_given_values_override_defaults():
    document = step_json(CIRCUITS / "multiply.circ", "x=1", "y=1")
    assert document["before"]["output"] == 1.0
    assert document["after"]["inputs"] == {"x": 1.01, "y": 1.01}


def test_every_input_needs_a_value(tmp_path):
    path = tmp_path / "free.circ"
    path.write_text("f = x * y\n")
    result = run_cli("step", path, "x=1")
    assert result.returncode == 2
    assert "no value for input 'y'" in result.stderr


def test_stepping_out_of_the_domain_is_a_clean_error(tmp_path):
    path = tmp_path / "log.circ"
    path.write_text("input x = 0.01\nf = log(x)\n")
    result = run_cli("step", path, "--minimize", "--step-size", "1")
    assert result.returncode == 2
    assert result.stderr == (f"{path}:2:5: error: in 'log': math domain error\n"
                             "  f = log(x)\n"
                             "      ^^^\n")
    with pytest.raises(StepError):
        climb(load_source("input x = 0.01\nf = log(x)\n"), {"x": 0.01}, step_size=-1.0)


def test_a_step_h_below_an_inputs_resolution_is_an_error():
    # x + 1e-320 == x: the numerical derivative would be 0 and the step would not move
    result = run_cli("step", CIRCUITS / "multiply.circ", "--method", "numerical", "--h", "1e-320")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == ("error: h = 1e-320 is below the resolution of x = -2.0 (x + h == x): "
                             "give a larger --h\n")
    with pytest.raises(StepError, match="resolution of y = 1e\\+20"):
        climb(load_source("f = x * y\n"), {"x": 1.0, "y": 1e20}, method="numerical", h=1e-6)


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "gradient"], "Invalid value for '--method'"),
    (["--difference", "complex"], "Invalid value for '--difference'"),
    (["--steps", "-1"], "Invalid value for '--steps'"),
    (["--tries", "0"], "Invalid value for '--tries'"),
    (["--step-size", "inf"], "must be a finite number"),
])
def test_bad_options_exit_2(args, message):
    result = run_cli("step", CIRCUITS / "multiply.circ", *args)
    assert result.returncode == 2 and message in result.stderr
