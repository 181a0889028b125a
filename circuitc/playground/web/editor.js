// The .circ editor: a plain <textarea> over a highlighted copy of its text, with line
// numbers beside it and the places of errors and warnings underlined.
//
// Highlighting uses circuitc's own token rules (circuitc/tokens.py, the Pygments
// lexer's table, shipped in config.json): at each position the first rule whose
// pattern matches gives the token, as Pygments' RegexLexer does.

export function compileRules(rules) {
  return rules.map(([pattern, token]) => [new RegExp(pattern, "my"), token]);
}

// [[token, text], ...] covering `text`, as Pygments' RegexLexer yields them: a
// character no rule matches is an Error token of its own.
export function tokenize(text, rules) {
  const out = [];
  let pos = 0;
  while (pos < text.length) {
    let matched = false;
    for (const [re, token] of rules) {
      re.lastIndex = pos;
      const m = re.exec(text);
      if (!m || m[0].length === 0) continue;
      if (Array.isArray(token)) {
        token.forEach((t, k) => { if (m[k + 1]) out.push([t, m[k + 1]]); });
      } else {
        out.push([token, m[0]]);
      }
      pos += m[0].length;
      matched = true;
      break;
    }
    if (!matched) {
      out.push([text[pos] === "\n" ? "Text.Whitespace" : "Error", text[pos]]);
      pos += 1;
    }
  }
  return out;
}

const escapes = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };
const escape = (s) => s.replace(/[&<>]/g, (c) => escapes[c]);
const cssClass = (token) => "t-" + token.replace(/\./g, "-");

// The offset in `text` of a 1-based line and column.
function offset(lineStarts, line, column) {
  const start = lineStarts[Math.min(line, lineStarts.length) - 1] ?? 0;
  return start + column - 1;
}

export class Editor {
  constructor(root, rules, onEdit) {
    this.rules = compileRules(rules);
    this.textarea = root.querySelector("textarea");
    this.pre = root.querySelector(".highlight");
    this.gutter = root.querySelector(".gutter");
    this.marks = [];
    this.textarea.addEventListener("input", () => { this.render(); onEdit(this.value); });
    this.render();
  }

  get value() { return this.textarea.value; }

  set value(text) { this.textarea.value = text; this.render(); }

  // Underline these places: [{severity, span: [line, column, endLine, endColumn]}].
  mark(diagnostics) {
    this.marks = diagnostics.filter((d) => d.span);
    this.textarea.setAttribute("aria-invalid", String(diagnostics.some((d) => d.severity === "error")));
    this.render();
  }

  // Put the cursor on a line (1-based) and select it.
  goToLine(line) {
    const lines = this.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
    this.textarea.focus();
    this.textarea.setSelectionRange(start, start + (lines[line - 1] ?? "").length);
    const lineHeight = parseFloat(getComputedStyle(this.textarea).lineHeight) || 20;
    this.textarea.closest(".editor").scrollTop = Math.max(0, (line - 3) * lineHeight);
  }

  render() {
    const text = this.value;
    const lines = text.split("\n");
    const lineStarts = [];
    lines.reduce((n, l) => { lineStarts.push(n); return n + l.length + 1; }, 0);
    // Each character's mark: "error" or "warning" where a diagnostic's span covers it.
    const marked = new Map();
    const badLines = new Map();
    for (const { severity, span: [line, column, endLine, endColumn] } of this.marks) {
      const from = offset(lineStarts, line, column);
      const to = Math.max(from + 1, offset(lineStarts, endLine, endColumn));
      for (let k = from; k < to && k < text.length; k++) {
        if (marked.get(k) !== "error") marked.set(k, severity);
      }
      if (badLines.get(line) !== "error") badLines.set(line, severity);
    }
    let html = "";
    let pos = 0;
    for (const [token, value] of tokenize(text, this.rules)) {
      let run = "";
      let mark = marked.get(pos);
      const flush = () => {
        if (!run) return;
        const inner = `<span class="${cssClass(token)}">${escape(run)}</span>`;
        html += mark ? `<span class="mark-${mark}">${inner}</span>` : inner;
        run = "";
      };
      for (const c of value) {
        const here = marked.get(pos);
        if (here !== mark) { flush(); mark = here; }
        run += c;
        pos += c.length;
      }
      flush();
    }
    // A final newline needs a character after it to take up its line.
    this.pre.innerHTML = html + "\n";
    this.gutter.innerHTML = lines.map((_, k) => {
      const bad = badLines.get(k + 1);
      return bad ? `<span class="gutter-${bad}" title="${bad}">${k + 1}</span>` : `${k + 1}`;
    }).join("\n");
    const widest = Math.max(...lines.map((l) => l.length));
    this.textarea.style.width = `max(100%, ${widest + 2}ch)`;
    this.textarea.rows = Math.max(lines.length, 6);
  }
}
