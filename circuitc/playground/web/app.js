// The playground's page: the editor, the panels, and the conversation with the worker
// (worker.js), which runs circuitc. The state worth sharing lives in the address's
// fragment: #example=PATH (a circuit of the menu, unchanged) or #code=TEXT&name=FILE,
// and &at=JSON (input values given by name).

import { Editor } from "./editor.js";

const $ = (selector) => document.querySelector(selector);
const escapes = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" };
const escape = (s) => String(s).replace(/[&<>"]/g, (c) => escapes[c]);
const DEBOUNCE_MS = 200;

// What the page measures (window.playgroundTimes): milliseconds since navigation
// started, to the first picture, and the last edit to its picture (`lastRedraw`, with the
// editor's pause; `lastWork`, from asking the worker); `worker`, the worker's
// own start (milliseconds from its start to Pyodide, Graphviz and circuitc loaded).
const times = (window.playgroundTimes = { firstPicture: null, lastRedraw: null, lastWork: null, worker: null });

const state = { name: "circuit.circ", example: "", at: {}, elements: false, target: "python" };
let config, editor;

// -- the worker: one request in flight; of the `show` requests waiting, the last -----

const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
let nextId = 1, inFlight = null, waiting = [];
const callbacks = new Map();

function ask(request, callback) {
  if (request.op === "show") waiting = waiting.filter((w) => w.request.op !== "show");
  waiting.push({ request, callback });
  pump();
}

function pump() {
  if (inFlight || !waiting.length) return;
  const { request, callback } = waiting.shift();
  inFlight = nextId++;
  callbacks.set(inFlight, callback);
  worker.postMessage({ id: inFlight, request });
}

worker.onmessage = ({ data }) => {
  if (data.ready) {
    times.worker = data.ready;
    return setStatus("Ready.");
  }
  if (data.failed) return setStatus(`Could not start Python: ${data.failed}`);
  const callback = callbacks.get(data.id);
  callbacks.delete(data.id);
  inFlight = null;
  if (data.error) {
    setStatus(`Internal error of the playground: ${data.error}`);
  } else {
    callback(data.answer);
  }
  pump();
};

function setStatus(text) { $("#status").textContent = text; }

// -- showing a circuit ----------------------------------------------------------------

function request(op, extra = {}) {
  return { op, text: editor.value, name: state.name, at: state.at, ...extra };
}

let debounce = null, editedAt = null;
function scheduleShow(delay = DEBOUNCE_MS) {
  clearTimeout(debounce);
  editedAt ??= performance.now();
  debounce = setTimeout(show, delay);
}

function show() {
  const started = editedAt ?? performance.now();
  editedAt = null;
  saveToAddress();
  const asked = performance.now();
  ask(request("show", { elements: state.elements, target: state.target }),
    (a) => shown(a, started, asked));
}

function shown(a, started, asked) {
  document.body.dataset.shown = String(Number(document.body.dataset.shown || 0) + 1);
  renderDiagnostics(a.diagnostics);
  if (a.inputs) {
    renderValues(a);
    renderModule(a.code);
  }
  const picture = $("#picture");
  if (a.svg) {
    picture.innerHTML = a.svg.slice(a.svg.indexOf("<svg"));
    const now = performance.now();
    times.firstPicture ??= now;
    times.lastRedraw = now - started;
    times.lastWork = now - asked;
    picture.dataset.drawn = String(Number(picture.dataset.drawn || 0) + 1);
  } else if (a.too_big || a.draw_error) {
    picture.innerHTML = `<p class="note">${escape(a.too_big || a.draw_error)}</p>`;
  }
  $("#view").hidden = !a.buses;
  // After an error, what is left is the last circuit that ran: shown faded.
  document.body.classList.toggle("stale", !a.ok);
  setStatus(a.ok ? "Ready." : "The circuit has an error: see below the source.");
}

function renderDiagnostics(diagnostics) {
  editor.mark(diagnostics);
  $("#diagnostics").innerHTML = diagnostics.filter((d) => d.text)
    .map((d) => `<pre class="${d.severity}">${escape(d.text)}</pre>`).join("");
}

// -- inputs, outputs and gradients ----------------------------------------------------

// A number as JavaScript prints it (the shortest text that reads back exactly, as
// Python's repr), a bus as JSON with a space after each comma, to wrap there.
const shown_ = (v) => (Array.isArray(v) ? JSON.stringify(v).replaceAll(",", ", ") : String(v));
let inputsKey = "";

function renderValues(a) {
  const evaluation = a.evaluation;
  const columns = evaluation ? Object.keys(evaluation.gradients) : [];
  const key = JSON.stringify([a.inputs, columns]);
  if (key !== inputsKey) {  // new inputs: new rows (else update in place, keeping focus)
    inputsKey = key;
    $("#inputs thead").innerHTML = "<tr><th scope=\"col\">input</th><th scope=\"col\">value</th>"
      + columns.map((c) => `<th scope="col">∂${escape(c)}/∂input</th>`).join("") + "</tr>";
    $("#inputs tbody").innerHTML = "";
    for (const input of a.inputs) $("#inputs tbody").append(inputRow(input, columns));
  }
  for (const input of a.inputs) {
    const row = $("#inputs tbody").querySelector(`tr[data-name="${CSS.escape(input.name)}"]`);
    const value = evaluation ? evaluation.inputs[input.name] : state.at[input.name] ?? input.default;
    setControls(row, input, value);
    columns.forEach((c, k) => {
      const g = evaluation.gradients[c][input.name];
      row.querySelectorAll("td.gradient")[k].textContent = g === undefined ? "" : shown_(g);
    });
  }
  const missing = a.missing || [];
  $("#missing").hidden = !missing.length;
  $("#missing").textContent = missing.length
    ? `No value for ${missing.join(", ")}: give one below to see the values and gradients.` : "";
  $("#outputs tbody").innerHTML = evaluation ? Object.entries(evaluation.outputs).map(([name, v]) =>
    `<tr><th scope="row">${escape(name)}</th><td class="number">${escape(shown_(v))}</td></tr>`).join("") : "";
}

function inputRow(input, columns) {
  const row = document.createElement("tr");
  row.dataset.name = input.name;
  const id = `input-${input.name}`;
  const scalar = input.shape.length === 0;
  row.innerHTML = `<th scope="row"><label for="${id}">${escape(input.name)}`
    + (scalar ? "" : `[${input.shape.join(", ")}]`) + `</label></th><td><div class="value-cell">`
    + (scalar
      ? `<input type="number" id="${id}" step="any"><input type="range" aria-label="${escape(input.name)} (slider)">`
      : `<textarea id="${id}" rows="2" spellcheck="false" aria-describedby="${id}-help"></textarea>`
        + `<span id="${id}-help" class="note">JSON, shape [${input.shape.join(", ")}]</span>`)
    + "</div></td>" + columns.map(() => `<td class="gradient${scalar ? "" : " bus"}"></td>`).join("");
  const field = row.querySelector(`#${CSS.escape(id)}`);
  const slider = row.querySelector("input[type=range]");
  const given = (value) => { state.at[input.name] = value; scheduleShow(scalar ? 0 : DEBOUNCE_MS); };
  field.addEventListener("input", () => {
    let value;
    try { value = scalar ? numberOf(field.value) : JSON.parse(field.value); } catch { value = undefined; }
    field.setAttribute("aria-invalid", String(value === undefined));
    if (value === undefined) return;
    if (slider) centerSlider(slider, value);
    given(value);
  });
  slider?.addEventListener("input", () => {
    field.value = slider.value;
    field.setAttribute("aria-invalid", "false");
    given(Number(slider.value));
  });
  return row;
}

function numberOf(text) {
  if (text.trim() === "" || !Number.isFinite(Number(text))) throw new Error("not a number");
  return Number(text);
}

// A slider around `value`, re-centred only when the value leaves its range.
function centerSlider(slider, value) {
  if (slider.dataset.set && value >= Number(slider.min) && value <= Number(slider.max)) return;
  const reach = Math.max(1, 2 * Math.abs(value));
  slider.min = String(value - reach);
  slider.max = String(value + reach);
  slider.step = String(reach / 100);
  slider.dataset.set = "1";
}

function setControls(row, input, value) {
  const field = row.querySelector("input[type=number], textarea");
  const slider = row.querySelector("input[type=range]");
  const active = document.activeElement;
  if (value === null || value === undefined) return;
  if (field !== active && field.getAttribute("aria-invalid") !== "true") {
    field.value = input.shape.length ? JSON.stringify(value) : String(value);
  }
  if (slider && slider !== active) {
    centerSlider(slider, value);
    slider.value = String(value);
  }
}

// -- the generated module -------------------------------------------------------------

function renderModule(code) {
  $("#module").innerHTML = code.split("\n").map((line) => escape(line).replace(
    /# line (\d+)/g, (_, n) => `<button type="button" class="line-link" data-line="${n}">`
      + `# line ${n}</button>`)).join("\n");
}

// -- the address ------------------------------------------------------------------------

function exampleText(path) {
  return config.circuits.find((c) => c.path === path)?.text;
}

function saveToAddress() {
  const params = new URLSearchParams();
  if (state.example && exampleText(state.example) === editor.value) {
    params.set("example", state.example);
  } else {
    params.set("code", editor.value);
    if (state.name !== "circuit.circ") params.set("name", state.name);
  }
  if (Object.keys(state.at).length) params.set("at", JSON.stringify(state.at));
  history.replaceState(null, "", "#" + params.toString());
}

function loadFromAddress() {
  const params = new URLSearchParams(location.hash.slice(1));
  const example = params.get("example");
  let text = params.get("code");
  state.example = "";
  state.name = params.get("name") || "circuit.circ";
  if (text === null) {
    const path = example !== null && exampleText(example) !== undefined ? example : config.circuits[0]?.path;
    text = path ? exampleText(path) : "";
    if (path) {
      state.example = path;
      state.name = path.split("/").pop();
    }
  }
  try { state.at = JSON.parse(params.get("at") || "{}"); } catch { state.at = {}; }
  $("#menu").value = state.example;
  $("#report").innerHTML = "";
  editor.value = text;
  inputsKey = "";
  show();
}

// -- start ------------------------------------------------------------------------------

async function start() {
  config = await (await fetch("config.json")).json();
  for (const { path } of config.circuits) {
    $("#menu").append(new Option(path, path));
  }
  editor = new Editor($(".editor"), config.tokens, () => scheduleShow());
  $("#menu").addEventListener("change", () => {
    const path = $("#menu").value;
    if (!path) return;
    state.example = path;
    state.name = path.split("/").pop();
    state.at = {};
    $("#report").innerHTML = "";
    editor.value = exampleText(path);
    show();
  });
  $("#copy-link").addEventListener("click", async () => {
    saveToAddress();
    try {
      await navigator.clipboard.writeText(location.href);
      setStatus("Link copied: it opens this circuit at these inputs.");
    } catch {
      setStatus("The address bar holds the link to this circuit.");
    }
  });
  $("#reset").addEventListener("click", () => { state.at = {}; inputsKey = ""; show(); });
  for (const radio of document.querySelectorAll("input[name=view]")) {
    radio.addEventListener("change", () => { state.elements = radio.value === "elements"; show(); });
  }
  $("#target").addEventListener("change", () => { state.target = $("#target").value; show(); });
  $("#module").addEventListener("click", (e) => {
    const line = e.target.closest(".line-link")?.dataset.line;
    if (line) editor.goToLine(Number(line));
  });
  for (const button of document.querySelectorAll("[data-method]")) {
    button.addEventListener("click", () => climb(button.dataset.method));
  }
  $("#verify").addEventListener("click", () => {
    $("#report").innerHTML = "<p class=\"note\">Verifying…</p>";
    ask(request("verify"), (a) => report(a, (r) => r.html));
  });
  window.addEventListener("hashchange", loadFromAddress);
  loadFromAddress();
}

function climb(method) {
  const stepSize = Number($("#step-size").value);
  const seed = Math.trunc(Number($("#seed").value) || 0);
  ask(request("step", { method, step_size: stepSize, seed, minimize: $("#minimize").checked }), (a) => {
    report(a, (r) => r.html);
    if (a.ok) {
      state.at = a.after;
      show();
    }
  });
}

function report(a, html) {
  $("#report").innerHTML = a.ok ? html(a) : "";
  if (!a.ok) renderDiagnostics(a.diagnostics);
}

start();
