/*
 * Chapter 3: query / score function / temperature / d_k explorer
 * (Python: attention_course.views.widgets.AttentionExplorer.widget()).
 *
 * data: {query_texts[m], key_texts[n], value_labels[d_v], Q[m][d], K[n][d], V[n][d_v],
 *        score_labels{name: label}, d_k_options[], params{d_k: {additive: {A[m][h], B[n][h], w_v[h]},
 *        bilinear: {QW[m][d]}}}}
 *   A = Q̂ W_qᵀ, B = K̂ W_kᵀ, QW = Q̂ W (Q̂, K̂: unit rows): the random score parameters applied to
 *   the unit embeddings, so the page need not carry the d×d bilinear matrices.
 * controls: {query, score, temperature, d_k}
 * Recomputes exactly what AttentionExplorer.weights() computes (checked to 1e-6 in Chromium).
 */
function attentionScores(data, query, score, dk) {
  const L = Math.sqrt(dk);
  const unit = (v) => { const n = core.norm(v); return v.map((x) => x / n); };
  const q = unit(data.Q[query]).map((x) => x * L); // |q| = sqrt(d_k)
  const K = data.K.map((k) => unit(k).map((x) => x * L));
  const p = data.params[String(dk)];
  switch (score) {
    case "dot":
      return K.map((k) => core.dot(q, k));
    case "scaled_dot":
      return K.map((k) => core.dot(q, k) / L);
    case "cosine":
      return K.map((k) => core.dot(q, k) / (Math.max(core.norm(q), 1e-12) * Math.max(core.norm(k), 1e-12)));
    case "additive": {
      const a = p.additive.A[query];
      return p.additive.B.map((b) => {
        let s = 0;
        for (let i = 0; i < a.length; i++) s += Math.tanh(L * a[i] + L * b[i]) * p.additive.w_v[i];
        return s;
      });
    }
    case "bilinear": {
      const qw = p.bilinear.QW[query];
      return data.K.map((k) => L * L * core.dot(qw, unit(k)));
    }
    default:
      throw new Error(`unknown score ${score}`);
  }
}

function attentionWeights(data, query, score, temperature, dk) {
  return core.softmax(attentionScores(data, query, score, dk).map((s) => s / temperature));
}

export default {
  render({ model, el }) {
    const state = Object.assign({ query: 0, score: "scaled_dot", temperature: 1, d_k: 64 }, model.get("controls"));
    let data = model.get("data");
    const t = core.speak(model);
    const scoreLabel = (name) => t(`score_${name}`, {}) === `score_${name}` ? data.score_labels[name] : t(`score_${name}`);
    const ui = core.frame(el, { kind: model.get("kind"), title: t("title"), description: t("description") });

    const querySelect = core.select({
      label: t("query"),
      options: data.query_texts.map((t, i) => ({ value: i, label: t })),
      value: state.query,
      onChange: (v) => { state.query = Number(v); draw(); },
    });
    const scoreSelect = core.select({
      label: t("score"),
      options: Object.keys(data.score_labels).map((value) => ({ value, label: scoreLabel(value) })),
      value: state.score,
      onChange: (v) => { state.score = v; draw(); },
    });
    const temperature = core.slider({
      label: t("temperature"), min: -2, max: 1, step: 0.05, value: Math.log10(state.temperature),
      format: (v) => Number(Math.pow(10, v).toPrecision(2)).toString(),
      onInput: (v) => { state.temperature = Math.pow(10, v); draw(); },
    });
    const dk = core.choiceSlider({
      label: t("d_k"), options: data.d_k_options, value: state.d_k,
      onInput: (v) => { state.d_k = v; draw(); },
    });
    ui.controls.append(querySelect.element, scoreSelect.element, temperature.element, dk.element);

    function draw() {
      const weights = attentionWeights(data, state.query, state.score, state.temperature, state.d_k);
      const context = data.value_labels.map((_, c) => weights.reduce((s, w, i) => s + w * data.V[i][c], 0));
      const best = core.argmax(weights);
      const T = Number(state.temperature.toPrecision(2));
      const title = `${scoreLabel(state.score)} · T = ${T} · d_k = ${state.d_k}`;
      const describe = t("weights_label", { query: data.query_texts[state.query], n: weights.length,
        weight: core.fmt(weights[best]), key: data.key_texts[best] });
      const left = core.bars(weights, { labels: data.key_texts, title, width: 560, labelChars: 44, label: describe });
      const right = core.bars(context, {
        labels: data.value_labels, title: t("context_title"), width: 260, labelChars: 12,
        colors: context.map(() => core.COLORS.main),
        label: t("context_label", { parts: data.value_labels.map((l, c) => `${l} ${core.fmt(context[c])}`).join(", ") }),
      });
      ui.figure.replaceChildren(left, right);
      const uniform = Math.log(weights.length);
      ui.readout.textContent = t("readout", { key: best + 1, weight: core.fmt(weights[best]),
        entropy: core.fmt(core.entropy(weights)), uniform: core.fmt(uniform) });
      ui.root.dataset.result = JSON.stringify({ weights, context, ...state });
    }

    core.onData(model, (next) => {
      data = next;
      querySelect.setOptions(data.query_texts.map((t, i) => ({ value: i, label: t })), Math.min(state.query, data.query_texts.length - 1));
      state.query = Number(querySelect.value);
      draw();
    });
    draw();
  },
};
