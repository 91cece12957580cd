"""The refactored models compute what the code before the refactor computed (issue 15, point 3).

``frozen_bf9bade`` (next to this file) is the package as it was at bf9bade, before one masked
softmax, one additive score and one attention served the whole package. :func:`outputs` runs the
same computations with it and with today's ``attention_course``, on this machine, under whatever
thread count and CPU kernels this run has: a small GPT (seeded init, forward with attention weights,
12 training steps, sampling with a KV cache), both encoder-decoders (seeded init, teacher forcing,
greedy decoding, one Adam step) and the Chapter 5/6 modules (multi-head self- and cross-attention,
pre- and post-norm blocks, decoder block).

Float results must agree within the rounding tolerance of :mod:`attention_course.maths.numerics`; token ids,
state-dict keys and shapes must be equal. A refactor that changes the order in which parameters are
created, their shapes or the arithmetic moves the outputs far outside that tolerance (the negative
controls check that the comparison catches it), and with them the chapters' numbers and the cached
trained models. No number here was recorded on one CPU: float32 kernels sum in another order on another CPU or thread
count, so only two implementations run side by side can be compared.
"""
import types

import pytest
import torch

import frozen_bf9bade
from attention_course.maths import multi_head, transformer
from attention_course.maths.numerics import assert_agree
from attention_course.models import gpt, seq2seq
from attention_course.training import gpt_training

pytestmark = pytest.mark.numerics

# Today's modules under the names the frozen package had (it was one flat folder).
current = types.SimpleNamespace(gpt=gpt, gpt_training=gpt_training, multi_head=multi_head, seq2seq=seq2seq,
                                transformer=transformer)

# ``reduction`` of each float output (attention_course.maths.numerics: the length of the longest sum behind
# one value), at the default 16 ulps.
# * GPT: the widest product is the MLP's fc2, over d_ff = 4 * 32 = 128 features (the others: 32
#   features, 12 keys, a loss over 24 positions). Encoder-decoders: the deep output layer, over
#   embed + dec_hidden + 2 * enc_hidden = 36 inputs. Chapter 5/6 modules: d_model = 16 for attention
#   alone, the MLP's d_ff = 64 in a block. An initial parameter is a random draw, no sum: 1.
# * Training: every optimiser step adds the rounding of another pass, so the 12 GPT steps count as
#   one sum of 12 * 128 terms (tolerance 7.5e-5); the encoder-decoders take one step (36). Measured:
#   noise of 16 times the rounding of a 128-term sum added to every gradient of every step moves the
#   GPT's losses by 1.6e-7 and its trained logits by 3.7e-6, the encoder-decoders' logits after the
#   step by 7.8e-7.
# * The trained *weights* are not compared: Adam divides a gradient by its own size, so a gradient that
#   is zero in exact arithmetic (the key biases': a softmax ignores a constant added to every score)
#   turns its rounding noise into a step of size lr. The same noise moved them by 0.1 (relative); the
#   outputs do not depend on those weights.
GPT, GPT_STEPS, SEQ2SEQ, ATTENTION, BLOCK = 128, 12, 36, 16, 64
REDUCTION = {
    "gpt_init_state": 1, "gpt_init_logits": GPT, "gpt_init_loss": GPT, "gpt_weights": GPT,
    "gpt_train_loss": GPT * GPT_STEPS, "gpt_val_loss": GPT * GPT_STEPS, "gpt_trained_logits": GPT * GPT_STEPS,
    "rnnsearch_init_state": 1, "rnnsearch_logits": SEQ2SEQ, "rnnsearch_alphas": SEQ2SEQ,
    "rnnsearch_after_step": SEQ2SEQ, "encdec_init_state": 1, "encdec_logits": SEQ2SEQ,
    "encdec_after_step": SEQ2SEQ, "mha_out": ATTENTION, "mha_weights": ATTENTION, "mha_cross_out": ATTENTION,
    "block_pre": BLOCK, "block_post": BLOCK, "decoder_block": BLOCK, "decoder_cross_weights": ATTENTION,
}
EXACT = ["gpt_generate", "rnnsearch_greedy", "encdec_greedy"]


