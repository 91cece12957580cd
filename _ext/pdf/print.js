/* The printed form of a built page (tools/pdf.py evaluates this function in the page, after its
 * maths and explorers have rendered, and before printing it with print.css).
 *
 *   options.quizzes   {div id: {lead, questions: [{question, answers: [{answer, correct, feedback}]}]}}
 *                     every self-check and "predict first" question of the page, from the helper
 *                     package's quiz files (attention_course/views/quizzes/), in the page's language
 *   options.strings   the printed labels in the page's language (tools/pdf.py, STRINGS)
 *   options.url       the page's address in the published book
 *   options.site      the published book's address (the English edition's root, ending in "/")
 *
 * Returns {questions, explorers, missing, headings, clipped}: what was turned into print, the quiz
 * regions that had no questions, the page's title and sections for the table of contents ({level: 1
 * or 2, text}, their maths as TeX between \( and \)), and the boxes whose content the paper would
 * cut off (tools/pdf.py fails on missing questions and on clipped boxes). The page is measured at
 * the paper's width (tools/pdf.py sets the window to it). */
async (options) => {
  const s = options.strings;
  const fill = (text, fields) => text.replace(/\{(\w+)\}/g, (all, name) => (name in fields ? fields[name] : all));
  const make = (tag, attrs = {}, html = "") => {
    const element = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, value);
    element.innerHTML = html;
    return element;
  };
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const added = [];

  // Each self-check and prediction: its question and lettered options; the answers go to the key.
  const key = [];
  const missing = [];
  let number = 0;
  for (const region of Array.from(document.querySelectorAll(".course-self-check"))) {
    if (getComputedStyle(region).display === "none") { region.remove(); continue; }  // the other language
    const quizDiv = region.querySelector("div[id]");
    const quiz = quizDiv && options.quizzes[quizDiv.id];
    if (!quiz) { missing.push(quizDiv ? quizDiv.id : region.outerHTML.slice(0, 80)); continue; }
    const box = make("div", { class: "print-quiz", lang: region.getAttribute("lang") || "" });
    if (quiz.lead) box.append(make("p", { class: "print-quiz-lead" }, quiz.lead));
    for (const question of quiz.questions) {
      number += 1;
      const item = make("div", { class: "print-quiz-question" }, `<p><strong>${number}.</strong> ${question.question}</p>`);
      const list = make("ol");
      question.answers.forEach((answer) => list.append(make("li", {}, answer.answer)));
      item.append(list);
      box.append(item);
      const right = question.answers.findIndex((answer) => answer.correct);
      key.push({ number, letter: String.fromCharCode(97 + right), answer: question.answers[right] });
    }
    region.replaceWith(box);
    added.push(box);
  }
  if (key.length) {
    const section = make("section", { class: "print-answer-key" }, `<h2>${s.answer_key}</h2>`);
    const list = make("dl");
    for (const entry of key) {
      list.append(make("dt", {}, `${entry.number}. (${entry.letter}) ${entry.answer.answer}`));
      list.append(make("dd", {}, entry.answer.feedback || ""));
    }
    section.append(list);
    article.append(section);
    added.push(section);
  }

  // Each explorer: its first view is the printed figure; a sentence says what the live one does.
  const explorers = Array.from(document.querySelectorAll(".ac-explorer"));
  for (const explorer of explorers) {
    const title = (explorer.querySelector(".ac-title") || {}).textContent || s.explorer;
    const note = make("p", { class: "print-live-note" });
    note.textContent = fill(s.live_explorer, { title: title.trim(), url: options.url });
    explorer.append(note);
  }

  // Hidden code (plotting) stays hidden on paper too; the theme's toggles would open it to print.
  document.querySelectorAll(".cell details.hide.above-input").forEach((details) => details.remove());
  document.querySelectorAll("details").forEach((details) => { details.open = true; });
  // A code cell, output or box shorter than a third of a page stays on one page; a longer one
  // breaks where the page ends (the theme keeps every code block whole, which can leave most of a
  // page empty before a long listing).
  for (const block of document.querySelectorAll("div.cell_input, div.cell_output, div.highlight, .admonition")) {
    block.classList.add(block.getBoundingClientRect().height < 330 ? "print-keep" : "print-long");
  }
  // A link to another page of the book leads, in the PDF, to that page of the published book (not
  // to the local server the page was printed from); a link within the page stays a jump in the PDF.
  for (const link of document.querySelectorAll("a[href]")) {
    const target = new URL(link.getAttribute("href"), location.href);
    if (target.origin !== location.origin) continue;
    if (target.pathname === location.pathname && target.hash) { link.setAttribute("href", target.hash); continue; }
    link.setAttribute("href", options.site + target.pathname.replace(/^\//, "") + target.hash);
  }
  // An external link whose text is not its address prints the address after it.
  document.querySelectorAll("a.reference.external[href^='http']").forEach((link) => {
    if (link.textContent.trim() !== link.href && !link.closest(".bibliography, .citation, div[role='list']")) {
      link.setAttribute("data-print-url", link.href);
    }
  });

  if (added.length && window.MathJax && MathJax.typesetPromise) await MathJax.typesetPromise(added);

  // The title and sections as the table of contents shows them: text, and maths as its TeX.
  const items = window.MathJax && MathJax.startup && MathJax.startup.document
    ? Array.from(MathJax.startup.document.math) : [];
  const texOf = (container) => {
    const item = items.find((math) => math.typesetRoot === container);
    return item ? `\\(${item.math}\\)` : container.textContent;
  };
  const plain = (node) => {
    if (node.nodeType === Node.TEXT_NODE) return node.textContent;
    if (node.nodeType !== Node.ELEMENT_NODE || node.classList.contains("headerlink")) return "";
    if (node.tagName.toLowerCase() === "mjx-container") return texOf(node);
    return Array.from(node.childNodes).map(plain).join("");
  };
  const headings = Array.from(article.querySelectorAll("h1, h2"))
    .filter((heading) => heading.getClientRects().length)
    .map((heading) => ({ level: Number(heading.tagName[1]), text: plain(heading).replace(/\s+/g, " ").trim() }));
  // What the paper would cut off: a box whose content is wider than the box and that does not show
  // the rest (inline maths overhangs its box by a pixel or two by design).
  const clipped = Array.from(article.querySelectorAll("*"))
    .filter((element) => element.clientWidth > 0 && element.scrollWidth > element.clientWidth + 4
      && getComputedStyle(element).overflowX !== "visible"
      && !element.closest("mjx-container, span.math, mjx-assistive-mml"))
    .map((element) => `${element.tagName.toLowerCase()}.${Array.from(element.classList).join(".")} `
      + `(${element.scrollWidth} > ${element.clientWidth} px): ${element.textContent.trim().slice(0, 60)}`);
  return { questions: number, explorers: explorers.length, missing, headings, clipped };
}
