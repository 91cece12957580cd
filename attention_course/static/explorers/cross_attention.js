/*
 * Chapter 7: the Transformer's cross-attention heads beside RNNsearch's alignment, on held-out dates
 * (Python: attention_course.transformer_viewer.CrossAttentionViewer.widget()).
 *
 * data: {layers, heads, examples: [{source,
 *          transformer: {output, rows[L], weights: {b64, shape: [layers, heads, L, T]}},
 *          rnnsearch: {output, rows[L'], weights: {b64, shape: [L', T]}}}]}
 *   weights[l][h][i][j]: how much output character i (the query) attends to source character j.
 * controls: {example, layer, head}
 * With a kernel, "your own dates" sends {type: "source", text}; Python translates them with both
 * models and assigns new data with the input appended. In the static book that box says it needs a kernel.
 */
export default {
  render({ model, el }) {
    let data = model.get("data");
    const state = Object.assign({ example: 0, layer: data.layers - 1, head: 0 }, model.get("controls"));
    const cache = new Map();
    const decoded = (k) => {
      const e = data.examples[k];
      if (!cache.has(e.source)) {
        cache.set(e.source, {
          transformer: core.decodeUnit(e.transformer.weights.b64, e.transformer.weights.shape),
          rnnsearch: core.decodeUnit(e.rnnsearch.weights.b64, e.rnnsearch.weights.shape),
        });
      }
      return cache.get(e.source);
    };
    const chars = (s) => Array.from(s).map((c) => (c === " " ? "\u2423" : c));

    const ui = core.frame(el, {
      kind: model.get("kind"),
      title: "Compare the Transformer's cross-attention with RNNsearch's alignment",
      description: "Row i of each map is output character i; its cells are the weights it gives to each input character (darker: more weight). Left: RNNsearch's alignment (one per model). Right: one cross-attention head of the Transformer's decoder; choose the layer and the head.",
    });
    const exampleOptions = () => data.examples.map((e, i) => ({ value: i, label: e.source }));
    const example = core.select({
      label: "held-out input", options: exampleOptions(), value: state.example,
      onChange: (v) => { state.example = Number(v); draw(); },
    });
    example.element.classList.add("ac-control-wide");
    const pending = { text: null };
    const own = core.textBox({
      label: "your own dates",
      placeholder: "e.g. 1. März 2024; 3/1/24, then Enter",
      disabledReason: core.isStatic()
        ? "Needs a running kernel: both models run in Python, not in this page. Open the notebook in Colab or Jupyter to type your own dates; here, choose one of the held-out inputs above."
        : null,
      onSubmit: (text) => {
        pending.text = text;
        ui.note.textContent = core.send(model, { type: "source", text })
          ? `Translating "${text}" with both models…`
          : "No kernel is connected, so new dates cannot be translated.";
      },
    });
    own.element.classList.add("ac-control-wide");
    // A decoder of one layer gets no layer slider: a range with a single value does nothing.
    const layer = data.layers > 1
      ? core.slider({ label: "decoder layer", min: 0, max: data.layers - 1, value: state.layer, onInput: (v) => { state.layer = v; draw(); } })
      : null;
    const head = core.slider({ label: "head", min: 0, max: data.heads - 1, value: state.head, onInput: (v) => { state.head = v; draw(); } });
    ui.controls.append(...[example.element, own.element, layer && layer.element, head.element].filter(Boolean));

    function agreement(a, b) {
      if (a.length !== b.length) return null;
      let same = 0;
      for (let i = 0; i < a.length; i++) if (core.argmax(a[i]) === core.argmax(b[i])) same += 1;
      return same / a.length;
    }

    function draw() {
      const e = data.examples[state.example];
      const w = decoded(state.example);
      const map = w.transformer[state.layer][state.head];
      const cols = chars(e.source);
      const cell = Math.max(7, Math.min(16, Math.floor(520 / cols.length)));
      const agree = agreement(map, w.rnnsearch);
      const strongest = (m, rows) => rows.map((r, i) => `${r}\u2192${cols[core.argmax(m[i])]}`).join(" ");
      const left = core.heatmap(w.rnnsearch, {
        rowLabels: e.rnnsearch.rows, colLabels: cols, cell, labelChars: 6,
        title: `RNNsearch \u2192 ${e.rnnsearch.output}`,
        label: `RNNsearch's alignment for "${e.source}" (output ${e.rnnsearch.output}); strongest input character of each output character: ${strongest(w.rnnsearch, e.rnnsearch.rows)}`,
      });
      const right = core.heatmap(map, {
        rowLabels: e.transformer.rows, colLabels: cols, cell, labelChars: 6,
        title: `Transformer layer ${state.layer}, head ${state.head} \u2192 ${e.transformer.output}`,
        label: `Cross-attention of the Transformer's decoder layer ${state.layer}, head ${state.head} for "${e.source}" (output ${e.transformer.output}); strongest input character of each output character: ${strongest(map, e.transformer.rows)}`,
      });
      ui.figure.replaceChildren(left, right);
      ui.readout.textContent = (agree === null
        ? "The two models wrote outputs of different lengths, so their rows do not correspond. "
        : `Layer ${state.layer}, head ${state.head} looks hardest at the same input character as RNNsearch for ${Math.round(100 * agree)} % of the output characters. `) +
        `Transformer: ${e.transformer.output}; RNNsearch: ${e.rnnsearch.output}.`;
      ui.root.dataset.result = JSON.stringify({ ...state, source: e.source, agreement: agree });
    }

    model.on("change:data", () => {
      data = model.get("data");
      example.setOptions(exampleOptions(), state.example);
      if (pending.text) {
        const k = data.examples.findIndex((e) => e.source === pending.text.trim());
        if (k >= 0) {
          state.example = k;
          example.value = k;
          ui.note.textContent = "";
        }
        pending.text = null;
      }
      draw();
    });
    model.on("msg:custom", (message) => {
      if (message && message.type === "error") ui.note.textContent = `Python could not compute that: ${message.message}`;
    });
    draw();
  },
};
