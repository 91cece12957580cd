/*
 * Chapter 2: RNNsearch translates dates into ISO 8601, and its alignment is drawn (Bahdanau et al.
 * 2015, Figure 3). Python: attention_course.views.alignment_viewer.AlignmentViewer.widget().
 *
 * data: {steps[], examples: [{source, results: {<step>: {output, rows[], weights: {b64, shape: [L, T]}}}}],
 *        models: {<step>: {encoder: {path, bytes}, decoder: {path, bytes}}}, runtime_bytes,
 *        source_alphabet, target_alphabet, max_len}
 *   examples: translations precomputed in Python at every checkpoint.
 *   models: the checkpoint's encoder and one-step decoder as ONNX files the book serves.
 * controls: {example, step}
 *
 * Your own dates: in the static book RNNsearch runs here with onnxruntime-web (encoder once, then
 * greedy decoding one step at a time, each step returning the attention weights alpha_i); with
 * a kernel, Python translates: core.ask({type: "translate", source, step}) is answered with new data,
 * data.answer = {type, request, source, step, output, rows, weights} or {type, request, error}
 * (AlignmentViewer._answer, Explorer.answer).
 * Ids as in attention_course.data.dates.Vocabulary (onnx.vocabulary, static/onnx_runtime.js).
 */
export default {
  render({ model, el }) {
    const data = model.get("data");
    const state = Object.assign({ example: 0, step: data.steps[data.steps.length - 1] }, model.get("controls"));
    const sv = onnx.vocabulary(data.source_alphabet);
    const tv = onnx.vocabulary(data.target_alphabet);
    const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
    const modelBytes = Object.values(data.models || {}).reduce((s, m) => s + m.encoder.bytes + m.decoder.bytes, 0) / Math.max(1, data.steps.length);

    const t = core.speak(model);
    const ui = core.frame(el, {
      kind: model.get("kind"),
      title: t("title"),
      description: (core.isStatic()
        ? t("description_static", { model: mb(modelBytes), runtime: mb(data.runtime_bytes || 0) })
        : t("description_kernel")) + t("description_rows"),
    });

    let current = null;   // what is drawn: {source, step, output, rows, weights, computed}
    let own = null;       // the reader's own source, if any (translated again when the step changes)
    let request = 0;      // translations asked for (a newer one makes older answers stale)
    let asked = 0;        // the kernel request awaiting its answer

    const example = core.select({
      label: t("example"), options: data.examples.map((e, i) => ({ value: i, label: e.source })), value: state.example,
      onChange: (v) => { state.example = Number(v); own = null; text.input.value = ""; show(); },
    });
    example.element.classList.add("ac-control-wide");
    const text = core.textBox({
      label: t("type"), placeholder: t("placeholder"), button: t("translate"),
      onSubmit: (value) => { own = value; show(); },
    });
    text.element.classList.add("ac-control-wide");
    const step = core.choiceSlider({
      label: t("step"), options: data.steps, value: state.step,
      format: (v) => t("step_of", { step: v, last: data.steps[data.steps.length - 1] }),
      onInput: (v) => { state.step = v; show(); },
    });
    ui.controls.append(example.element, text.element, step.element);

    function draw() {
      const c = current;
      const cols = Array.from(c.source).map((ch) => (ch === " " ? "\u2423" : ch));
      const strongest = c.weights.map((row, i) => `${c.rows[i]} \u2190 ${cols[core.argmax(row)]}`).join(", ");
      const label = t("map_label", { step: c.step, source: c.source, output: c.output, rows: c.rows.length, cols: cols.length, strongest });
      const cell = Math.max(9, Math.min(18, Math.floor(640 / Math.max(1, cols.length))));
      const map = core.heatmap(c.weights, { rowLabels: c.rows, colLabels: cols, cell, vmax: 1, label, labelChars: 6,
        title: t("map_title", { step: c.step, source: core.truncate(c.source, 40), output: core.truncate(c.output, 40) }) });
      ui.figure.replaceChildren(map);
      ui.readout.textContent = t("readout", { source: c.source, output: c.output || t("nothing"), step: c.step, where: t(`where_${c.computed}`) });
      ui.root.dataset.result = JSON.stringify({ source: c.source, step: c.step, output: c.output, rows: c.rows, computed: c.computed, ms: c.ms });
    }

    function fail(message) {
      ui.note.textContent = message;
      ui.root.dataset.result = JSON.stringify({ source: own, step: state.step, error: message });
    }

    function show() {
      ui.note.textContent = "";
      if (own === null) {
        const e = data.examples[state.example];
        const r = e.results[String(state.step)];
        current = { source: e.source, step: state.step, output: r.output, rows: r.rows,
          weights: core.decodeUnit(r.weights.b64, r.weights.shape), computed: "preset" };
        draw();
        return;
      }
      const source = own;
      const me = ++request;
      asked = 0;
      if (core.isStatic()) {
        translateHere(source, state.step, me);
      } else if (!(asked = core.ask(model, { type: "translate", source, step: state.step }))) {
        fail(t("no_kernel"));
      } else {
        ui.note.textContent = t("translating");
      }
    }

    async function translateHere(source, at, me) {
      const files = (data.models || {})[String(at)];
      if (!files) {
        fail(t("no_model"));
        return;
      }
      const started = performance.now();
      let encoder, decoder;
      try {
        ui.note.textContent = t("loading");
        [encoder, decoder] = await Promise.all([onnx.session(files.encoder.path), onnx.session(files.decoder.path)]);
      } catch (error) {
        if (me === request) fail(t("load_failed", { error: error.message || error }));
        return;
      }
      const { ids: out, weights } = await onnx.rnnsearchGreedy(encoder, decoder, sv.encode(source),
        { bos: tv.BOS, eos: tv.EOS, maxLen: data.max_len });
      if (me !== request) return;  // the reader asked for something else meanwhile
      ui.note.textContent = "";
      current = { source, step: at, output: tv.decode(out), rows: out.map(tv.symbol), weights, computed: "browser", ms: performance.now() - started };
      draw();
    }

    core.onData(model, (next) => {
      const answer = core.answerTo(next, asked);
      if (!answer) return;
      asked = 0;
      if (answer.error) { fail(t("python_failed", { error: answer.error })); return; }
      ui.note.textContent = "";
      current = { source: answer.source, step: answer.step, output: answer.output, rows: answer.rows, weights: answer.weights, computed: "kernel" };
      draw();
    });

    show();
  },
};
