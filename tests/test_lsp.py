"""`circuitc lsp`, driven over stdio with raw JSON-RPC as an editor drives it
(`lsp_client.Client`): diagnostics, hover, definition, references, completion, semantic
tokens, positions in every encoding, and a file of 10^4 lines re-analysed on change."""

from __future__ import annotations

import os
import time

import pytest

from conftest import CIRCUITS, run_cli
from lsp_client import Client, chain, uri

THREE_ERRORS = """\
input a = 1, b = 2
s = a * sigmod(b)
s = a + b
f = s * c
output f
"""

FIXED = """\
input a = 1, b = 2
s = a * sigmoid(b)
f = s * 2   # the output
output f
gate twice(u, v) = 2 * u + v
"""


def rng(line: int, start: int, end_line: int, end: int) -> dict:
    return {"start": {"line": line, "character": start},
            "end": {"line": end_line, "character": end}}


@pytest.fixture
def client():
    c = Client("--stdio")  # what a generic VS Code client passes: accepted
    yield c
    if c.process.poll() is None:
        c.process.kill()
        c.process.wait()


def hover(client: Client, u: str, line: int, character: int) -> str:
    result = client.at("textDocument/hover", u, line, character)
    return result["contents"]["value"] if result else ""


def test_an_editor_session(client, tmp_path):
    """initialize, open a file with three errors, fix it, hover, definition, references,
    completion, shutdown and exit: what an editor does, in its order."""
    result = client.initialize()
    capabilities = result["capabilities"]
    assert capabilities["positionEncoding"] == "utf-16"  # none asked for: the default
    assert capabilities["hoverProvider"] and capabilities["definitionProvider"]
    assert capabilities["referencesProvider"] and "completionProvider" in capabilities
    assert capabilities["semanticTokensProvider"]["legend"]["tokenTypes"][0] == "keyword"
    assert result["serverInfo"]["name"] == "circuitc"

    u = uri(tmp_path / "t.circ")
    client.open(u, THREE_ERRORS)
    diagnostics = client.diagnostics(u, 1)
    assert [(d["range"], d["message"], d["severity"]) for d in diagnostics] == [
        (rng(1, 8, 1, 14), "unknown gate 'sigmod'; did you mean 'sigmoid'?", 1),
        (rng(2, 0, 2, 1), "'s' is assigned twice (first at line 2)", 1),
        (rng(3, 8, 3, 9), "unknown name 'c'\nhelp: declare it with 'input c'", 1)]
    assert diagnostics[1]["relatedInformation"] == [
        {"location": {"uri": u, "range": rng(1, 0, 1, 1)}, "message": "first assigned here"}]
    assert all(d["source"] == "circuitc" for d in diagnostics)

    client.change(u, FIXED, 2)
    assert client.diagnostics(u, 2) == []

    text = hover(client, u, 1, 0)  # `s`
    assert text.startswith("**s**: wire, line 2")
    assert "```circ\ns = a * sigmoid(b)\n```" in text
    assert "local derivative of '*': b, a" in text
    assert "`s` = `0.8807970779778823` at the defaults; ∂f/∂s = `2.0`" in text
    assert "as `d_s = d_f * 2.0`" in text
    text = hover(client, u, 1, 10)  # `sigmoid`
    assert text == "built-in gate `sigmoid(a)`\n\nlocal derivative: s(1-s), reusing s"
    text = hover(client, u, 0, 6)  # `a`, an input
    assert "**a**: input, line 1" in text and "`a` = `1.0` at the defaults" in text
    assert "`backward` computes ∂/∂`a` as `d_s * t1`" in text  # t1 = sigmoid(b)
    assert hover(client, u, 4, 23).startswith("**u**: parameter")  # in `twice`'s body
    assert hover(client, u, 2, 15) == ""  # a comment

    definition = client.at("textDocument/definition", u, 2, 4)  # `s` in `f = s * 2`
    assert definition == {"uri": u, "range": rng(1, 0, 1, 1)}
    references = client.at("textDocument/references", u, 0, 6,
                           context={"includeDeclaration": True})
    assert [r["range"] for r in references] == [rng(0, 6, 0, 7), rng(1, 4, 1, 5)]
    references = client.at("textDocument/references", u, 1, 4,
                           context={"includeDeclaration": False})
    assert [r["range"] for r in references] == [rng(1, 4, 1, 5)]

    labels = {i["label"]: i for i in client.at("textDocument/completion", u, 2, 4)["items"]}
    assert {"a", "b", "s", "f", "twice", "sigmoid", "logsumexp", "input", "for"} <= set(labels)
    assert "u" not in labels and labels["s"]["detail"] == "s = a * sigmoid(b)"
    labels = {i["label"] for i in client.at("textDocument/completion", u, 4, 24)["items"]}
    assert {"u", "v", "twice", "tanh"} <= labels and not labels & {"a", "s", "f"}

    assert client.close() == 0


