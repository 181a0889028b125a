"""`circuitc lsp` on a file of 10^4 lines, driven over stdio as an editor drives it
(`tests/lsp_client.py`): how long after a change its diagnostics arrive, and what the
other requests take. The time after a change includes the server's wait for typing to
pause (`lsp.DELAY`, 0.3 s), as an editor sees it.

    python benchmarks/lsp.py [--lines 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from circuitc.analysis import analyze
from lsp_client import Client, chain, uri


def timed(action):
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    text = chain(args.lines)
    middle = args.lines // 2
    broken = text.replace(f"w{middle} = tanh(", f"w{middle} = tanhh(")
    u = uri(Path(tempfile.gettempdir()) / "chain.circ")
    client = Client()
    rows = [("initialize (start, imports)", timed(client.initialize)[0])]
    client.open(u, text)
    rows.append(("open: diagnostics", timed(lambda: client.diagnostics(u, 1))[0]))
    changes, version = {"an error": [], "fixed": []}, 1

    def change(new: str, version: int) -> list:
        client.change(u, new, version)
        return client.diagnostics(u, version)
    for _ in range(args.repeat):
        for what, new in (("an error", broken), ("fixed", text)):
            version += 1
            seconds, diagnostics = timed(lambda: change(new, version))  # noqa: B023 (called at once)
            assert len(diagnostics) == (what == "an error"), diagnostics
            changes[what].append(seconds)
    for what, times in changes.items():
        rows.append((f"change ({what}): diagnostics, median of {len(times)}",
                     statistics.median(times)))
    line = middle + 1  # w{middle}, 0-based
    rows.append(("hover", timed(lambda: client.at("textDocument/hover", u, line, 1))[0]))
    rows.append(("definition", timed(lambda: client.at("textDocument/definition", u, line, 12))[0]))
    rows.append(("references", timed(lambda: client.at(
        "textDocument/references", u, line, 1, context={"includeDeclaration": True}))[0]))
    rows.append(("completion", timed(lambda: client.at("textDocument/completion", u, line, 10))[0]))
    rows.append(("semantic tokens, whole file", timed(lambda: client.request(
        "textDocument/semanticTokens/full", {"textDocument": {"uri": u}}))[0]))
    client.close()
    # What the server computes after the diagnostics of a file that compiles, for hover.
    analysis = analyze(text)
    rows.append(("values, gradients and derivatives (in-process, once per version)",
                 timed(analysis.evaluate)[0]))
    print(f"| {args.lines:,} lines | seconds |\n|---|---|")
    for what, seconds in rows:
        print(f"| {what} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
