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

    const ui = core.frame(el, {
      title: "Translate dates with RNNsearch and see its alignment",
      description: (core.isStatic()
        ? `Choose an example or type your own dates and press Enter: RNNsearch then runs in this page (onnxruntime-web; the first time it downloads the model, about ${mb(modelBytes)} per checkpoint, and the runtime, ${mb(data.runtime_bytes || 0)}, from this book). `
        : "Choose an example or type your own dates and press Enter: the notebook's kernel translates them. ") +
        "Row i of the matrix is output character i; its cells are the weights alpha_ij it gave to each input character j (darker: more weight).",
    });

    let current = null;   // what is drawn: {source, step, output, rows, weights, computed}
    let own = null;       // the reader's own source, if any (translated again when the step changes)
    let request = 0;      // translations asked for (a newer one makes older answers stale)
    let asked = 0;        // the kernel request awaiting its answer

    const example = core.select({
      label: "example", options: data.examples.map((e, i) => ({ value: i, label: e.source })), value: state.example,
      onChange: (v) => { state.example = Number(v); own = null; text.input.value = ""; show(); },
    });
    example.element.classList.add("ac-control-wide");
    const text = core.textBox({
      label: "or type dates", placeholder: "e.g. 1. März 2024; 2024年3月1日, then Enter", button: "Translate",
      onSubmit: (value) => { own = value; show(); },
    });
    text.element.classList.add("ac-control-wide");
    const step = core.choiceSlider({
      label: "training step", options: data.steps, value: state.step,
      format: (v) => `${v} of ${data.steps[data.steps.length - 1]}`,
      onInput: (v) => { state.step = v; show(); },
    });
    ui.controls.append(example.element, text.element, step.element);

    function draw() {
      const c = current;
      const cols = Array.from(c.source).map((ch) => (ch === " " ? "\u2423" : ch));
      const strongest = c.weights.map((row, i) => `${c.rows[i]} \u2190 ${cols[core.argmax(row)]}`).join(", ");
      const label = `Alignment after ${c.step} training steps: "${c.source}" becomes "${c.output}". ` +
        `Rows are the ${c.rows.length} output symbols, columns the ${cols.length} input characters; each output's strongest input: ${strongest}.`;
      const cell = Math.max(9, Math.min(18, Math.floor(640 / Math.max(1, cols.length))));
      const map = core.heatmap(c.weights, { rowLabels: c.rows, colLabels: cols, cell, vmax: 1, label, labelChars: 6,
        title: `after ${c.step} steps: ${core.truncate(c.source, 40)} \u2192 ${core.truncate(c.output, 40)}` });
      ui.figure.replaceChildren(map);
      const where = { preset: "precomputed in Python", browser: "computed in your browser", kernel: "computed by the kernel" }[c.computed];
      ui.readout.textContent = `${c.source} \u2192 ${c.output || "(nothing)"}  (after ${c.step} steps; ${where})`;
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
        fail("No kernel is connected, so your own dates cannot be translated here.");
      } else {
        ui.note.textContent = "Translating\u2026";
      }
    }

    async function translateHere(source, at, me) {
      const files = (data.models || {})[String(at)];
      if (!files) {
        fail("This page has no exported model (the notebook ran outside the book build).");
        return;
      }
      const started = performance.now();
      let encoder, decoder;
      try {
        ui.note.textContent = "Loading the model\u2026";
        [encoder, decoder] = await Promise.all([onnx.session(files.encoder.path), onnx.session(files.decoder.path)]);
      } catch (error) {
        if (me === request) fail(`The model could not be loaded: ${error.message || error}`);
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
      if (answer.error) { fail(`Python could not translate that: ${answer.error}`); return; }
      ui.note.textContent = "";
      current = { source: answer.source, step: answer.step, output: answer.output, rows: answer.rows, weights: answer.weights, computed: "kernel" };
      draw();
    });

    show();
  },
};
