/*
 * onnx_runtime.js: onnxruntime-web for the explorers whose model runs in the reader's browser
 * (Chapter 2's RNNsearch, Chapter 6's GPT). attention_course.onnx_export.build_esm_with_runtime
 * puts this file before explorer_core.js and the kind file, so a kind file sees `onnx` below
 * (which uses `core` only when called, after the whole module has run).
 *
 * The runtime (pinned in package.json, copied by scripts/vendor_static.sh to
 * <book>/_static/onnxruntime-web/) and the models (<book>/_static/models/, written by the
 * chapter notebooks) are fetched from the book itself the first time a reader needs them,
 * never from a CDN. Single-threaded WebAssembly: a static host gives no cross-origin isolation.
 *
 * API:
 *   onnx.runtime()            -> Promise of the `ort` module (loaded once per page)
 *   onnx.session(path)        -> Promise of an InferenceSession for <book>/_static/<path> (cached)
 *   onnx.int64(values, dims)  -> an int64 tensor
 *   onnx.float32(values, dims)
 *   onnx.yieldToPage()        -> Promise resolved after the page could paint and handle input
 */
const onnx = (() => {
  "use strict";
  let runtime = null;
  let ort = null;
  const sessions = new Map();

  function load() {
    if (!runtime) {
      runtime = import(core.staticUrl("onnxruntime-web/ort.wasm.min.mjs")).then((module) => {
        ort = module;
        ort.env.wasm.numThreads = 1;
        ort.env.wasm.proxy = false;
        ort.env.wasm.wasmPaths = core.staticUrl("onnxruntime-web/");
        ort.env.logLevel = "error";
        return ort;
      });
      runtime.catch(() => { runtime = null; });  // let a later click try again
    }
    return runtime;
  }

  function session(path) {
    if (!sessions.has(path)) {
      const created = load().then((o) => o.InferenceSession.create(core.staticUrl(path), {
        executionProviders: ["wasm"], graphOptimizationLevel: "all",
      }));
      created.catch(() => sessions.delete(path));
      sessions.set(path, created);
    }
    return sessions.get(path);
  }

  const int64 = (values, dims) => new ort.Tensor("int64", BigInt64Array.from(values, (v) => BigInt(v)), dims);
  const float32 = (values, dims) => new ort.Tensor("float32", Float32Array.from(values), dims);

  function yieldToPage() {
    return new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => resolve();
      channel.port2.postMessage(null);
    });
  }

  return { runtime: load, session, int64, float32, yieldToPage };
})();
