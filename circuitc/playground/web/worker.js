// The playground's worker: circuitc under Pyodide, and Graphviz, off the page's thread,
// so the page never freezes while a circuit compiles or a picture is laid out.
//
// It loads everything from the site itself: Pyodide from vendor/pyodide/, circuitc and
// Lark from python.zip (unpacked into Pyodide's file system), Graphviz from
// vendor/graphviz.js. Each message {id, request} is answered by {id, answer} (the
// answer of circuitc.playground.session.handle, with `svg` for its dot), or by
// {id, error} for a fault of the playground itself.

import { loadPyodide } from "./vendor/pyodide/pyodide.mjs";
import { Graphviz } from "./vendor/graphviz.js";

const SITE_PACKAGES = "/home/pyodide/circuitc-playground";

// Milliseconds since the worker started to each stage of its start, for the page's
// measurements (window.playgroundTimes.worker).
const started = {};
const stage = (name) => (value) => { started[name] = Math.round(performance.now()); return value; };

const ready = (async () => {
  const [pyodide, python, graphviz] = await Promise.all([
    loadPyodide({ indexURL: new URL("./vendor/pyodide/", import.meta.url).href }).then(stage("pyodide")),
    fetch(new URL("./python.zip", import.meta.url)).then((r) => {
      if (!r.ok) throw new Error(`python.zip: ${r.status}`);
      return r.arrayBuffer();
    }),
    Graphviz.load().then(stage("graphviz")),
  ]);
  pyodide.unpackArchive(python, "zip", { extractDir: SITE_PACKAGES });
  pyodide.runPython(`
import os, sys
sys.path.insert(0, ${JSON.stringify(SITE_PACKAGES)})
os.environ["CIRCUITC_CACHE"] = "0"  # nothing to gain from a compile cache in memory
import circuitc.playground.session
`);
  stage("circuitc")();
  return { handle: pyodide.pyimport("circuitc.playground.session").handle, graphviz };
})();

ready.then(() => postMessage({ ready: started }), (e) => postMessage({ failed: String(e) }));

onmessage = async ({ data: { id, request } }) => {
  try {
    const { handle, graphviz } = await ready;
    const answer = JSON.parse(handle(JSON.stringify(request)));
    if (answer.dot) {
      try {
        answer.svg = graphviz.dot(answer.dot);
      } catch (e) {
        answer.draw_error = `Graphviz could not lay out the drawing: ${e}`;
      }
    }
    postMessage({ id, answer });
  } catch (e) {
    postMessage({ id, error: String(e) });
  }
};
