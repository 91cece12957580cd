/*
 * Chapter 6: the small character GPT writes, and the newest character's attention is drawn per head
 * (Python: attention_course.views.gpt_widget.GPTPlayground.widget()).
 *
 * data: {model: {path, bytes}, runtime_bytes, chars[vocab], unknown, block_size, n_layer, num_heads,
 *        sample: {prompt, text, context, attention: {b64, shape: [n_layer, num_heads, n]}}}
 *   sample: a continuation written by Python when the notebook ran, shown until Generate is pressed.
 * controls: {prompt, temperature, top_k, top_p, length, layer}
 *
 * Generate: in the static book the model runs here, with onnxruntime-web (graph "window": ids of
 * the last block_size characters in; the last position's logits and every head's attention out);
 * with a kernel, Python runs the same loop in PyTorch and answers after each character with new data
 * (core.ask({type: "generate", prompt, temperature, top_k, top_p, length, seed}) -> data.answer =
 * {type, request, text (so far), context, attention, done: false} ... {type, request, text, done: true},
 * or {type, request, error}: GPTPlayground._answer, Explorer.answer). Temperature 0 is greedy (argmax); top-k keeps the k
 * most probable characters, top-p the most probable ones that make up at least p of the probability,
 * as gpt.filter_logits and gpt.sample_next_token do.
 */