def bf9bade_layout(state: dict) -> dict:
    """Today's GPT state dict in bf9bade's names and layout.

    The GPT's attention parameters were renamed when it got the package's one attention; the mapping
    is documented in ``attention_course.models.gpt.GPT._init``: ``qkv.weight = cat([W_q, W_k, W_v], 1).T``,
    ``qkv.bias = cat([b_q, b_k, b_v])``, ``proj.weight = W_o.T``, ``proj.bias = b_o``. Everything else
    keeps its name.
    """
    out = {}
    for key, value in state.items():
        module, _, name = key.rpartition(".")
        if name == "W_q":
            out[module + ".qkv.weight"] = torch.cat([state[f"{module}.W_{x}"] for x in "qkv"], 1).T
        elif name == "b_q":
            out[module + ".qkv.bias"] = torch.cat([state[f"{module}.b_{x}"] for x in "qkv"])
        elif name == "W_o":
            out[module + ".proj.weight"] = value.T
        elif name == "b_o":
            out[module + ".proj.bias"] = value
        elif name not in ("W_k", "W_v", "b_k", "b_v"):
            out[key] = value
    return out


def copy_state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def outputs(pkg, **train_options) -> dict:
    """Full outputs of the same seeded computations with ``pkg`` (``frozen_bf9bade`` or ``current``, today's modules).

    Float tensors, float32 tensors of losses, int tensors of token ids, and state dicts (the GPT's
    in bf9bade's layout). ``train_options`` go to ``train_gpt`` (today's has a file cache to turn off).
    """
    gpt, seq2seq = pkg.gpt, pkg.seq2seq
    layout = (lambda state: state) if pkg is frozen_bf9bade else bf9bade_layout
    out = {}
    # GPT: seeded init, forward, weights, a few training steps, generation with a KV cache
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=4, d_model=32))
    out["gpt_init_state"] = layout(copy_state(model))
    idx = torch.arange(24).remainder(20).view(2, 12)
    out["gpt_init_logits"], loss, out["gpt_weights"] = model(idx, idx.roll(-1, 1), need_weights=True)
    out["gpt_init_loss"] = loss
    data = torch.arange(400).remainder(17) * 7 % 20
    train_gpt = gpt.train_gpt if pkg is frozen_bf9bade else pkg.gpt_training.train_gpt
    history = train_gpt(model, data, data, steps=12, batch_size=4, lr=3e-3, eval_every=6, eval_windows=5,
                        **train_options)
    out["gpt_train_loss"] = torch.tensor(history["train_loss"])  # float32, as the losses were computed
    out["gpt_val_loss"] = torch.tensor(history["val_loss"])
    out["gpt_trained_logits"], _ = model(idx)
    out["gpt_generate"] = gpt.generate(model, idx[:1, :3], 20, 0.8, torch.Generator().manual_seed(3))

    # RNNsearch and EncoderDecoder: seeded init, teacher-forced forward, greedy decoding, a train step
    for attention in (True, False):
        name = "rnnsearch" if attention else "encdec"
        cfg = seq2seq.ModelConfig(attention=attention, embed=8, enc_hidden=8, dec_hidden=12, align=6)
        m = seq2seq.build_model(cfg, 11, 13)
        out[name + "_init_state"] = copy_state(m)
        gen = torch.Generator().manual_seed(1)
        src = torch.randint(3, 11, (3, 7), generator=gen)
        lengths = torch.tensor([7, 5, 2])
        src[1, 5:] = 0
        src[2, 2:] = 0
        tgt = torch.randint(3, 13, (3, 6), generator=gen)
        tgt[:, 0] = 1
        logits, alphas = m(src, lengths, tgt)
        out[name + "_logits"] = logits
        if alphas is not None:
            out[name + "_alphas"] = alphas
        out[name + "_greedy"], _ = m.greedy(src, lengths, max_len=8)
        opt = torch.optim.Adam(m.parameters(), 1e-2)
        torch.nn.functional.cross_entropy(logits.reshape(-1, 13), tgt.roll(-1, 1).reshape(-1)).backward()
        opt.step()
        out[name + "_after_step"] = m(src, lengths, tgt)[0]

    # The Chapter 5/6 modules: multi-head attention, encoder block (pre/post), decoder block
    torch.manual_seed(5)
    mha = pkg.multi_head.MultiHeadSelfAttention(16, 4)
    x = torch.randn(2, 6, 16)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    out["mha_out"], out["mha_weights"] = mha(x, causal)
    out["mha_cross_out"], _ = mha(x, None, memory=torch.randn(2, 4, 16))
    for norm_first in (True, False):
        torch.manual_seed(6)
        block = pkg.transformer.TransformerBlock(16, 4, norm_first=norm_first)
        out[f"block_{'pre' if norm_first else 'post'}"], _ = block(3 * x + 1, causal)
    torch.manual_seed(7)
    dec = pkg.transformer.DecoderBlock(16, 4)
    memory_mask = torch.tensor([True, True, True, False, False])[None, None, None]
    out["decoder_block"], _, out["decoder_cross_weights"] = dec(x, torch.randn(2, 5, 16), memory_mask)
    return out


