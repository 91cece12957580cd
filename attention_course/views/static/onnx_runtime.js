/*
 * onnx_runtime.js: onnxruntime-web for the explorers whose model runs in the reader's browser
 * (Chapter 2's RNNsearch, Chapter 6's GPT, Chapter 7's Transformer beside RNNsearch). attention_course.views.onnx_export.build_esm_with_runtime
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
 *   onnx.vocabulary(alphabet) -> the date task's ids (attention_course.data.dates.Vocabulary: 0 pad,
 *                                1 begin, 2 end, 3 unknown, then the alphabet's characters):
 *                                {BOS, EOS, UNK, index: Map char -> id, encode(text) -> ids,
 *                                 decode(ids) -> text up to the first end, symbol(id) -> row label}
 *   onnx.rnnsearchGreedy(encoder, decoder, ids, {bos, eos, maxLen})
 *                             -> Promise of {ids, weights: [L][T]}: RNNsearch's greedy decoding with
 *                                the two graphs of onnx_export.export_rnnsearch (the encoder once, then
 *                                one decoder step per symbol, as seq2seq.RNNsearch.greedy), ids up to
 *                                and including the end symbol, weights[i] the alignment of output i.
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

  const SPECIALS = 4;
  function vocabulary(alphabet) {
    const BOS = 1, EOS = 2, UNK = 3;
    const chars = Array.from(alphabet);
    const index = new Map(chars.map((c, i) => [c, i + SPECIALS]));
    const decode = (ids) => {
      let out = "";
      for (const i of ids) {
        if (i === EOS) break;
        if (i >= SPECIALS) out += chars[i - SPECIALS];
        else if (i === UNK) out += "\ufffd";
      }
      return out;
    };
    const symbol = (i) => (i >= SPECIALS ? chars[i - SPECIALS]
      : ["\u27e8pad\u27e9", "\u27e8bos\u27e9", "\u27e8eos\u27e9", "<unk>"][i]);  // as Vocabulary.symbol
    return { BOS, EOS, UNK, index, encode: (text) => Array.from(text, (c) => index.get(c) ?? UNK), decode, symbol };
  }

  async function rnnsearchGreedy(encoder, decoder, ids, { bos, eos, maxLen }) {
    const enc = await encoder.run({ src: int64(ids, [1, ids.length]), lengths: int64([ids.length], [1]) });
    let s = enc.s;
    let y = bos;
    const out = [];
    const weights = [];
    for (let k = 0; k < maxLen; k++) {
      const r = await decoder.run({ y_prev: int64([y], [1]), s_prev: s, H: enc.H, keys: enc.keys });
      y = core.argmax(r.logits.data);
      s = r.s;
      out.push(y);
      weights.push(Array.from(r.alpha.data));
      if (y === eos) break;
    }
    return { ids: out, weights };
  }

  return { runtime: load, session, int64, float32, yieldToPage, vocabulary, rnnsearchGreedy };
})();
