/*
 * Chapter 8: tiled attention with an online softmax, stepped block by block (FlashAttention's
 * trick; Dao et al. 2022, Algorithm 1). Python: attention_course.views.online_softmax_viewer.widget();
 * the maths is attention_course.maths.online_softmax.tiled_attention, which this file recomputes in
 * float64 (tests/browser/test_online_softmax_explorer.py compares every step with Python's trace).
 *
 * data: {q[n][d_k], k[N][d_k], v[N][d_v], scale, causal, block_sizes[], query_labels[n],
 *        key_labels[N], value_labels[d_v]}
 * controls: {block_size, step (0-based block), query (row read out)}
 * root.dataset.result: {block_size, step, query, steps: [{block, start, stop, m, l, rescale,
 *        unnormalised, output}], output, naive, relative_error (this step's partial output against naive
 *        attention), final_error (the last step's), tolerance}
 */

const FLOAT64_EPS = Math.pow(2, -52);

// Causal: query i sits at position N - n + i and may attend to keys j <= N - n + i (Python: attention_mask).
function allowed(i, j, n, N, causal) {
  return !causal || j <= N - n + i;
}

/* Tiled attention over blocks of keys, as attention_course.maths.online_softmax.tiled_attention:
 * per block, m_new = max(m, rowmax(S)); c = exp(m - m_new); l = c l + sum exp(S - m_new);
 * o = c o + exp(S - m_new) V_block; the partial output is o / l. Returns {steps, output}. */
export function tiledAttention(q, k, v, blockSize, causal, scale) {
  const n = q.length, N = k.length, dv = v[0].length;
  if (!(Number.isInteger(blockSize) && blockSize >= 1)) throw new Error(`block size must be a positive integer; got ${blockSize}`);
  let m = new Array(n).fill(-Infinity);
  let l = new Array(n).fill(0);
  let o = q.map(() => new Array(dv).fill(0));
  const steps = [];
  for (let start = 0, block = 0; start < N; start += blockSize, block++) {
    const stop = Math.min(start + blockSize, N);
    const scores = q.map((qi, i) => {
      const row = [];
      for (let j = start; j < stop; j++) row.push(allowed(i, j, n, N, causal) ? scale * core.dot(qi, k[j]) : -Infinity);
      return row;
    });
    const blockMax = scores.map((row) => Math.max(...row));
    const mNew = m.map((mi, i) => Math.max(mi, blockMax[i]));
    const reference = mNew.map((x) => (Number.isFinite(x) ? x : 0)); // no allowed key yet: every term is 0
    const rescale = m.map((mi, i) => Math.exp(mi - reference[i])); // exp(m_old - m_new) <= 1; 0 at the start
    const p = scores.map((row, i) => row.map((s) => Math.exp(s - reference[i])));
    l = l.map((li, i) => rescale[i] * li + p[i].reduce((a, b) => a + b, 0));
    o = o.map((oi, i) => oi.map((x, c) => {
      let sum = 0;
      for (let j = start; j < stop; j++) sum += p[i][j - start] * v[j][c];
      return rescale[i] * x + sum;
    }));
    steps.push({
      block, start, stop, scores, block_max: blockMax, m_old: m, m: mNew, rescale, l,
      unnormalised: o, output: o.map((oi, i) => oi.map((x) => x / l[i])),
    });
    m = mNew;
  }
  return { steps, output: steps[steps.length - 1].output };
}

/* softmax(scale q kᵀ) v with the whole score row at once (a stable softmax): the reference. */
export function naiveAttention(q, k, v, causal, scale) {
  const n = q.length, N = k.length;
  return q.map((qi, i) => {
    const w = core.softmax(k.map((kj, j) => (allowed(i, j, n, N, causal) ? scale * core.dot(qi, kj) : -Infinity)));
    return v[0].map((_, c) => w.reduce((s, wj, j) => s + wj * v[j][c], 0));
  });
}

/* attention_course.maths.numerics: largest difference over largest magnitude, and 16 eps sqrt(reduction). */
export function relativeError(a, b) {
  const x = a.flat(), y = b.flat();
  let diff = 0, scale = 0;
  x.forEach((xi, i) => {
    diff = Math.max(diff, Math.abs(xi - y[i]));
    scale = Math.max(scale, Math.abs(xi), Math.abs(y[i]));
  });
  return scale > 0 ? diff / scale : 0;
}
export const roundingTolerance = (reduction) => 16 * FLOAT64_EPS * Math.sqrt(reduction);

