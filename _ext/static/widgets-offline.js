/*
 * Runs between require.js and @jupyter-widgets/html-manager's embed-amd.js.
 *
 * 1. Module paths: embed-amd.js finds its fonts relative to each module's URL, which
 *    require.js would otherwise resolve against the page's own folder (a 404 for every
 *    page below the root). Point every widget module at the book's _static/html-manager/.
 *    anywidget (the explorers' front-end) is served from _static/anywidget/.
 * 2. MathJax: the widget manager typesets labels through MathJax 2's MathJax.Hub.Queue,
 *    which MathJax 3 (the book's) no longer has. Forward those calls to typesetPromise.
 */
(function () {
  "use strict";
  var root = document.documentElement.dataset.content_root || "./";
  var base = new URL(root + "_static/html-manager/", document.baseURI).href;
  var paths = {};
  ["@jupyter-widgets/base", "@jupyter-widgets/base7", "@jupyter-widgets/controls",
   "@jupyter-widgets/controls7", "@jupyter-widgets/html-manager"].forEach(function (name) {
    paths[name] = base + name.split("/")[1];
  });
  paths["@jupyter-widgets/html-manager/dist/libembed-amd"] = base + "libembed-amd";
  // The course's explorers are anywidgets: their front-end is the AMD module from
  // anywidget's wheel, copied into _static/anywidget/ by scripts/vendor_static.sh.
  paths.anywidget = new URL(root + "_static/anywidget/index", document.baseURI).href;
  window.require.config({ paths: paths });

  function addHub() {
    var mj = window.MathJax;
    if (mj && !mj.Hub) {
      mj.Hub = {
        Queue: function (job) {
          var element = Array.isArray(job) ? job[2] : undefined;
          if (element && window.MathJax.typesetPromise) {
            window.MathJax.typesetPromise([element]).catch(function () {});
          }
        },
      };
    }
  }
  addHub();
  document.addEventListener("DOMContentLoaded", addHub);
})();
