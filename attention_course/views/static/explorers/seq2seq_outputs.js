/*
 * Chapter 1: held-out inputs and the no-attention model's outputs, errors marked
 * (Python: attention_course.views.widgets.outputs_explorer; everything precomputed in Python).
 *
 * data: {model, groups: [{group, n, exact, examples: [{source, target, prediction, wrong[],
 *        items, items_right}]}]}   (group = number of dates in the input)
 * controls: {group, example, mistakes_only}
 */
export default {
  render({ model, el }) {
    const data = model.get("data");
    const state = Object.assign({ group: data.groups[data.groups.length - 1].group, example: 0, mistakes_only: false }, model.get("controls"));
    const t = core.speak(model);
    const modelName = t(`model:${data.model}`) === `model:${data.model}` ? data.model : t(`model:${data.model}`);
    const ui = core.frame(el, { kind: model.get("kind"), title: t("title", { model: modelName }), description: t("description") });
    const groupNames = data.groups.map((g) => g.group);
    const current = () => data.groups[groupNames.indexOf(state.group)];
    const shown = () => current().examples.filter((e) => !state.mistakes_only || e.wrong.length > 0);

    const group = core.choiceSlider({
      label: t("group"), options: groupNames, value: state.group,
      onInput: (v) => { state.group = v; state.example = 0; example.setCount(shown().length, 0); draw(); },
    });
    const example = core.stepper({
      label: t("example"), count: shown().length, value: state.example,
      onChange: (i) => { state.example = i; draw(); },
    });
    const mistakes = core.checkbox({
      label: t("mistakes"), value: state.mistakes_only,
      onChange: (v) => { state.mistakes_only = v; state.example = 0; example.setCount(shown().length, 0); draw(); },
    });
    ui.controls.append(group.element, example.element, mistakes.element);

    function grid(target, prediction, wrong) {
      const cell = 13;
      const n = Math.max(target.length, prediction.length);
      const left = 58;
      const width = left + n * cell + 4;
      const height = 52;
      const bad = new Set(wrong);
      const root = core.svg("svg", { class: "ac-svg ac-chars", viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
      const rows = [["truth", target, 18], ["output", prediction, 42]];
      for (const [name, text, y] of rows) {
        root.append(core.svg("text", { x: 0, y, class: "ac-svg-label", text: t(name) }));
        for (let i = 0; i < n; i++) {
          if (name === "output" && bad.has(i)) root.append(core.svg("rect", { x: left + i * cell, y: y - 13, width: cell, height: 17, class: "ac-wrong" }));
          const ch = text[i] || "";
          if (ch) root.append(core.svg("text", { x: left + i * cell + cell / 2, y, "text-anchor": "middle", class: "ac-svg-label ac-mono", text: ch }));
        }
      }
      root.setAttribute("aria-label", t("grid_label", { target, prediction: prediction || t("empty"), n: wrong.length }) +
        (wrong.length ? t("at_positions", { positions: wrong.map((i) => i + 1).join(", ") }) : t("end")));
      return root;
    }

    function draw() {
      const g = current();
      const list = shown();
      const accuracy = core.bars(data.groups.map((x) => x.exact / 100), {
        labels: data.groups.map((x) => t("dates", { n: x.group })), vmax: 1, width: 300, labelChars: 8,
        highlight: groupNames.indexOf(state.group), format: (v) => `${Math.round(100 * v)} %`,
        colors: data.groups.map((x) => (x.group === state.group ? core.COLORS.highlight : core.COLORS.muted)),
        title: t("accuracy_title"),
        label: t("accuracy_label", { parts: data.groups.map((x) => `${x.group}: ${Math.round(x.exact)} %`).join(", ") }),
      });
      const dates = t("dates", { n: g.group });
      const caption = core.h("p", { class: "ac-caption", text: state.mistakes_only
        ? t("caption_mistakes", { n: list.length, first: g.examples.length, dates })
        : t("caption", { first: g.examples.length, total: g.n, dates }) });
      if (!list.length) {
        ui.figure.replaceChildren(core.h("div", {}, caption), accuracy);
        ui.readout.textContent = "";
        ui.root.dataset.result = JSON.stringify({ ...state, shown: 0 });
        return;
      }
      const e = list[Math.min(state.example, list.length - 1)];
      const input = core.h("p", { class: "ac-input" }, core.h("span", { text: t("input") }), core.h("span", { class: "ac-mono", text: e.source }));
      ui.figure.replaceChildren(core.h("div", {}, caption, input, grid(e.target, e.prediction, e.wrong)), accuracy);
      ui.readout.textContent = e.wrong.length
        ? t("readout_wrong", { right: e.items_right, items: e.items, n: e.wrong.length })
        : t("readout_right", { n: e.items });
      ui.root.dataset.result = JSON.stringify({ ...state, shown: list.length, target: e.target, prediction: e.prediction });
    }
    draw();
  },
};