export default {
  render({ model, el }) {
    const data = model.get("data");
    const state = Object.assign({ prompt: "The ", temperature: 0.8, top_k: 0, top_p: 1, length: 120, layer: data.n_layer - 1 }, model.get("controls"));
    const show = (c) => ({ "\n": "\u23ce", " ": "\u2423", "\t": "\u21e5" }[c] || c);
    const index = new Map(data.chars.map((c, i) => [c, i]));
    const encode = (text) => Array.from(text, (c) => (index.has(c) ? index.get(c) : data.unknown));
    const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

    const t = core.speak(model);
    const ui = core.frame(el, {
      kind: model.get("kind"),
      title: t("title"),
      description: core.isStatic()
        ? t("description_static", { model: mb(data.model ? data.model.bytes : 0), runtime: mb(data.runtime_bytes || 0) })
        : t("description_kernel"),
    });

    let run = 0;          // the current generation; a new one (or Stop) makes older loops end
    let asked = 0;        // the kernel request of the current generation (0: none)
    let busy = false;
    let seed = 1;
    let view = { prompt: data.sample.prompt, text: data.sample.text, context: data.sample.context,
      attention: core.decodeUnit(data.sample.attention.b64, data.sample.attention.shape), source: "sample" };

    const prompt = core.textBox({ label: t("prompt"), placeholder: t("placeholder"), onSubmit: () => start() });
    prompt.input.value = state.prompt;
    prompt.element.classList.add("ac-control-wide");
    const temperature = core.slider({
      label: t("temperature"), min: 0, max: 2, step: 0.1, value: state.temperature,
      format: (v) => (v === 0 ? t("greedy") : v.toFixed(1)),
      onInput: (v) => { state.temperature = v; },
    });
    const topK = core.slider({
      label: t("top_k"), min: 0, max: Math.min(40, data.chars.length), step: 1, value: state.top_k,
      format: (v) => (v === 0 ? t("all_k") : String(v)),
      onInput: (v) => { state.top_k = v; },
    });
    const topP = core.slider({
      label: t("top_p"), min: 0.05, max: 1, step: 0.05, value: state.top_p,
      format: (v) => (v >= 1 ? t("all_p") : v.toFixed(2)),
      onInput: (v) => { state.top_p = v; },
    });
    const length = core.slider({
      label: t("length"), min: 10, max: 400, step: 10, value: state.length,
      onInput: (v) => { state.length = v; },
    });
    const layer = core.slider({
      label: t("layer"), min: 0, max: data.n_layer - 1, step: 1, value: state.layer,
      format: (v) => t("layer_of", { layer: v, last: data.n_layer - 1 }),
      onInput: (v) => { state.layer = v; drawAttention(); },
    });
    const button = core.h("button", { type: "button", class: "ac-button ac-generate", text: t("generate"), on: { click: () => (busy ? stop() : start()) } });
    ui.controls.append(prompt.element, temperature.element, topK.element, topP.element, length.element, layer.element,
      core.h("div", { class: "ac-control" }, button));

    const textBox = core.h("pre", { class: "ac-mono ac-gpt-text", "aria-label": t("text_label"), style: "white-space: pre-wrap; margin: 0.4em 0; padding-left: 8px; border-left: 3px solid " + core.COLORS.main });
    const picture = core.h("div", { class: "ac-gpt-attention" });
    ui.figure.replaceChildren(textBox, picture);

    function drawText() {
      textBox.replaceChildren(core.h("b", { text: view.prompt }), document.createTextNode(view.text));
    }

    function drawAttention() {
      if (!view.attention || !view.context) { picture.replaceChildren(); return; }
      const rows = view.attention[state.layer];
      const context = Array.from(view.context);
      const top = rows.map((row) => core.argmax(row));
      const heads = top.map((j, k) => t("head_looks", { k, char: show(context[j]), back: context.length - 1 - j, weight: core.fmt(rows[k][j]) }));
      const label = t("attention_label", { n: context.length, layer: state.layer, heads: heads.join(t("head_sep")) });
      const vmax = Math.max(0.3, ...rows.map((r) => Math.max(...r)));
      const map = core.heatmap(rows, {
        rowLabels: rows.map((_, k) => t("head_k", { k })), colLabels: context.map(show), cell: 11, vmax,
        title: t("map_title", { layer: state.layer }), label, labelChars: 8,
      });
      picture.replaceChildren(map);
    }

    function publish(extra) {
      ui.root.dataset.result = JSON.stringify({ prompt: view.prompt, text: view.text, source: view.source, layer: state.layer, busy, ...extra });
    }

    function draw(extra) {
      drawText();
      drawAttention();
      publish(extra);
    }

    // seeded sampler (mulberry32), so one page gives one sequence of draws per click
    function random(s) {
      let a = s >>> 0;
      return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      };
    }
    // the next character: greedy at temperature 0; otherwise drawn from softmax(logits / temp), cut to the
    // top-k characters and then to the most probable ones that make up at least top-p (gpt.filter_logits)
    function pick(logits, temp, rand, topK, topP) {
      if (temp === 0) return core.argmax(logits);
      let z = Array.from(logits, (x) => x / temp);
      if (topK > 0 && topK < z.length) {
        const kth = [...z].sort((a, b) => b - a)[topK - 1];
        z = z.map((x) => (x >= kth ? x : -Infinity));
      }
      let p = core.softmax(z);
      if (topP < 1) {
        const order = p.map((_, i) => i).sort((a, b) => p[b] - p[a]);
        const keep = new Array(p.length).fill(false);
        let before = 0;  // the mass of the more probable characters
        for (const i of order) {
          if (before >= topP) break;
          keep[i] = true;
          before += p[i];
        }
        const total = p.reduce((sum, x, i) => sum + (keep[i] ? x : 0), 0);
        p = p.map((x, i) => (keep[i] ? x / total : 0));
      }
      let u = rand();
      for (let i = 0; i < p.length; i++) {
        u -= p[i];
        if (u < 0) return i;
      }
      return p.length - 1;
    }

    function stop() {
      run += 1;
      asked = 0;
      finish(t("stopped"));
    }

    function finish(message, timing) {
      busy = false;
      button.textContent = t("generate");
      ui.readout.textContent = message;
      draw({ done: true, ...(timing || {}) });
    }

    function start() {
      const text = prompt.input.value;
      if (!text) {
        ui.readout.textContent = t("type_first");
        return;
      }
      run += 1;
      asked = 0;
      busy = true;
      button.textContent = t("stop");
      view = { prompt: text, text: "", context: null, attention: null, source: core.isStatic() ? "browser" : "kernel" };
      draw({ done: false });
      if (core.isStatic()) generateHere(run, text);
      else if (!(asked = core.ask(model, { type: "generate", prompt: text, temperature: temperature.value, top_k: topK.value, top_p: topP.value, length: length.value, seed: seed++ }))) {
        finish(t("no_kernel"));
      }
    }

    async function generateHere(me, text) {
      const clicked = performance.now();
      let session;
      try {
        if (!data.model) throw new Error(t("no_model"));
        ui.readout.textContent = t("loading");
        session = await onnx.session(data.model.path);
      } catch (error) {
        if (me === run) finish(t("load_failed", { error: error.message || error }));
        return;
      }
      const rand = random(seed++);
      const ids = encode(text);
      let first = null;
      let written = 0;
      let drawn = 0;
      while (me === run && written < length.value) {
        const window = ids.slice(-data.block_size);
        const out = await session.run({ ids: onnx.int64(window, [1, window.length]) });
        if (me !== run) return;
        const next = pick(out.logits.data, temperature.value, rand, topK.value, topP.value);
        const n = window.length;
        const a = out.attention.data;  // (n_layer, num_heads, n), row-major
        view.attention = Array.from({ length: data.n_layer }, (_, l) =>
          Array.from({ length: data.num_heads }, (_, h) => Array.from(a.subarray((l * data.num_heads + h) * n, (l * data.num_heads + h + 1) * n))));
        view.context = window.map((i) => data.chars[i]).join("");
        ids.push(next);
        view.text += data.chars[next];
        written += 1;
        if (first === null) first = performance.now();
        drawText();
        if (performance.now() - drawn > 100) {  // the heatmap ~10 times a second: enough to watch, cheaper
          drawAttention();
          drawn = performance.now();
        }
        await onnx.yieldToPage();
      }
      if (me !== run) return;
      const seconds = (performance.now() - first) / 1000;
      const rate = written > 1 ? (written - 1) / seconds : null;
      finish(t("wrote_here", { n: written, first: ((first - clicked) / 1000).toFixed(2) }) +
        (rate ? t("rate", { rate: rate.toFixed(0) }) : t("end")),
      { first_ms: first - clicked, chars_per_second: rate, written });
    }

    core.onData(model, (next) => {
      const answer = core.answerTo(next, asked);
      if (!answer) return;
      if (answer.error) { asked = 0; finish(t("python_failed", { error: answer.error })); return; }
      view.text = answer.text;
      if (answer.context) {
        view.context = answer.context;
        view.attention = answer.attention;
      }
      if (answer.done) {
        asked = 0;
        finish(t("wrote_python", { n: view.text.length }), { written: view.text.length });
      } else {
        drawText();
        drawAttention();
      }
    });

    draw({ done: true });
  },
};