@pytest.fixture(scope="module")
def before():
    return outputs(frozen_bf9bade)


@pytest.fixture(scope="module")
def now():
    return outputs(current, progress=False, use_cache=False)


def agree(actual, expected, reduction: int, what: str) -> float:
    """``assert_agree`` for a tensor, or for a state dict: the same keys, each tensor within tolerance."""
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected), f"{what}: the state-dict keys differ"
        return max(agree(actual[k], expected[k], reduction, f"{what}[{k}]") for k in expected)
    return assert_agree(actual, expected, reduction=reduction, what=what)


def test_every_output_is_compared(before, now):
    assert sorted(before) == sorted(now) == sorted([*REDUCTION, *EXACT])


@pytest.mark.parametrize("name", sorted(REDUCTION))
def test_float_outputs_agree_with_the_code_before_the_refactor(before, now, name):
    agree(now[name], before[name], REDUCTION[name], name)


@pytest.mark.parametrize("name", EXACT)
def test_token_ids_are_those_of_the_code_before_the_refactor(before, now, name):
    assert torch.equal(now[name], before[name]), (name, before[name].tolist(), now[name].tolist())


def test_the_seq2seq_state_dicts_keep_their_keys_in_order(before, now):
    for name in ("rnnsearch_init_state", "encdec_init_state"):
        assert list(now[name]) == list(before[name])


def swapped_attention():
    """Chapter 5's attention as if a refactor created ``W_k`` before ``W_q``: ``mha_out``."""
    torch.manual_seed(5)
    mha = current.multi_head.MultiHeadSelfAttention(16, 4)
    mha.W_q, mha.W_k = mha.W_k, mha.W_q
    return mha(torch.randn(2, 6, 16), torch.ones(6, 6, dtype=torch.bool).tril())[0]


def shifted_gpt():
    """The GPT as if a refactor drew one more random number before its parameters: ``gpt_init_logits``."""
    torch.manual_seed(0)
    torch.rand(1)
    model = current.gpt.GPT(current.gpt.GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=4, d_model=32))
    return model(torch.arange(24).remainder(20).view(2, 12))[0]


@pytest.mark.parametrize("name, perturbed", [("mha_out", swapped_attention), ("gpt_init_logits", shifted_gpt)])
def test_the_comparison_catches_a_changed_parameter_order(before, name, perturbed):
    """Negative control: the same comparison fails for a model whose parameters were drawn in another order."""
    with pytest.raises(AssertionError, match="exceeds"):
        assert_agree(perturbed(), before[name], reduction=REDUCTION[name], what=name)


def test_the_gpt_is_built_from_the_one_block_and_the_one_attention():
    import inspect

    from attention_course.maths.multi_head import MultiHeadSelfAttention
    from attention_course.maths.transformer import TransformerBlock

    gpt = current.gpt
    model = gpt.GPT(gpt.GPTConfig(vocab_size=10, block_size=8, n_layer=2, num_heads=2, d_model=8))
    assert all(type(b) is TransformerBlock and type(b.attn) is MultiHeadSelfAttention for b in model.blocks)
    assert gpt.GPTConfig(10, n_head=2).num_heads == 2  # the old keyword still works
    assert not hasattr(gpt, "CausalSelfAttention") and "softmax" not in inspect.getsource(gpt.GPT)