const sci = (x) => (x === 0 ? "0" : x.toExponential(1).replace("e-", "e\u2212").replace("e+", "e").replace(/^-/, "\u2212"));
const vec = (xs) => "(" + xs.map((x) => core.fmt(x, 2)).join(", ") + ")";

function mount(model, el, state) {
  const data = model.get("data");
  if (!data.block_sizes.includes(state.block_size)) state.block_size = data.block_sizes[0];
  state.query = Math.min(state.query, data.query_labels.length - 1);
  const t = core.speak(model);
  const ui = core.frame(el, { kind: model.get("kind"), title: t("title"), description: t("description") });
  let result = null;
  let naive = null;
  const count = () => Math.ceil(data.k.length / state.block_size);

  const blockSize = core.choiceSlider({
    label: t("block_size"), options: data.block_sizes, value: state.block_size,
    format: (b) => t("keys", { n: b }),
    onInput: (b) => {
      const seen = result.steps[state.step].stop; // keep at least the keys already seen
      state.block_size = b;
      compute();
      state.step = Math.min(count() - 1, Math.ceil(seen / b) - 1);
      step.setCount(count(), state.step);
      draw();
    },
  });
  const step = core.stepper({
    label: t("block"), count: 1, value: 0,
    onChange: (i) => { state.step = i; draw(); },
  });
  const querySelect = core.select({
    label: t("query"), options: data.query_labels.map((t, i) => ({ value: i, label: t })), value: state.query,
    onChange: (value) => { state.query = Number(value); draw(); },
  });
  ui.controls.append(blockSize.element, step.element, querySelect.element);

  function compute() {
    result = tiledAttention(data.q, data.k, data.v, state.block_size, data.causal, data.scale);
    naive = naiveAttention(data.q, data.k, data.v, data.causal, data.scale);
  }

  function grid(s) {
    const n = data.q.length, N = data.k.length;
    const cell = 46, rowH = 24, left = 34, top = 38;
    const width = left + N * cell + 4, height = top + n * rowH + 22;
    const qi = state.query;
    const label = t("grid_label", { n, keys: N, size: state.block_size, block: s.block + 1, start: s.start + 1, stop: s.stop,
      query: data.query_labels[qi], m: core.fmt(s.m[qi]), l: core.fmt(s.l[qi]) });
    const root = core.svg("svg", { class: "ac-svg ac-online-grid", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label });
    root.append(core.svg("text", { x: left, y: 13, class: "ac-svg-title", text: t("grid_title") }));
    data.key_labels.forEach((name, j) => root.append(core.svg("text", {
      x: left + j * cell + cell / 2, y: top - 6, "text-anchor": "middle", class: "ac-svg-label" + (j >= s.stop ? " ac-future" : ""), text: core.truncate(name, 6),
    })));
    for (let i = 0; i < n; i++) {
      const y = top + i * rowH;
      root.append(core.svg("text", { x: left - 6, y: y + rowH / 2 + 4, "text-anchor": "end", class: "ac-svg-label", text: data.query_labels[i] }));
      for (let j = 0; j < N; j++) {
        const x = left + j * cell;
        const ok = allowed(i, j, n, N, data.causal);
        const score = ok ? data.scale * core.dot(data.q[i], data.k[j]) : -Infinity;
        const seen = j < s.stop;
        const shade = seen && ok ? Math.exp(score - s.m[i]) : 0;
        root.append(core.svg("rect", { x: x + 1, y: y + 1, width: cell - 2, height: rowH - 2, class: "ac-cell-bg" }));
        if (shade > 0) root.append(core.svg("rect", { x: x + 1, y: y + 1, width: cell - 2, height: rowH - 2, fill: core.COLORS.main, "fill-opacity": (0.75 * shade).toFixed(3) }));
        root.append(core.svg("text", {
          x: x + cell / 2, y: y + rowH / 2 + 4, "text-anchor": "middle",
          class: "ac-svg-label" + (seen ? "" : " ac-future") + (seen && ok && score === s.m[i] ? " ac-online-max" : ""),
          text: ok ? core.fmt(score, 2) : "\u2212\u221e",
        }));
      }
    }
    // block boundaries, the current block, the query read out
    for (let b = state.block_size; b < N; b += state.block_size) {
      root.append(core.svg("line", { x1: left + b * cell, x2: left + b * cell, y1: top - 2, y2: top + n * rowH + 2, class: "ac-axis" }));
    }
    root.append(core.svg("rect", { x: left + s.start * cell, y: top - 1, width: (s.stop - s.start) * cell, height: n * rowH + 2, class: "ac-online-block" }));
    root.append(core.svg("rect", { x: left - 30, y: top + qi * rowH, width: N * cell + 30, height: rowH, class: "ac-online-query" }));
    root.append(core.svg("text", {
      x: left + ((s.start + s.stop) / 2) * cell, y: top + n * rowH + 16, "text-anchor": "middle", class: "ac-svg-label",
      text: t("block_of", { block: s.block + 1, n: count() }),
    }));
    return root;
  }

  function table(s, last, equal) {
    const head = [t("col_query"), "m_old \u2192 m", "exp(m_old \u2212 m)", "\u2113",
      t("col_output", { stop: s.stop }), t("col_naive"), t("col_difference")];
    const rows = data.query_labels.map((name, i) => {
      const diff = Math.max(...s.output[i].map((x, c) => Math.abs(x - naive[i][c])));
      const cells = [
        name,
        s.block === 0 ? core.fmt(s.m[i]) : `${core.fmt(s.m_old[i])} \u2192 ${core.fmt(s.m[i])}`,
        s.block === 0 ? "\u2014" : core.fmt(s.rescale[i], 3),
        core.fmt(s.l[i], 3), vec(s.output[i]), vec(naive[i]), diff >= 0.01 ? core.fmt(diff, 2) : sci(diff),
      ];
      return core.h("tr", { class: i === state.query ? "ac-online-selected" : null },
        cells.map((text, c) => core.h(c === 0 ? "th" : "td", { scope: c === 0 ? "row" : null, text })));
    });
    // The table scrolls sideways inside its own box when the page is narrower than it (a phone).
    return core.h("div", { class: "ac-table-wrap" }, core.h("table", { class: "ac-table" },
      core.h("caption", { text: last ? t(equal ? "caption_equal" : "caption_differs", { n: count() })
        : t("caption_step", { block: s.block + 1, n: count(), next: s.stop + 1, keys: data.k.length }) }),
      core.h("thead", {}, core.h("tr", {}, head.map((text) => core.h("th", { scope: "col", text })))),
      core.h("tbody", {}, rows)));
  }

  function draw() {
    const s = result.steps[state.step];
    const last = state.step === result.steps.length - 1;
    const qi = state.query;
    const name = data.query_labels[qi];
    const error = relativeError(s.output, naive);
    const reduction = Math.max(data.k.length, data.q[0].length);
    const tolerance = roundingTolerance(reduction);
    ui.figure.replaceChildren(grid(s), table(s, last, relativeError(result.output, naive) <= tolerance));
    const numbers = { name, m: core.fmt(s.m[qi]), old: core.fmt(s.m_old[qi]), l: core.fmt(s.l[qi], 3), rescale: core.fmt(s.rescale[qi], 3) };
    let text = t("readout_block", { block: s.block + 1, n: count(), start: s.start + 1, stop: s.stop });
    if (s.block === 0) text += t("readout_first", numbers);
    else if (s.m[qi] > s.m_old[qi]) text += t("readout_grew", numbers);
    else text += t("readout_stays", numbers);
    if (last) {
      text += t(error <= tolerance ? "readout_equal" : "readout_differs", { error: sci(error), tolerance: sci(tolerance) });
    } else {
      text += t("readout_partial", { stop: s.stop, error: core.fmt(error, 3) });
    }
    ui.readout.textContent = text;
    ui.root.dataset.result = JSON.stringify({
      block_size: state.block_size, step: state.step, query: state.query,
      steps: result.steps.map(({ block, start, stop, m, l, rescale, unnormalised, output }) => ({ block, start, stop, m, l, rescale, unnormalised, output })),
      output: result.output, naive, relative_error: error, final_error: relativeError(result.output, naive), tolerance,
    });
  }

  function reset() {
    compute();
    state.step = Math.min(Math.max(0, state.step), count() - 1);
    step.setCount(count(), state.step);
    draw();
  }

  reset();
}

export default {
  render({ model, el }) {
    const state = Object.assign({ block_size: 4, step: 0, query: 0 }, model.get("controls"));
    mount(model, el, state);
    // New data from Python (a kernel): draw anew, keeping the controls where they still fit.
    core.onData(model, () => mount(model, el, state));
  },
};
