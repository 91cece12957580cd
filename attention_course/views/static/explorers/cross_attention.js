/*
 * Chapter 7: the Transformer's cross-attention heads beside RNNsearch's alignment, on held-out dates
 * and on dates the reader types (Python: attention_course.views.transformer_viewer.CrossAttentionViewer.widget()).
 *
 * data: {layers, heads, examples: [{source, computed: "preset" | "kernel",
 *          transformer: {output, rows[L], weights: {b64, shape: [layers, heads, L, T]}},
 *          rnnsearch: {output, rows[L'], weights: {b64, shape: [L', T]}}}],
 *        models: {transformer: {encoder, decoder}, rnnsearch: {encoder, decoder}} (each {path, bytes};
 *          empty when the notebook ran outside the book build), runtime_bytes,
 *        source_alphabet, target_alphabet, max_len (output symbols), max_source (input characters)}
 *   weights[l][h][i][j]: how much output character i (the query) attends to source character j.
 * controls: {example, layer, head}
 *
 * Your own dates, checked first by problem() (= transformer_viewer.source_problem, same words):
 *   - static book: both models run here with onnxruntime-web (static/onnx_runtime.js). The
 *     Transformer (onnx_export.export_date_transformer): the encoder once, then the decoder graph on
 *     the whole prefix (BOS and the characters written so far) at every step, which returns the last
 *     position's logits and its cross-attention in every layer and head; greedy: the largest logit,
 *     until the end symbol or min(max_len, max_source) symbols, as DateTransformer.greedy. RNNsearch: onnx.rnnsearchGreedy.
 *   - with a kernel: asks {type: "source", text} (core.ownInput); Python translates with both models
 *     and answers with new data, the input appended (CrossAttentionViewer.widget, Explorer.accept_typed).
 * root.dataset.result: {example, layer, head, source, agreement, computed, transformer: {output, rows},
 *   rnnsearch: {output, rows}} and, for an input computed here, weights: {transformer, rnnsearch}
 *   (float32 values, for the tests); {source, error} when an input is refused.
 */
