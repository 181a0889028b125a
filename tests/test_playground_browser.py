"""The playground in a real browser: headless Chromium driven by Playwright, against the
site as `circuitc playground` serves it on 127.0.0.1.

Every request the page (and its worker) makes must go to that server: the others are
aborted and counted, and each test checks that there were none. A screenshot of each
state the tests reach is kept in `test-artifacts/playground/` (or under
`$CIRCUITC_TEST_ARTIFACTS`), with `timings.json`: the time to the first picture, cold
and warm, and of one edit-and-redraw, measured and reported, never asserted.

Where Chromium, Playwright or npm is missing these tests are skipped, except in CI
(`CI` set), where `.ci/run` installs them and a missing one is a failure. `.ci/run`
builds the site once and names it in `$CIRCUITC_PLAYGROUND_SITE`; without it the
tests build one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from pygments.token import string_to_tokentype

from circuitc.lexer import CircLexer
from conftest import CIRCUITS, ROOT, circuitc_command, run_cli

ARTIFACTS = Path(os.environ.get("CIRCUITC_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "playground"
# Chromium as root in a container, on a machine with no network but loopback.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PICTURE_TIMEOUT_MS = 120_000  # a cold start on a busy 2-core machine takes seconds


def _missing(what: str, how: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed, though .ci/run installs it")
    pytest.skip(f"{what} is not installed ({how})")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The built site: `$CIRCUITC_PLAYGROUND_SITE`, else one built here."""
    given = os.environ.get("CIRCUITC_PLAYGROUND_SITE")
    if given:
        return Path(given)
    if shutil.which("npm") is None:
        _missing("npm", "apt-get install npm")
    out = tmp_path_factory.mktemp("playground") / "site"
    done = run_cli("playground", "--build", out, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def server(site):
    """The address of `circuitc playground --site SITE` on a free port of 127.0.0.1."""
    process = subprocess.Popen([circuitc_command(), "playground", "--site", str(site),
                                "--port", "0", "--no-browser"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("serving the playground at http://127.0.0.1:"), (
            line + process.stderr.read() if process.poll() is not None else line)
        yield line.split(" at ", 1)[1].split()[0]
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    chromium = os.environ.get("CIRCUITC_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        _missing("Chromium", "apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright", "pip install playwright")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Visit:
    """A page of the playground in a fresh browser context, every request to another
    address than the server's aborted and recorded in `elsewhere`."""

    def __init__(self, browser, server: str, viewport=(1280, 900), route: bool = True):
        self.server = server
        self.context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        self.elsewhere: list[str] = []
        self.errors: list[str] = []
        if route:  # routing turns the HTTP cache off: the warm timing counts instead
            self.context.route("**/*", self._route)
        self.context.on("request", self._seen)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _local(self, url: str) -> bool:
        return url.startswith((self.server, "data:", "blob:"))

    def _seen(self, request) -> None:
        if not self._local(request.url) and request.url not in self.elsewhere:
            self.elsewhere.append(request.url)

    def _route(self, route) -> None:
        if self._local(route.request.url):
            route.continue_()
        else:
            route.abort()

    def open(self, fragment: str = "") -> Visit:
        self.page.goto(self.server + fragment)
        self.wait_for_picture()
        return self

    def go(self, fragment: str) -> Visit:
        """Show the state of the address `fragment`, as following a link to it does,
        without loading the page (and Python) again."""
        self.page.set_viewport_size({"width": 1280, "height": 900})
        self.after(lambda: self.page.evaluate(
            "h => { history.replaceState(null, '', h);"
            " window.dispatchEvent(new HashChangeEvent('hashchange')); }", fragment))
        self.wait_for_picture()
        return self

    def wait_for_picture(self) -> None:
        self.page.wait_for_selector("#picture svg", timeout=PICTURE_TIMEOUT_MS)

    def shown(self) -> int:
        return int(self.page.evaluate("document.body.dataset.shown || '0'"))

    def after(self, action) -> None:
        """Do `action`, then wait for the page to show the worker's next answer."""
        before = self.shown()
        action()
        self.page.wait_for_function(f"Number(document.body.dataset.shown || 0) > {before}",
                                    timeout=PICTURE_TIMEOUT_MS)

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def inputs(self) -> dict[str, float]:
        return {name: float(value) for name, value in self.page.eval_on_selector_all(
            "#inputs tbody tr", "rows => rows.map(r => [r.dataset.name, "
            "r.querySelector('input[type=number]').value])")}

    def close(self) -> None:
        assert self.elsewhere == [], f"requests to other addresses: {self.elsewhere}"
        assert self.errors == [], self.errors
        self.context.close()


@pytest.fixture
def visit(browser, server):
    """A new visit of the playground, in a browser context of its own."""
    opened = []

    def make(**options) -> Visit:
        opened.append(Visit(browser, server, **options))
        return opened[-1]
    yield make
    for v in opened:
        v.close()


@pytest.fixture(scope="module")
def _one_visit(browser, server):
    v = Visit(browser, server).open()
    yield v
    v.close()


@pytest.fixture
def shared(_one_visit) -> Visit:
    """The one visit most tests share, Python loaded once (`go` to a state)."""
    yield _one_visit
    assert _one_visit.elsewhere == [], f"requests to other addresses: {_one_visit.elsewhere}"
    assert _one_visit.errors == []


def cli_json(*args) -> dict:
    done = run_cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


NEURON = "#example=circuits/neuron.circ"


def test_the_neurons_value_and_gradients_are_those_of_circuitc_eval(shared):
    v = shared.go(NEURON)
    v.screenshot("neuron")
    expected = cli_json("eval", CIRCUITS / "neuron.circ")
    page = v.page
    assert float(page.inner_text("#outputs tbody td")) == expected["outputs"]["f"]
    gradients = dict(page.eval_on_selector_all(
        "#inputs tbody tr", "rows => rows.map(r => [r.dataset.name, "
        "r.querySelector('td.gradient').textContent])"))
    assert {k: float(g) for k, g in gradients.items()} == expected["gradients"]["f"]
    assert v.inputs() == expected["inputs"]
    assert page.locator("#picture svg g.node").count() >= 6


def test_a_typo_shows_the_caret_message_and_marks_the_editor(shared, tmp_path):
    v = shared.go(NEURON)
    text = (CIRCUITS / "neuron.circ").read_text().replace("sigmoid(s)", "sigmod(s)")
    v.after(lambda: v.page.fill("#source", text))
    v.screenshot("typo")
    (tmp_path / "neuron.circ").write_text(text)
    done = run_cli("eval", "neuron.circ", cwd=tmp_path)
    assert done.returncode == 2
    assert v.page.inner_text("#diagnostics pre.error") == done.stderr.rstrip("\n")
    assert v.page.inner_text(".highlight .mark-error") == "sigmod"
    assert v.page.inner_text(".gutter .gutter-error") == "5"
    assert v.page.get_attribute("#source", "aria-invalid") == "true"


@pytest.mark.parametrize("method", ["random", "numerical", "analytic"])
def test_each_way_uphill_moves_the_inputs_as_circuitc_step(shared, method):
    v = shared.go(NEURON)
    v.page.fill("#seed", "7")
    v.after(lambda: v.page.click(f"button[data-method={method}]"))
    v.screenshot(f"step-{method}")
    expected = cli_json("step", CIRCUITS / "neuron.circ", "--method", method, "--seed", "7")
    assert v.inputs() == expected["after"]["inputs"]
    assert v.page.locator("#report table").count() == 1


def test_verify_shows_its_table(shared):
    v = shared.go(NEURON)
    v.page.click("#verify")
    v.page.wait_for_selector("#report table")
    v.screenshot("verify")
    assert "OK: 5 passed, 0 failed" in v.page.inner_text("#report")


def test_a_bus_circuit_draws_by_bus_and_by_element(shared):
    v = shared.go("#example=circuits/two_layer.circ")
    v.screenshot("bus-view")
    by_bus = v.page.locator("#picture svg g.node").count()
    assert v.page.is_visible("#view")
    v.after(lambda: v.page.check("input[name=view][value=elements]"))
    v.screenshot("element-view")
    assert v.page.locator("#picture svg g.node").count() > by_bus
    assert json.loads(v.page.input_value("#input-W")) == [[1.0, -2.0], [-1.0, 3.0]]


def test_a_shared_link_restores_the_circuit_and_its_inputs(shared, visit):
    v = shared.go(NEURON)
    text = (CIRCUITS / "neuron.circ").read_text().replace("c = -3", "c = -2")
    v.after(lambda: v.page.fill("#source", text))
    v.after(lambda: v.page.fill("#input-x", "0.5"))
    link = v.page.url
    assert "code=" in link and "at=" in link
    w = visit()
    w.page.goto(link)
    w.wait_for_picture()
    w.screenshot("shared-link")
    assert w.page.input_value("#source") == text
    assert w.inputs()["x"] == 0.5 and w.inputs()["c"] == -2.0
    done = run_cli("eval", "-", "x=0.5", "--json", input=text)
    assert float(w.page.inner_text("#outputs tbody td")) == json.loads(done.stdout)["outputs"]["f"]


def test_highlighting_is_the_pygments_lexers(shared):
    v = shared.go(NEURON)
    files = [*sorted(CIRCUITS.glob("*.circ")), *sorted((ROOT / "examples").glob("*.circ"))]
    text = "".join(f.read_text() for f in files) + "gate  sq(x) = x**2 // 1e5 .5 3. $ @\n"
    found = v.page.evaluate("""async (text) => {
        const { tokenize, compileRules } = await import('./editor.js');
        const config = await (await fetch('config.json')).json();
        return tokenize(text, compileRules(config.tokens));
    }""", text)
    assert [(string_to_tokentype(t), s) for t, s in found] == list(CircLexer().get_tokens(text))


def test_a_module_line_links_to_its_source_line(shared):
    v = shared.go(NEURON)
    v.page.click("#module .line-link[data-line='5']")
    selected = v.page.evaluate("(() => { const t = document.querySelector('#source');"
                               " return t.value.slice(t.selectionStart, t.selectionEnd); })()")
    assert selected == "f = sigmoid(s)"
    assert v.page.evaluate("document.activeElement.id") == "source"
    v.after(lambda: v.page.select_option("#target", "numpy"))
    assert "import numpy as np" in v.page.inner_text("#module")


def test_the_keyboard_reaches_everything_at_200_percent_zoom(shared):
    # 200% zoom of a 1280-pixel window leaves 640 CSS pixels: one column, no page
    # wider than the window, and the buttons reached with Tab alone.
    v = shared.go(NEURON)
    v.page.set_viewport_size({"width": 640, "height": 900})
    v.screenshot("zoom-200")
    assert v.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    v.page.focus("#menu")
    for _ in range(60):
        v.page.keyboard.press("Tab")
        if v.page.evaluate("document.activeElement.dataset.method") == "analytic":
            break
    else:
        pytest.fail("Tab never reached the analytic gradient's button")
    v.after(lambda: v.page.keyboard.press("Enter"))
    expected = cli_json("step", CIRCUITS / "neuron.circ", "--method", "analytic")
    assert v.inputs() == expected["after"]["inputs"]


def test_time_to_the_first_picture_cold_and_warm_and_to_redraw(visit):
    """Measured and reported in timings.json and on stdout, not asserted. Warm: the same
    address opened again in the same browser, its HTTP cache filled."""
    v = visit(route=False).open(NEURON)
    times = "window.playgroundTimes"
    cold = v.page.evaluate(times)
    v.page.goto("about:blank")
    v.open(NEURON)
    warm = v.page.evaluate(times)
    text = v.page.input_value("#source").replace("c = -3", "c = -2.5")
    v.after(lambda: v.page.fill("#source", text))
    redraw = v.page.evaluate(times)
    timings = {"first_picture_cold_ms": round(cold["firstPicture"]),
               "first_picture_warm_ms": round(warm["firstPicture"]),
               "worker_start_cold_ms": cold["worker"], "worker_start_warm_ms": warm["worker"],
               "edit_and_redraw_ms": round(redraw["lastWork"]),
               "edit_and_redraw_with_the_editors_pause_ms": round(redraw["lastRedraw"]),
               "cpus": os.cpu_count()}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print("playground timings:", json.dumps(timings))
    assert cold["firstPicture"] > 0 and warm["firstPicture"] > 0 and redraw["lastWork"] > 0
