/*
 * explorer_core.js: what every course explorer shares (one copy, in the helper package).
 *
 * attention_course.views.explorer.Explorer builds each widget's ES module as
 *     this file + "\n" + static/explorers/<kind>.js
 * so a kind file sees the object `core` below and ends with
 *     export default { render({ model, el }) { ... } };
 * The same module runs in JupyterLab/Notebook and Colab (anywidget, a kernel behind it) and in
 * the static book (anywidget's AMD front-end served by the book, state saved in the page).
 *
 * Texts: the module defines `const STRINGS = {en: {...}, "zh-CN": {...}}`, the `core` and kind sections
 * of static/strings.json, after this file (Python's explorer.build_esm puts them there; explorer.say reads the same file).
 *   speak(model) -> t         call first in render: chooses the language (language(model)) for this explorer
 *                             and the core's controls made after it; t(key, fields) is the text `key` in it.
 *   language(model)           "en" or "zh-CN": in the static book the page's <html lang> (both editions
 *                             embed the same saved state); with a kernel the data's `language` (the
 *                             notebook's, attention_course.env.course_language), else the page's.
 *   t(key, fields)            the text in the language last chosen by speak: "{name}" filled from fields;
 *                             {one, other} forms chosen by fields.n; a missing key falls back to English.
 *
 * API (all names on `core`):
 *   COLORS                      the course colours {main, highlight, muted} (= plotting.COLORS)
 *   h(tag, attrs, ...children)  make an HTML element; attrs: {class, text, on: {event: fn}, ...}
 *   svg(tag, attrs, ...kids)    make an SVG element (same rules)
 *   uid(prefix)                 a page-unique id (for label/for, aria-describedby)
 *   frame(el, {title, description, kind})
 *        -> {root, controls, figure, readout, note}: the explorer's box. `root` is a
 *           role=group named by `title`, with data-kind=kind (pass model.get("kind"); the
 *           browser tests find explorers by it); `readout` is aria-live; `figure` holds the
 *           drawing (the tests compare screenshots of it before and after each control).
 *           root.dataset.result: set it (JSON) to expose what was computed (tests read it).
 *   slider({label, min, max, step, value, format, onInput, valueText})
 *        -> {element, input, value (get/set)}; a labelled <input type=range> with an <output>.
 *           `format(v)` prints the readout and aria-valuetext.
 *   choiceSlider({label, options, value, onInput})  range over a list of values (e.g. d_k).
 *   select({label, options: [{value, label}], value, onChange}) -> {element, input, value}
 *   stepper({label, count, value, format, onChange}) -> previous/next buttons and a range.
 *   textBox({label, placeholder, onSubmit, disabledReason, button})
 *        -> labelled text input; Enter calls onSubmit(text). With `disabledReason` the input is
 *           disabled and the reason is shown beside it (and linked by aria-describedby). With
 *           `button` (its text, e.g. "Translate") a button beside it submits too; it is enabled
 *           while the box holds text.
 *   ownInput(model, ui, {label, placeholder, button, disabledReason, check, find, choose, here,
 *                        ask, waiting, noKernel})
 *        -> {element, input, update(data), refuse(text, message)}: the "your own input" box of every explorer that has
 *           one. A submitted text (trimmed) is refused with check(text)'s message, if any (in the
 *           note and root.dataset.result = {source, error}); if find(text) >= 0 it is a choice
 *           already and choose(k) shows it; else here(text, current) computes it in the page
 *           when given (current() is false once the reader submitted something newer); else the
 *           kernel is asked ({type: ask, text}; the note says waiting(text)) and Python's
 *           Explorer.accept_typed answers with new data. Call update(data) from onData once the
 *           choices are refreshed: it shows the answer (choose(find(text))) or Python's error.
 *   checkbox({label, value, onChange})
 *   heatmap(matrix, {rowLabels, colLabels, cell, vmax, title, label, highlight, labelChars})
 *        -> an <svg role=img>: cells filled with the main colour, opacity = value / vmax.
 *   bars(values, {labels, vmax, width, highlight, label, horizontal, format, labelChars})
 *        -> an <svg role=img> bar chart (largest bar in the highlight colour by default).
 *   softmax(xs), dot(a, b), norm(a), entropy(p), argmax(xs)
 *   decodeUnit(b64, shape)      weights sent by Python's explorer.encode_unit (uint8, /255)
 *        -> nested arrays of floats in [0, 1] of the given shape.
 *   isStatic()                  true in the static book (saved widget state, no kernel).
 *   staticUrl(path)             absolute URL of <book>/_static/<path> (files the book serves,
 *                               e.g. .onnx models); uses <html data-content_root>.
 *   send(model, message)        model.send, guarded (returns false when no kernel can receive).
 * The kernel (live in Jupyter or Colab), both ways:
 *   ask(model, message)         page -> kernel: send {...message, request: id}; returns the id
 *                               (0 when no kernel can receive).
 *   onData(model, fn)           kernel -> page, the ONE channel: Python assigns new `data` (new
 *                               choices, or the answer to a request: Explorer.answer); fn(data).
 *   answerTo(data, id)          data.answer if it answers request `id` ({type, request, error?,
 *                               ...}), else null.
 *   fmt(x, digits)              number with fixed digits, minus sign as U+2212.
 *   truncate(text, n)           shorten with an ellipsis.
 * Styling lives in static/explorer.css (class names ac-*); it follows the book's dark mode
 * (html[data-theme=dark]) and JupyterLab's (body[data-jp-theme-light=false]).
 */
