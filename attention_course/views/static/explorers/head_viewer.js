/*
 * Chapters 4 and 5: the attention heads of a pretrained encoder (MiniLM), precomputed in Python
 * for a set of sentences (Python: attention_course.views.head_viewer.HeadViewer.widget()).
 *
 * data: {model, layers, heads, source, sentences: [{text, words[n], weights: {b64, shape: [layers, heads, n, n]}}]}
 *   weights[layer][head][i][j]: how much word i (query) attends to word j (key); rows sum to 1.
 * controls: {sentence, layer, head, view: "head" | "layer"}
 * "your own sentence" (core.ownInput): with a kernel it asks {type: "sentence", text}; Python runs
 * MiniLM and answers with new data, the sentence appended (HeadViewer.widget, Explorer.accept_typed).
 * In the static book that box says it needs a kernel.
 */
export default {
  render({ model, el }) {
    let data = model.get("data");
    const state = Object.assign({ sentence: 0, layer: 0, head: 0, view: "head", from: -1 }, model.get("controls"));
    const cache = new Map();
    const decoded = (k) => {
      const s = data.sentences[k];
      if (!cache.has(s.text)) cache.set(s.text, core.decodeUnit(s.weights.b64, s.weights.shape));
      return cache.get(s.text);
    };
    const sourceIndex = (words) => {
      if (!data.source) return -1;
      return words.findIndex((w) => w.toLowerCase() === data.source.toLowerCase());
    };

    const t = core.speak(model);
    const ui = core.frame(el, { kind: model.get("kind"), title: t("title", { model: data.model }), description: t("description") });
    const sentenceOptions = () => data.sentences.map((s, i) => ({ value: i, label: s.text }));
    const sentence = core.select({
      label: t("sentence"), options: sentenceOptions(), value: state.sentence,
      onChange: (v) => { state.sentence = Number(v); state.from = -1; refreshWords(); draw(); },
    });
    sentence.element.classList.add("ac-control-wide");
    const own = core.ownInput(model, ui, {
      label: t("own"),
      placeholder: t("placeholder"),
      disabledReason: core.isStatic() ? t("needs_kernel", { model: data.model }) : null,
      find: (text) => data.sentences.findIndex((s) => s.text === text),
      choose: (k) => { state.sentence = k; sentence.value = k; state.from = -1; refreshWords(); draw(); },
      ask: "sentence",
      waiting: (text) => t("waiting", { model: data.model, text }),
      noKernel: t("no_kernel"),
    });
    const layer = core.slider({ label: t("layer"), min: 0, max: data.layers - 1, value: state.layer, onInput: (v) => { state.layer = v; draw(); } });
    const head = core.slider({ label: t("head"), min: 0, max: data.heads - 1, value: state.head, onInput: (v) => { state.head = v; draw(); } });
    const view = core.select({
      label: t("view"),
      options: [{ value: "head", label: t("view_head") }, { value: "layer", label: t("view_layer") }],
      value: state.view, onChange: (v) => { state.view = v; draw(); },
    });
    const from = core.select({ label: t("from"), options: [], value: -1, onChange: (v) => { state.from = Number(v); draw(); } });
    ui.controls.append(sentence.element, own.element, layer.element, head.element, view.element, from.element);

    function refreshWords() {
      const words = data.sentences[state.sentence].words;
      if (state.from === -1 || state.from >= words.length) state.from = sourceIndex(words);
      from.setOptions([{ value: -1, label: t("every_word") }, ...words.map((w, i) => ({ value: i, label: `${w} (${i})` }))], state.from);
    }

    function lines(matrix, words, source) {
      const n = words.length;
      const row = 20;
      const width = 360;
      const height = n * row + 24;
      const root = core.svg("svg", { class: "ac-svg ac-lines", viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
      const x0 = 110;
      const x1 = 250;
      const y = (i) => 24 + i * row + row / 2;
      root.append(core.svg("text", { x: 0, y: 13, class: "ac-svg-title", text: t("lines_title", { layer: state.layer, head: state.head }) }));
      for (let i = 0; i < n; i++) {
        if (source >= 0 && i !== source) continue;
        for (let j = 0; j < n; j++) {
          const w = matrix[i][j];
          if (w < 0.02) continue;
          root.append(core.svg("line", {
            x1: x0, y1: y(i), x2: x1, y2: y(j), class: source >= 0 ? "ac-line ac-line-source" : "ac-line",
            "stroke-width": (0.5 + 4 * w).toFixed(2), "stroke-opacity": Math.min(1, 0.15 + w).toFixed(3),
          }));
        }
      }
      words.forEach((w, i) => {
        root.append(core.svg("text", { x: x0 - 6, y: y(i) + 4, "text-anchor": "end", class: "ac-svg-label", "font-weight": i === source ? "700" : null, text: core.truncate(w, 14) }));
        root.append(core.svg("text", { x: x1 + 6, y: y(i) + 4, class: "ac-svg-label", text: core.truncate(w, 14) }));
      });
      return root;
    }

    function strongest(matrix, words, i) {
      const j = core.argmax(matrix[i]);
      return `${words[i]} → ${words[j]} ${core.fmt(matrix[i][j])}`;
    }

    function draw() {
      const s = data.sentences[state.sentence];
      const weights = decoded(state.sentence);
      const words = s.words;
      const matrix = weights[state.layer][state.head];
      let description;
      if (state.view === "layer") {
        const wrap = core.svg("svg", { class: "ac-svg ac-layer", role: "img" });
        const cell = Math.max(4, Math.min(9, Math.floor(120 / words.length)));
        const size = words.length * cell;
        const cols = 4;
        const gap = 18;
        const w = cols * (size + gap);
        const rows = Math.ceil(data.heads / cols);
        const h = rows * (size + gap + 6) + 20;
        wrap.setAttribute("viewBox", `0 0 ${w} ${h}`);
        wrap.setAttribute("width", w);
        wrap.setAttribute("height", h);
        wrap.append(core.svg("text", { x: 0, y: 13, class: "ac-svg-title", text: t("layer_title", { heads: data.heads, layer: state.layer }) }));
        for (let k = 0; k < data.heads; k++) {
          const gx = (k % cols) * (size + gap);
          const gy = 20 + Math.floor(k / cols) * (size + gap + 6);
          const g = core.svg("g", { transform: `translate(${gx},${gy})` });
          g.append(core.svg("text", { x: 0, y: 11, class: "ac-svg-label", text: t("head_k", { k }) }));
          const map = core.heatmap(weights[state.layer][k], { cell, showLabels: false, label: t("head_k", { k }), highlight: state.from >= 0 ? state.from : null });
          map.setAttribute("x", 0);
          map.setAttribute("y", 14);
          map.removeAttribute("role");
          g.append(map);
          if (k === state.head) g.append(core.svg("rect", { x: 1, y: 15, width: size + 2, height: size + 2, class: "ac-head-selected" }));
          wrap.append(g);
        }
        description = t("layer_label", { heads: data.heads, layer: state.layer, model: data.model, text: s.text, head: state.head });
        wrap.setAttribute("aria-label", description);
        ui.figure.replaceChildren(wrap);
        ui.readout.textContent = t("layer_readout", { layer: state.layer, head: state.head,
          links: words.map((_, i) => strongest(matrix, words, i)).join("; ") });
      } else {
        const source = state.from;
        description = t("head_label", { layer: state.layer, head: state.head, model: data.model, text: s.text,
          links: words.map((_, i) => strongest(matrix, words, i)).join("; ") });
        const map = core.heatmap(matrix, { rowLabels: words, colLabels: words, cell: 22, title: t("map_title"), label: description, highlight: source >= 0 ? source : null, labelChars: 14 });
        const picture = lines(matrix, words, source);
        picture.setAttribute("aria-label", source >= 0
          ? t("lines_from", { word: words[source], link: strongest(matrix, words, source) })
          : t("lines_all"));
        ui.figure.replaceChildren(map, picture);
        ui.readout.textContent = source >= 0
          ? t("readout_from", { word: words[source], list: matrix[source].map((w, j) => [w, j]).sort((a, b) => b[0] - a[0]).slice(0, 3)
            .map(([w, j]) => `${words[j]} ${core.fmt(w)}`).join(t("list_sep")) })
          : t("readout_all", { links: words.map((_, i) => strongest(matrix, words, i)).join("; ") });
      }
      ui.root.dataset.result = JSON.stringify({ ...state, sentence_text: s.text, row: state.from >= 0 ? matrix[state.from] : null });
    }

    core.onData(model, (next) => {
      data = next;
      sentence.setOptions(sentenceOptions(), state.sentence);
      own.update(data);
      refreshWords();
      draw();
    });
    refreshWords();
    draw();
  },
};