export default {
  render({ model, el }) {
    let data = model.get("data");
    const state = Object.assign({ example: 0, layer: data.layers - 1, head: 0 }, model.get("controls"));
    const models = data.models || {};
    const inBrowser = core.isStatic() && Boolean(models.transformer && models.rnnsearch);
    const sv = onnx.vocabulary(data.source_alphabet || "");
    const tv = onnx.vocabulary(data.target_alphabet || "");
    const here = [];  // inputs translated in this page: {source, computed: "browser", transformer, rnnsearch, maps, ms}
    const examples = () => data.examples.concat(here);
    const cache = new Map();
    const maps = (e) => {
      if (e.maps) return e.maps;
      if (!cache.has(e.source)) {
        cache.set(e.source, {
          transformer: core.decodeUnit(e.transformer.weights.b64, e.transformer.weights.shape),
          rnnsearch: core.decodeUnit(e.rnnsearch.weights.b64, e.rnnsearch.weights.shape),
        });
      }
      return cache.get(e.source);
    };
    const chars = (s) => Array.from(s).map((c) => (c === " " ? "\u2423" : c));
    const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
    const modelBytes = Object.values(models).reduce((s, m) => s + m.encoder.bytes + m.decoder.bytes, 0);

    const t = core.speak(model);
    const ui = core.frame(el, {
      kind: model.get("kind"),
      title: t("title"),
      description: t("description") +
        (inBrowser
          ? t("description_browser", { models: mb(modelBytes), runtime: mb(data.runtime_bytes || 0) })
          : core.isStatic() ? "" : t("description_kernel")),
    });
    const options = () => examples().map((e, i) => ({ value: i, label: e.computed === "browser" || e.computed === "kernel" ? t("yours", { source: e.source }) : e.source }));
    const example = core.select({
      label: t("example"), options: options(), value: state.example,
      onChange: (v) => { state.example = Number(v); draw(); },
    });
    example.element.classList.add("ac-control-wide");
    const own = core.ownInput(model, ui, {
      label: t("own"),
      placeholder: t("placeholder"),
      button: t("translate"),
      disabledReason: core.isStatic() && !inBrowser ? t("needs_kernel") : null,
      check: problem,
      find: (text) => examples().findIndex((e) => e.source === text),
      choose,
      here: inBrowser ? translateHere : null,
      ask: "source",
      waiting: (text) => t("waiting", { text }),
      noKernel: t("no_kernel"),
    });
    // A decoder of one layer gets no layer slider: a range with a single value does nothing.
    const layer = data.layers > 1
      ? core.slider({ label: t("layer"), min: 0, max: data.layers - 1, value: state.layer, onInput: (v) => { state.layer = v; draw(); } })
      : null;
    const head = core.slider({ label: t("head"), min: 0, max: data.heads - 1, value: state.head, onInput: (v) => { state.head = v; draw(); } });
    ui.controls.append(...[example.element, own.element, layer && layer.element, head.element].filter(Boolean));

    // The checks of transformer_viewer.source_problem, in its words.
    function problem(text) {
      const source = text.trim();
      if (!source) return t("problem_empty");
      const unknown = [...new Set(Array.from(source).filter((c) => !sv.index.has(c)))];
      if (unknown.length) {
        return t("problem_unknown", { n: unknown.length, chars: unknown.map((c) => `"${c}"`).join(t("problem_sep")) });
      }
      const n = Array.from(source).length;
      if (n > data.max_source) return t("problem_long", { n, longest: data.max_source });
      return null;
    }

    function agreement(a, b) {
      if (a.length !== b.length) return null;
      let same = 0;
      for (let i = 0; i < a.length; i++) if (core.argmax(a[i]) === core.argmax(b[i])) same += 1;
      return same / a.length;
    }

    function choose(k) {
      state.example = k;
      example.setOptions(options(), k);
      draw();
    }

    // DateTransformer.greedy with the two graphs: {ids (up to and including the end symbol), weights [layers][heads][L][T]}.
    async function transformerGreedy(encoder, decoder, ids) {
      const lengths = onnx.int64([ids.length], [1]);
      const { memory } = await encoder.run({ src: onnx.int64(ids, [1, ids.length]), lengths });
      const out = [];
      const steps = [];  // per output symbol: cross (1, layers, heads, T), flat
      const longest = Math.min(data.max_len, data.max_source);  // as greedy: no further than the positional encoding
      for (let k = 0; k < longest; k++) {
        const prefix = [tv.BOS, ...out];
        const r = await decoder.run({ prefix: onnx.int64(prefix, [1, prefix.length]), memory, lengths });
        const y = core.argmax(r.logits.data);
        out.push(y);
        steps.push(r.cross.data);
        if (y === tv.EOS) break;
      }
      const T = ids.length;
      const weights = Array.from({ length: data.layers }, (_, l) => Array.from({ length: data.heads }, (_, h) =>
        steps.map((w) => Array.from(w.subarray((l * data.heads + h) * T, (l * data.heads + h + 1) * T)))));
      return { ids: out, weights };
    }

    async function translateHere(source, current) {
      const started = performance.now();
      const files = [models.transformer.encoder, models.transformer.decoder, models.rnnsearch.encoder, models.rnnsearch.decoder];
      let sessions;
      try {
        ui.note.textContent = t("loading", { size: mb(modelBytes) });
        sessions = await Promise.all(files.map((f) => onnx.session(f.path)));
        if (!current()) return;
        ui.note.textContent = t("translating_here", { source });
        await onnx.yieldToPage();
        const ids = sv.encode(source);
        const tg = await transformerGreedy(sessions[0], sessions[1], ids);
        const r = await onnx.rnnsearchGreedy(sessions[2], sessions[3], ids, { bos: tv.BOS, eos: tv.EOS, maxLen: data.max_len });
        if (!current()) return;  // the reader asked for something else meanwhile
        here.push({
          source, computed: "browser", ms: performance.now() - started,
          transformer: { output: tv.decode(tg.ids), rows: tg.ids.map(tv.symbol) },
          rnnsearch: { output: tv.decode(r.ids), rows: r.ids.map(tv.symbol) },
          maps: { transformer: tg.weights, rnnsearch: r.weights },
        });
        ui.note.textContent = "";
        choose(examples().length - 1);
      } catch (error) {
        if (current()) own.refuse(source, t("run_failed", { error: error.message || error }));
      }
    }

    function draw() {
      const e = examples()[state.example];
      const w = maps(e);
      const map = w.transformer[state.layer][state.head];
      const cols = chars(e.source);
      const cell = Math.max(7, Math.min(16, Math.floor(520 / cols.length)));
      const agree = agreement(map, w.rnnsearch);
      const strongest = (m, rows) => rows.map((r, i) => `${r}\u2192${cols[core.argmax(m[i])]}`).join(" ");
      const left = core.heatmap(w.rnnsearch, {
        rowLabels: e.rnnsearch.rows, colLabels: cols, cell, labelChars: 6,
        title: t("rnn_title", { output: e.rnnsearch.output }),
        label: t("rnn_label", { source: e.source, output: e.rnnsearch.output, strongest: strongest(w.rnnsearch, e.rnnsearch.rows) }),
      });
      const right = core.heatmap(map, {
        rowLabels: e.transformer.rows, colLabels: cols, cell, labelChars: 6,
        title: t("tr_title", { layer: state.layer, head: state.head, output: e.transformer.output }),
        label: t("tr_label", { layer: state.layer, head: state.head, source: e.source, output: e.transformer.output,
          strongest: strongest(map, e.transformer.rows) }),
      });
      ui.figure.replaceChildren(left, right);
      const computed = e.computed || "preset";
      ui.readout.textContent = (agree === null
        ? t("differ")
        : t("agree", { layer: state.layer, head: state.head, percent: Math.round(100 * agree) })) +
        t("outputs", { transformer: e.transformer.output, rnnsearch: e.rnnsearch.output, where: t(`where_${computed}`) });
      const result = { ...state, source: e.source, agreement: agree, computed,
        transformer: { output: e.transformer.output, rows: e.transformer.rows },
        rnnsearch: { output: e.rnnsearch.output, rows: e.rnnsearch.rows } };
      if (computed === "browser") result.weights = e.maps;
      ui.root.dataset.result = JSON.stringify(result);
    }

    core.onData(model, (next) => {
      data = next;
      example.setOptions(options(), state.example);
      own.update(data);
      draw();
    });
    draw();
  },
};