const core = (() => {
  "use strict";
  const COLORS = { main: "#3b6ea8", highlight: "#d1495b", muted: "#9aa5b1" };
  const SVG_NS = "http://www.w3.org/2000/svg";
  let counter = 0;

  // ---- texts ------------------------------------------------------------------------------------
  let speaking = "en";
  function language(model) {
    const data = model && model.get ? model.get("data") : null;
    const chosen = !isStatic() && data && data.language ? data.language : document.documentElement.lang || "";
    return /^zh/i.test(chosen) ? "zh-CN" : "en";
  }
  function translator(lang) {
    const table = STRINGS[lang] || STRINGS.en;
    return (key, fields = {}) => {
      let value = key in table ? table[key] : STRINGS.en[key];
      if (value === undefined) return key;
      if (typeof value === "object") value = fields.n === 1 ? value.one : value.other;
      return value.replace(/\{(\w+)\}/g, (all, name) => (name in fields ? String(fields[name]) : all));
    };
  }
  const t = (key, fields) => translator(speaking)(key, fields);
  function speak(model) {
    speaking = language(model);
    return translator(speaking);
  }

  function uid(prefix) {
    counter += 1;
    return `ac-${prefix || "x"}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
  }

  function build(element, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") element.textContent = value;
      else if (key === "on") for (const [event, fn] of Object.entries(value)) element.addEventListener(event, fn);
      else element.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      element.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return element;
  }
  const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  const svg = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

  function fmt(x, digits = 2) {
    return Number(x).toFixed(digits).replace(/^-/, "\u2212");
  }
  function truncate(text, n) {
    text = String(text);
    return text.length <= n ? text : text.slice(0, n - 1) + "\u2026";
  }

  // ---- maths ------------------------------------------------------------------------------
  function softmax(xs) {
    const m = Math.max(...xs);
    const e = xs.map((x) => Math.exp(x - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  }
  function dot(a, b) {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i] * b[i];
    return s;
  }
  const norm = (a) => Math.sqrt(dot(a, a));
  const entropy = (p) => p.reduce((s, x) => (x > 0 ? s - x * Math.log(x) : s), 0);
  const argmax = (xs) => xs.reduce((best, x, i) => (x > xs[best] ? i : best), 0);

  function decodeUnit(b64, shape) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const expected = shape.reduce((a, b) => a * b, 1);
    if (bytes.length !== expected) throw new Error(`decodeUnit: ${bytes.length} values for shape ${shape}`);
    let offset = 0;
    const nest = (depth) => {
      const out = new Array(shape[depth]);
      for (let i = 0; i < shape[depth]; i++) {
        if (depth === shape.length - 1) out[i] = bytes[offset++] / 255;
        else out[i] = nest(depth + 1);
      }
      return out;
    };
    return nest(0);
  }

  // ---- environment ---------------------------------------------------------------------------
  function isStatic() {
    return document.querySelector('script[type="application/vnd.jupyter.widget-state+json"]') !== null;
  }
  function staticUrl(path) {
    const root = document.documentElement.dataset.content_root || "./";
    return new URL(root + "_static/" + path.replace(/^\/+/, ""), document.baseURI).href;
  }
  function send(model, message) {
    if (isStatic()) return false;
    try {
      model.send(message);
      return true;
    } catch (error) {
      return false;
    }
  }

  let requests = 0;
  function ask(model, message) {
    requests += 1;
    return send(model, { ...message, request: requests }) ? requests : 0;
  }
  function onData(model, fn) {
    model.on("change:data", () => fn(model.get("data")));
  }
  function answerTo(data, id) {
    const answer = data && data.answer;
    return id && answer && answer.request === id ? answer : null;
  }

  // ---- layout and controls ----------------------------------------------------------------
  function frame(el, { title, description, kind } = {}) {
    const titleId = uid("title");
    const root = h("div", { class: "ac-explorer", role: "group", "aria-labelledby": titleId, "data-kind": kind, lang: speaking });
    const heading = h("p", { class: "ac-title", id: titleId, text: title || t("explorer") });
    const intro = description ? h("p", { class: "ac-description", text: description }) : null;
    const controls = h("div", { class: "ac-controls" });
    const figure = h("div", { class: "ac-figure" });
    const readout = h("p", { class: "ac-readout", "aria-live": "polite" });
    const note = h("p", { class: "ac-note" });
    root.append(heading, ...(intro ? [intro] : []), controls, figure, readout, note);
    el.replaceChildren(root);
    return { root, controls, figure, readout, note };
  }

  function control(label, input, extra) {
    const id = input.id || uid("in");
    input.id = id;
    const labelEl = h("label", { for: id, class: "ac-label", text: label });
    return h("div", { class: "ac-control" }, labelEl, input, extra || null);
  }

  function slider({ label, min, max, step = 1, value, format = (v) => String(v), onInput }) {
    const input = h("input", { type: "range", min, max, step, value, class: "ac-range" });
    const output = h("output", { class: "ac-value", for: "" });
    const wrap = control(label, input, output);
    output.setAttribute("for", input.id);
    const show = () => {
      const v = Number(input.value);
      output.textContent = format(v);
      input.setAttribute("aria-valuetext", format(v));
    };
    input.value = value;
    show();
    input.addEventListener("input", () => {
      show();
      onInput && onInput(Number(input.value));
    });
    return {
      element: wrap,
      input,
      get value() { return Number(input.value); },
      set value(v) { input.value = v; show(); },
    };
  }

  function choiceSlider({ label, options, value, format = (v) => String(v), onInput }) {
    const index = Math.max(0, options.indexOf(value));
    const s = slider({
      label, min: 0, max: options.length - 1, step: 1, value: index,
      format: (i) => format(options[i]), onInput: (i) => onInput && onInput(options[i]),
    });
    return {
      element: s.element,
      input: s.input,
      get value() { return options[s.value]; },
      set value(v) { s.value = Math.max(0, options.indexOf(v)); },
    };
  }

  function select({ label, options, value, onChange }) {
    const input = h("select", { class: "ac-select" },
      options.map((o) => h("option", { value: String(o.value), text: o.label })));
    input.value = String(value);
    input.addEventListener("change", () => onChange && onChange(input.value));
    const wrap = control(label, input);
    return {
      element: wrap,
      input,
      get value() { return input.value; },
      set value(v) { input.value = String(v); },
      setOptions(newOptions, v) {
        input.replaceChildren(...newOptions.map((o) => h("option", { value: String(o.value), text: o.label })));
        input.value = String(v);
      },
    };
  }

  function stepper({ label, count, value = 0, format, onChange }) {
    const say = translator(speaking);  // the language of the explorer being built, also for later redraws
    format = format || ((i, n) => say("of", { i: i + 1, n }));
    let n = count;
    const s = slider({ label, min: 0, max: Math.max(0, n - 1), step: 1, value, format: (i) => format(i, n), onInput: (i) => { edges(); onChange && onChange(i); } });
    const go = (delta) => {
      const next = Math.min(n - 1, Math.max(0, s.value + delta));
      if (next !== s.value) {
        s.value = next;
        edges();
        onChange && onChange(next);
      }
    };
    const prev = h("button", { type: "button", class: "ac-button", "aria-label": t("previous", { label }), text: "\u25c0", on: { click: () => go(-1) } });
    const next = h("button", { type: "button", class: "ac-button", "aria-label": t("next", { label }), text: "\u25b6", on: { click: () => go(1) } });
    // At either end the button that cannot move is disabled (and says so to a screen reader).
    const edges = () => {
      prev.disabled = s.value <= 0;
      next.disabled = s.value >= n - 1;
    };
    s.element.insertBefore(prev, s.input);
    s.element.insertBefore(next, s.input.nextSibling);
    edges();
    return {
      element: s.element,
      input: s.input,
      buttons: [prev, next],
      get value() { return s.value; },
      set value(v) { s.value = v; edges(); },
      setCount(newCount, v = 0) {
        n = newCount;
        s.input.max = String(Math.max(0, n - 1));
        s.value = Math.min(v, Math.max(0, n - 1));
        edges();
      },
    };
  }

  function textBox({ label, placeholder = "", onSubmit, disabledReason, button }) {
    const input = h("input", { type: "text", class: "ac-text", placeholder, disabled: Boolean(disabledReason) });
    let reason = null;
    if (disabledReason) {
      const reasonId = uid("why");
      reason = h("span", { class: "ac-reason", id: reasonId, text: disabledReason });
      input.setAttribute("aria-describedby", reasonId);
    }
    const submit = () => input.value.trim() && onSubmit && onSubmit(input.value.trim());
    input.addEventListener("keydown", (event) => { if (event.key === "Enter") submit(); });
    const element = control(label, input, reason);
    if (button) {
      const go = h("button", { type: "button", class: "ac-button", text: button, disabled: true, on: { click: submit } });
      input.addEventListener("input", () => { go.disabled = input.disabled || !input.value.trim(); });
      element.append(go);
    }
    return { element, input };
  }

  function ownInput(model, ui, { check, find, choose, here, ask: type, waiting, noKernel, ...box }) {
    let latest = 0;     // submissions so far: a newer one makes older answers stale
    let asked = 0;      // the kernel request awaiting its answer
    let text = null;
    const refuse = (source, message) => {
      ui.note.textContent = message;
      ui.root.dataset.result = JSON.stringify({ source, error: message });
    };
    function submit(source) {
      const me = ++latest;
      asked = 0;
      const bad = check && check(source);
      if (bad) return refuse(source, bad);
      const known = find(source);
      if (known >= 0) { ui.note.textContent = ""; return choose(known); }
      if (here) return here(source, () => me === latest);
      text = source;
      asked = ask(model, { type, text: source });
      if (asked) ui.note.textContent = waiting(source);
      else refuse(source, noKernel);
    }
    const say = translator(speaking);
    const { element, input } = textBox({ ...box, onSubmit: submit });
    element.classList.add("ac-control-wide");
    function update(data) {
      const answer = answerTo(data, asked);
      if (!answer) return;
      asked = 0;
      if (answer.error) return refuse(text, say("python_error", { error: answer.error }));
      const k = find(text);
      if (k >= 0) { ui.note.textContent = ""; choose(k); }
    }
    return { element, input, update, refuse };
  }

  function checkbox({ label, value = false, onChange }) {
    const input = h("input", { type: "checkbox", class: "ac-check" });
    input.checked = value;
    input.addEventListener("change", () => onChange && onChange(input.checked));
    const wrap = control(label, input);
    wrap.classList.add("ac-control-check");
    return { element: wrap, input, get value() { return input.checked; }, set value(v) { input.checked = v; } };
  }

  // ---- drawings ---------------------------------------------------------------------------
  // PNG data URL of a heatmap's cells: pixel (i, j) is the main colour with opacity value / vmax.
  function cellImage(matrix, vmax) {
    const rows = matrix.length;
    const cols = matrix[0].length;
    const canvas = h("canvas", { width: cols, height: rows });
    const context = canvas.getContext("2d");
    const image = context.createImageData(cols, rows);
    const rgb = [1, 3, 5].map((k) => parseInt(COLORS.main.slice(k, k + 2), 16));
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        const k = 4 * (i * cols + j);
        image.data.set(rgb, k);
        image.data[k + 3] = Math.round(255 * Math.max(0, Math.min(1, matrix[i][j] / vmax)));
      }
    }
    context.putImageData(image, 0, 0);
    return canvas.toDataURL("image/png");
  }

  function heatmap(matrix, { rowLabels = [], colLabels = [], cell = 22, vmax = 1, title, label, highlight, labelChars = 12, showLabels = true } = {}) {
    const rows = matrix.length;
    const cols = rows ? matrix[0].length : 0;
    const left = showLabels && rowLabels.length ? 7 * Math.min(labelChars, Math.max(...rowLabels.map((s) => String(s).length))) + 8 : 2;
    const top = (title ? 18 : 2) + (showLabels && colLabels.length ? 7 * Math.min(labelChars, Math.max(...colLabels.map((s) => String(s).length))) + 8 : 0);
    const width = left + cols * cell + 2;
    const height = top + rows * cell + 2;
    const root = svg("svg", { class: "ac-svg ac-heatmap", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label || title || t("heatmap") });
    if (title) root.append(svg("text", { x: left, y: 13, class: "ac-svg-title", text: title }));
    const grid = svg("g", { transform: `translate(${left},${top})` });
    grid.append(svg("rect", { x: 0, y: 0, width: cols * cell, height: rows * cell, class: "ac-cell-bg" }));
    if (rows && cols) {
      // The cells are one picture (one pixel per cell, scaled up without smoothing), not one
      // <rect> each: a layer's twelve maps or a long alignment then redraw in a few milliseconds.
      grid.append(svg("image", { href: cellImage(matrix, vmax), x: 0, y: 0, width: cols * cell, height: rows * cell,
                                 preserveAspectRatio: "none", class: "ac-cells" }));
    }
    if (highlight !== undefined && highlight !== null && highlight >= 0 && highlight < rows) {
      grid.append(svg("rect", { x: 0, y: highlight * cell, width: cols * cell, height: cell, class: "ac-row-highlight" }));
    }
    root.append(grid);
    if (showLabels) {
      rowLabels.forEach((s, i) => root.append(svg("text", { x: left - 4, y: top + i * cell + cell / 2 + 4, "text-anchor": "end", class: "ac-svg-label", text: truncate(s, labelChars) })));
      colLabels.forEach((s, j) => {
        const x = left + j * cell + cell / 2 + 4;
        root.append(svg("text", { x, y: top - 4, transform: `rotate(-90 ${x} ${top - 4})`, class: "ac-svg-label", text: truncate(s, labelChars) }));
      });
    }
    return root;
  }

  function bars(values, { labels = [], vmax = 1, width = 420, bar = 20, highlight, label, title, format = (v) => fmt(v, 2), labelChars = 44, colors } = {}) {
    const best = highlight === undefined ? argmax(values) : highlight;
    const left = labels.length ? 6.4 * Math.min(labelChars, Math.max(...labels.map((s) => String(s).length))) + 10 : 4;
    const plotWidth = width - left - 44;
    const top = title ? 20 : 2;
    const height = top + values.length * bar + 4;
    const root = svg("svg", { class: "ac-svg ac-bars", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label || title || t("bar_chart") });
    if (title) root.append(svg("text", { x: 0, y: 13, class: "ac-svg-title", text: title }));
    values.forEach((v, i) => {
      const y = top + i * bar;
      const w = Math.max(0, Math.min(1, v / vmax)) * plotWidth;
      const colour = colors ? colors[i] : i === best ? COLORS.highlight : COLORS.muted;
      root.append(svg("rect", { x: left, y: y + 3, width: w.toFixed(2), height: bar - 6, fill: colour, class: "ac-bar" }));
      if (labels.length) root.append(svg("text", { x: left - 6, y: y + bar / 2 + 4, "text-anchor": "end", class: "ac-svg-label", text: truncate(labels[i], labelChars) }));
      root.append(svg("text", { x: left + w + 4, y: y + bar / 2 + 4, class: "ac-svg-label", text: format(v) }));
    });
    return root;
  }

  return {
    COLORS, speak, language, t, h, svg, uid, fmt, truncate, softmax, dot, norm, entropy, argmax, decodeUnit,
    isStatic, staticUrl, send, ask, onData, answerTo, frame, slider, choiceSlider, select, stepper,
    textBox, ownInput, checkbox, heatmap, bars,
  };
})();