def test_a_character_beyond_the_multilingual_plane_before_an_error(client, tmp_path):
    """circuitc counts characters, UTF-16 counts 😀 as two units: the error after it and a
    name after it are where the editor has them."""
    client.initialize()
    u = uri(tmp_path / "t.circ")
    client.open(u, "x = 😀; y = 1 +* 2\ninput a = 1; z = 😀; f = a * 3\n")
    diagnostics = client.diagnostics(u)
    assert [(d["range"], d["message"]) for d in diagnostics] == [
        (rng(0, 4, 0, 6), "unexpected character '😀'"),
        (rng(0, 15, 0, 16), "unexpected '*'; expected an expression"),
        (rng(1, 17, 1, 19), "unexpected character '😀'")]
    # `a` in `f = a * 3` is character 24 of the line, unit 25 in UTF-16.
    assert hover(client, u, 1, 25).startswith("**a**: input, line 2")
    assert client.at("textDocument/definition", u, 1, 25)["range"] == rng(1, 6, 1, 7)
    references = client.at("textDocument/references", u, 1, 6, context={"includeDeclaration": True})
    assert [r["range"] for r in references] == [rng(1, 6, 1, 7), rng(1, 25, 1, 26)]
    assert client.close() == 0


@pytest.mark.parametrize(("encoding", "units"), [("utf-8", (17, 18, 27)), ("utf-32", (14, 15, 24))])
def test_the_encoding_the_client_asks_for(client, tmp_path, encoding, units):
    result = client.initialize([encoding, "utf-16"])
    assert result["capabilities"]["positionEncoding"] == encoding
    u = uri(tmp_path / "t.circ")
    client.open(u, "x = 😀; y = 1 +* 2\ninput a = 1; z = 😀; f = a * 3\n")
    assert client.diagnostics(u)[1]["range"] == rng(0, units[0], 0, units[1])
    assert hover(client, u, 1, units[2]).startswith("**a**: input")
    assert client.close() == 0


def test_hover_keeps_the_last_version_that_compiled_while_a_line_is_broken(client, tmp_path):
    client.initialize()
    u = uri(tmp_path / "t.circ")
    client.open(u, FIXED)
    assert client.diagnostics(u, 1) == []
    # `s` is being retyped, and a new line is half written: the file does not parse.
    client.change(u, FIXED.replace("sigmoid(b)", "sigmoid(b").replace("f = s", "g = (\nf = s"), 2)
    assert [d["message"] for d in client.diagnostics(u, 2)] == [
        "unexpected name 'g' (the '(' at line 2 column 16 is not closed)",
        "unexpected '=' (the '(' at line 3 column 5 is not closed)"]
    text = hover(client, u, 3, 4)  # `s` in `f = s * 2`, now on line 4
    assert "`s` = `0.8807970779778823` at the defaults" in text
    assert "*(as of the last version that compiled)*" in text
    assert client.at("textDocument/definition", u, 0, 6)["range"] == rng(0, 6, 0, 7)
    assert client.close() == 0


def test_semantic_tokens_follow_the_lexer_and_the_names(client, tmp_path):
    result = client.initialize()
    legend = result["capabilities"]["semanticTokensProvider"]["legend"]
    u = uri(tmp_path / "t.circ")
    client.open(u, "input x = 1  # 😀 here\nf = sigmoid(x) + 2\n")
    assert client.diagnostics(u) == []
    data = client.request("textDocument/semanticTokens/full", {"textDocument": {"uri": u}})["data"]
    tokens, line, start = [], 0, 0
    for k in range(0, len(data), 5):
        dl, ds, length, kind, modifiers = data[k:k + 5]
        line, start = line + dl, (start if dl == 0 else 0) + ds
        names = [m for bit, m in enumerate(legend["tokenModifiers"]) if modifiers >> bit & 1]
        tokens.append((line, start, length, legend["tokenTypes"][kind], names))
    assert tokens == [
        (0, 0, 5, "keyword", []), (0, 6, 1, "parameter", ["declaration"]),
        (0, 8, 1, "operator", []), (0, 10, 1, "number", []),
        (0, 13, 9, "comment", []),  # `# 😀 here`: 8 characters, 9 UTF-16 units
        (1, 0, 1, "variable", ["declaration"]), (1, 2, 1, "operator", []),
        (1, 4, 7, "function", ["defaultLibrary"]), (1, 12, 1, "parameter", []),
        (1, 15, 1, "operator", []), (1, 17, 1, "number", [])]
    assert client.close() == 0


