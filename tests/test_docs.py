"""The documentation tells the truth: README.md and docs/*.md.

- Every ```console block is run: each `$ ` line is a shell command, run with the
  installed `circuitc` (and this Python as `python`) in a temporary copy of the
  repository's `circuits/` and `examples/`; the lines under it, up to the next `$ `
  line or the end of the block, are what it prints (stdout and stderr together),
  compared exactly but for trailing blanks. A line that is `...` alone stands for any
  number of lines. A command exits with status 0, unless it ends with the comment
  `# exit N`, its expected status.
- Every relative link points to a file that exists and, where it names an anchor in a
  Markdown file, to a heading of that file.
- The quick start shows the two commands CI runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def console_blocks() -> list[tuple[str, int, str]]:
    """(page, line, text) of every ```console block."""
    blocks = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group(1).strip() == "console":
                blocks.append((_name(page), text.count("\n", 0, m.start()) + 1, m.group(2)))
    return blocks


def commands(block: str) -> list[tuple[str, list[str]]]:
    """The block's commands, each with the lines it is shown to print."""
    runs: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            runs.append((line[2:], []))
        else:
            assert runs, f"output before the first command: {line!r}"
            runs[-1][1].append(line)
    return runs


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether `actual` is `expected`, a line `...` standing for any lines."""
    if not expected:
        return not actual
    if expected[0].strip() == "...":
        return any(matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and actual[0] == expected[0] and matches(expected[1:], actual[1:])


def _trimmed(lines: list[str]) -> list[str]:
    lines = [line.rstrip() for line in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


@pytest.fixture
def workspace(tmp_path) -> Path:
    """A directory holding copies of the repository's circuits and examples."""
    for folder in ("circuits", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"))
    return tmp_path


@pytest.mark.parametrize(("page", "line", "block"), console_blocks(),
                         ids=[f"{page}:{line}" for page, line, _ in console_blocks()])
def test_every_console_block_prints_what_it_shows(workspace, page, line, block):
    env = {**os.environ, "NO_COLOR": "1",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    for command, shown in commands(block):
        result = subprocess.run(["bash", "-c", command], cwd=workspace, env=env, check=False,
                                capture_output=True, text=True, timeout=300)
        printed = _trimmed((result.stdout + result.stderr).splitlines())
        assert matches(_trimmed(shown), printed), (
            f"{page}:{line}: `{command}` printed:\n" + "\n".join(printed))
        assert result.returncode == expected_status(command), (page, line, command)


def expected_status(command: str) -> int:
    """0, or N for a command that ends with `# exit N`."""
    m = re.search(r"#\s*exit (\d+)\s*$", command)
    return int(m.group(1)) if m else 0


def test_the_console_blocks_are_found():
    pages = {page for page, _, _ in console_blocks()}
    assert {"docs/tutorial.md", "docs/cli.md"} <= pages


def test_ellipsis_stands_for_any_lines():
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert matches(["a", "...", "d"], ["a", "d"])
    assert not matches(["a", "...", "d"], ["a", "b"])
    assert not matches(["a"], ["a", "b"])


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.MULTILINE)}


def links(page: Path) -> list[str]:
    """The targets of the page's Markdown links and images, outside code."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_links_are_found_outside_code(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[a](a.md) ![b](b.png#x) `[c](c.md)`\n```\n[d](d.md)\n```\n[e](#e)\n")
    assert links(page) == ["a.md", "b.png#x", "#e"]
    assert expected_status("circuitc eval bad.circ   # exit 2") == 2
    assert expected_status("circuitc eval good.circ") == 0


def test_the_slugs_are_githubs():
    assert _slug("Second derivatives: `verify --order 2`") == "second-derivatives-verify---order-2"
    assert _slug("The `.circ` language") == "the-circ-language"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_relative_link_resolves(page):
    for target in links(page):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{_name(page)}: the link {target} points to no file"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file), f"{_name(page)}: the link {target} names no heading"


def test_every_docs_page_is_in_the_index():
    index = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    for page in PAGES[1:]:
        if page.name != "README.md":
            assert f"]({page.name})" in index, page.name


def test_the_quick_start_shows_what_ci_runs():
    """`.ci/run` runs the README's two quick-start commands (quietly, with `-q`)."""
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = [line for line in script.splitlines() if line.startswith("pip install")]
    assert len(quick) == 2
    for line in quick:
        assert line.replace("pip install -q", "pip install") in readme, line


def test_nothing_refers_to_a_specification_the_project_does_not_contain():
    name = "SPEC" + ".md"
    skip = {".git", ".venv", "venv", "build", "dist", "__pycache__", ".hypothesis",
            ".pytest_cache", ".ruff_cache"}
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if path.is_file() and not parts & skip and not any(p.endswith(".egg-info") for p in parts) \
                and path.suffix in {".md", ".py", ".toml", ".circ", ".lark", ".txt", ""}:
            assert name not in path.read_text(encoding="utf-8", errors="replace"), path