def test_closing_a_file_clears_its_diagnostics(client, tmp_path):
    client.initialize()
    u = uri(tmp_path / "t.circ")
    client.open(u, THREE_ERRORS)
    assert len(client.diagnostics(u, 1)) == 3
    client.notify("textDocument/didClose", {"textDocument": {"uri": u}})
    assert client.diagnostics(u) == []
    assert client.close() == 0


def test_warnings_are_diagnostics_too(client, tmp_path):
    client.initialize()
    u = uri(tmp_path / "t.circ")
    client.open(u, (CIRCUITS / "neuron.circ").read_text() + "unused = a * 2\n")
    assert [(d["range"], d["message"], d["severity"]) for d in client.diagnostics(u)] == [
        (rng(6, 0, 6, 6), "wire 'unused' is not used: no output depends on it", 2)]
    assert client.close() == 0


def test_a_file_of_ten_thousand_lines_is_analysed_again_on_change(client, tmp_path, record_property):
    """Correct diagnostics after each change; the time each takes is measured and reported
    (benchmarks/lsp.py), never asserted."""
    client.initialize()
    u = uri(tmp_path / "big.circ")
    text = chain(10_000)
    client.open(u, text)
    assert client.diagnostics(u, 1) == []
    broken = text.replace("w5000 = tanh(", "w5000 = tanhh(")
    start = time.perf_counter()
    client.change(u, broken, 2)
    diagnostics = client.diagnostics(u, 2)
    seconds = time.perf_counter() - start
    assert [(d["range"], d["message"]) for d in diagnostics] == [
        (rng(5001, 8, 5001, 13), "unknown gate 'tanhh'; did you mean 'tanh'?")]
    client.change(u, text, 3)
    assert client.diagnostics(u, 3) == []
    assert "**w5000**: wire, line 5002" in hover(client, u, 5001, 1)
    record_property("seconds from the change to its diagnostics", seconds)
    print(f"10^4 lines: diagnostics {seconds:.2f} s after the change")  # shown with -s
    assert client.close() == 0


def test_without_pygls_the_command_says_what_to_install(tmp_path):
    fake = tmp_path / "pygls"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'pygls'\", name='pygls')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = run_cli("lsp", env=env)
    assert result.returncode == 2
    assert result.stderr == "error: circuitc lsp needs pygls: pip install 'circuitc[lsp]'\n"
    assert result.stdout == ""


# -- in-process: positions and diagnostics -------------------------------------------------


@pytest.mark.parametrize(("encoding", "mark", "after"),
                         [("utf-16", 1, 7), ("utf-8", 3, 9), ("utf-32", 1, 6)])
def test_positions_convert_both_ways_past_a_byte_order_mark_and_a_wide_character(
        encoding, mark, after):
    from lsprotocol.types import Position

    from circuitc.lsp import Positions

    # circuitc's text has no mark and no \r: `f` is at line 1 column 1, `x` at line 2
    # column 7, past `😀` (1 character; 2 UTF-16 units, 4 UTF-8 bytes).
    positions = Positions("\ufefff = 1\r\ng = 😀 x\r\n", encoding)
    assert positions.position(1, 1) == Position(0, mark)  # after the mark, for the client
    assert positions.place(Position(0, mark)) == (1, 1)
    assert positions.position(2, 7) == Position(1, after)
    assert positions.place(Position(1, after)) == (2, 7)
    assert positions.position(2, 99) == Position(1, after + 1)  # the line's end, no \r
    assert positions.word(Position(1, after)) == "x"


def test_labels_are_lines_of_the_message_for_a_client_without_related_information():
    from circuitc.analysis import analyze
    from circuitc.lsp import Positions, _diagnostic

    error = analyze(THREE_ERRORS).errors[1]
    diagnostic = _diagnostic(error, "file:///t.circ", Positions(THREE_ERRORS), related=False)
    assert diagnostic.message == "'s' is assigned twice (first at line 2)\nline 2: first assigned here"
    assert diagnostic.related_information is None
