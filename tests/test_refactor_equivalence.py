"""The refactored models give the same outputs as before the refactor (issue 15, point 3).

``RECORDED`` was computed by the package as it was at bf9bade (main, before one masked softmax, one
additive score and one attention served the whole package), with one thread, for fixed seeds and inputs: a small
GPT (seeded init, forward with attention weights, 12 training steps, sampling with a KV cache) and
both encoder-decoders (seeded init, teacher forcing, greedy decoding, one Adam step), and the
Chapter 5/6 modules (multi-head self- and cross-attention, pre- and post-norm blocks, decoder block). If a
refactor changes the order in which parameters are created, their shapes, or the arithmetic, these
numbers move, and with them the chapters' numbers and the cached trained models.
"""
import pytest
import torch

from attention_course import gpt, seq2seq
from attention_course.env import torch_threads

RECORDED = {'block_post': {'abs': 154.75432117190212,
                'picks': [0.7251555919647217, -0.2275400012731552, -0.8035812973976135, -0.5972800254821777,
                          -2.0475473403930664, -0.830299973487854, 0.18452921509742737],
                'shape': [2, 6, 16],
                'sum': 7.60890543460846e-07},
 'block_pre': {'abs': 451.04006576538086,
               'picks': [2.7172300815582275, 1.9305499792099, -0.5886352062225342, 0.9169631004333496,
                         -5.880204677581787, -1.8975948095321655, 2.7123513221740723],
               'shape': [2, 6, 16],
               'sum': 208.87215258181095},
 'decoder_block': {'abs': 155.00864525139332,
                   'picks': [0.7170653343200684, 0.9247705936431885, -0.3327063322067261, 0.21433359384536743,
                             -1.9086549282073975, -0.9116026163101196, 0.6842429637908936],
                   'shape': [2, 6, 16],
                   'sum': 25.375435173511505},
 'decoder_cross_weights': {'abs': 48.000000178813934,
                           'picks': [0.3262433409690857, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                           'shape': [2, 4, 6, 5],
                           'sum': 48.000000178813934},
 'encdec_after_step': {'abs': 43.43985129613429,
                       'picks': [0.25517791509628296, -0.1887987107038498, -0.18201814591884613,
                                 -0.14402464032173157, -0.15148918330669403, -0.39348602294921875,
                                 -0.14951632916927338],
                       'shape': [3, 6, 13],
                       'sum': -19.543992373161018},
 'encdec_greedy': [[4, 0, 0, 0, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0, 0, 0]],
 'encdec_logits': {'abs': 49.42727782111615,
                   'picks': [0.4036100506782532, -0.17987188696861267, -0.16498617827892303,
                             -0.1836761087179184, -0.14203990995883942, -0.30744290351867676,
                             -0.013519860804080963],
                   'shape': [3, 6, 13],
                   'sum': -20.78716768231243},
 'encdec_state_keys': ['encoder.embed.weight', 'encoder.forward_rnn.weight_ih_l0',
                       'encoder.forward_rnn.weight_hh_l0', 'encoder.forward_rnn.bias_ih_l0',
                       'encoder.forward_rnn.bias_hh_l0', 'encoder.backward_rnn.weight_ih_l0',
                       'encoder.backward_rnn.weight_hh_l0', 'encoder.backward_rnn.bias_ih_l0',
                       'encoder.backward_rnn.bias_hh_l0', 'embed.weight', 'init.weight', 'init.bias',
                       'cell.weight_ih_l0', 'cell.weight_hh_l0', 'cell.bias_ih_l0', 'cell.bias_hh_l0',
                       'out_hidden.weight', 'out_hidden.bias', 'out.weight', 'out.bias'],
 'gpt_generate': [[0, 1, 2, 0, 12, 9, 2, 5, 9, 17, 17, 18, 19, 17, 4, 6, 17, 18, 10, 5, 14, 17, 8]],
 'gpt_init_logits': {'abs': 52.12994749075733,
                     'picks': [0.48293980956077576, -0.05058753862977028, 0.06505609303712845,
                               0.13609538972377777, 0.04237671196460724, 0.46304935216903687,
                               -0.07772345840930939],
                     'shape': [2, 12, 20],
                     'sum': 6.056925891665742},
 'gpt_init_loss': 3.075796127319336,
 'gpt_state_keys': ['tok_emb.weight', 'pos_emb.weight', 'blocks.0.ln1.weight', 'blocks.0.ln1.bias',
                    'blocks.0.ln2.weight', 'blocks.0.ln2.bias', 'blocks.0.attn.qkv.weight',
                    'blocks.0.attn.qkv.bias', 'blocks.0.attn.proj.weight', 'blocks.0.attn.proj.bias',
                    'blocks.0.mlp.fc1.weight', 'blocks.0.mlp.fc1.bias', 'blocks.0.mlp.fc2.weight',
                    'blocks.0.mlp.fc2.bias', 'blocks.1.ln1.weight', 'blocks.1.ln1.bias',
                    'blocks.1.ln2.weight', 'blocks.1.ln2.bias', 'blocks.1.attn.qkv.weight',
                    'blocks.1.attn.qkv.bias', 'blocks.1.attn.proj.weight', 'blocks.1.attn.proj.bias',
                    'blocks.1.mlp.fc1.weight', 'blocks.1.mlp.fc1.bias', 'blocks.1.mlp.fc2.weight',
                    'blocks.1.mlp.fc2.bias', 'ln_f.weight', 'ln_f.bias', 'head.weight'],
 'gpt_train_loss': [3.066896915435791, 3.011075258255005, 2.907130241394043, 2.8821699619293213],
 'gpt_trained_logits': {'abs': 59.51690711217816,
                        'picks': [0.37616267800331116, -0.16935299336910248, -0.041575558483600616,
                                  -0.03779412433505058, -0.08536093682050705, 0.37152111530303955,
                                  -0.20883037149906158],
                        'shape': [2, 12, 20],
                        'sum': 8.116976002726005},
 'gpt_val_loss': [3.066896915435791, 3.011075258255005, 2.907130241394043, 2.8821699619293213],
 'gpt_weights': {'abs': 191.99999971687794,
                 'picks': [1.0, 0.0, 0.0, 0.08193370699882507, 0.0, 0.0, 0.08274656534194946],
                 'shape': [2, 2, 4, 12, 12],
                 'sum': 191.99999971687794},
 'mha_cross_out': {'abs': 19.20119771210011,
                   'picks': [-0.12415800243616104, -0.0216507725417614, -0.03166830167174339,
                             -0.06340665370225906, 0.26714012026786804, 0.277396023273468,
                             0.2508135437965393],
                   'shape': [2, 6, 16],
                   'sum': 0.9477157386718318},
 'mha_out': {'abs': 33.684026798960986,
             'picks': [0.006691966205835342, 0.39982450008392334, 0.24732908606529236, 0.1864040195941925,
                       -0.07846968621015549, -0.09991766512393951, -0.13436844944953918],
             'shape': [2, 6, 16],
             'sum': 11.282465678901644},
 'mha_weights': {'abs': 48.00000011175871,
                 'picks': [1.0, 0.0, 0.0, 0.17959603667259216, 0.0, 0.0, 0.09732560813426971],
                 'shape': [2, 4, 6, 6],
                 'sum': 48.00000011175871},
 'rnnsearch_after_step': {'abs': 44.197833919897676,
                          'picks': [0.3370274603366852, -0.1495068371295929, -0.14569684863090515,
                                    -0.12390715628862381, -0.1068754717707634, -0.40069782733917236,
                                    -0.09816351532936096],
                          'shape': [3, 6, 13],
                          'sum': -17.873612204566598},
 'rnnsearch_alphas': {'abs': 18.000000044703484,
                      'picks': [0.11739246547222137, 0.17589086294174194, 0.17715191841125488, 0.0, 0.0, 0.0,
                                0.0],
                      'shape': [3, 6, 7],
                      'sum': 18.000000044703484},
 'rnnsearch_greedy': [[4, 0, 0, 0, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0, 0, 0], [4, 0, 0, 0, 0, 0, 0, 0]],
 'rnnsearch_logits': {'abs': 48.17318949662149,
                      'picks': [0.44840115308761597, -0.1230691522359848, -0.11346720159053802,
                                -0.13996008038520813, -0.08479733765125275, -0.31483200192451477,
                                0.012878365814685822],
                      'shape': [3, 6, 13],
                      'sum': -19.252008959650993},
 'rnnsearch_state_keys': ['W_s', 'W_h', 'v', 'encoder.embed.weight', 'encoder.forward_rnn.weight_ih_l0',
                          'encoder.forward_rnn.weight_hh_l0', 'encoder.forward_rnn.bias_ih_l0',
                          'encoder.forward_rnn.bias_hh_l0', 'encoder.backward_rnn.weight_ih_l0',
                          'encoder.backward_rnn.weight_hh_l0', 'encoder.backward_rnn.bias_ih_l0',
                          'encoder.backward_rnn.bias_hh_l0', 'embed.weight', 'init.weight', 'init.bias',
                          'cell.weight_ih', 'cell.weight_hh', 'cell.bias_ih', 'cell.bias_hh',
                          'out_hidden.weight', 'out_hidden.bias', 'out.weight', 'out.bias']}


def stats(t):
    t = t.detach().double()
    flat = t.flatten()
    idx = torch.linspace(0, flat.numel() - 1, 7).long()
    return {"shape": list(t.shape), "sum": float(t.sum()), "abs": float(t.abs().sum()),
            "picks": [float(flat[i]) for i in idx]}


def outputs():
    """The same computations as when RECORDED was made."""
    out = {}
    # GPT: seeded init, forward, weights, cache, a few training steps, generation
    torch.manual_seed(0)
    config = gpt.GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=4, d_model=32)
    model = gpt.GPT(config)
    idx = torch.arange(24).remainder(20).view(2, 12)
    logits, loss, weights = model(idx, idx.roll(-1, 1), need_weights=True)
    out["gpt_init_logits"] = stats(logits); out["gpt_init_loss"] = float(loss.detach()); out["gpt_weights"] = stats(weights)
    data = torch.arange(400).remainder(17) * 7 % 20
    hist = gpt.train_gpt(model, data, data, steps=12, batch_size=4, lr=3e-3, eval_every=6, eval_windows=5, progress=False, use_cache=False)
    out["gpt_train_loss"] = hist["train_loss"]; out["gpt_val_loss"] = hist["val_loss"]
    logits, _ = model(idx)
    out["gpt_trained_logits"] = stats(logits)
    g = torch.Generator().manual_seed(3)
    out["gpt_generate"] = gpt.generate(model, idx[:1, :3], 20, 0.8, g).tolist()
    out["gpt_state_keys"] = list(model.state_dict().keys())

    # RNNsearch and EncoderDecoder: seeded init, teacher-forced forward, greedy decoding, a train step
    for attention in (True, False):
        cfg = seq2seq.ModelConfig(attention=attention, embed=8, enc_hidden=8, dec_hidden=12, align=6)
        m = seq2seq.build_model(cfg, 11, 13)
        gen = torch.Generator().manual_seed(1)
        src = torch.randint(3, 11, (3, 7), generator=gen)
        lengths = torch.tensor([7, 5, 2]); src[1, 5:] = 0; src[2, 2:] = 0
        tgt = torch.randint(3, 13, (3, 6), generator=gen); tgt[:, 0] = 1
        logits, alphas = m(src, lengths, tgt)
        name = "rnnsearch" if attention else "encdec"
        out[name + "_logits"] = stats(logits)
        if alphas is not None: out[name + "_alphas"] = stats(alphas)
        ids, att = m.greedy(src, lengths, max_len=8)
        out[name + "_greedy"] = ids.tolist()
        opt = torch.optim.Adam(m.parameters(), 1e-2)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 13), tgt.roll(-1, 1).reshape(-1))
        loss.backward(); opt.step()
        out[name + "_after_step"] = stats(m(src, lengths, tgt)[0])
        out[name + "_state_keys"] = list(m.state_dict().keys())
    # The Chapter 5/6 modules: multi-head attention, encoder block (pre/post), decoder block
    from attention_course.multi_head import MultiHeadSelfAttention
    from attention_course.transformer import DecoderBlock, TransformerBlock
    torch.manual_seed(5)
    mha = MultiHeadSelfAttention(16, 4)
    x = torch.randn(2, 6, 16)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    y, w = mha(x, causal)
    out["mha_out"] = stats(y); out["mha_weights"] = stats(w)
    y, w = mha(x, None, memory=torch.randn(2, 4, 16))
    out["mha_cross_out"] = stats(y)
    for norm_first in (True, False):
        torch.manual_seed(6)
        block = TransformerBlock(16, 4, norm_first=norm_first)
        y, _ = block(3 * x + 1, causal)
        out[f"block_{'pre' if norm_first else 'post'}"] = stats(y)
    torch.manual_seed(7)
    dec = DecoderBlock(16, 4)
    y, sw, cw = dec(x, torch.randn(2, 5, 16), torch.tensor([True, True, True, False, False])[None, None, None])
    out["decoder_block"] = stats(y); out["decoder_cross_weights"] = stats(cw)
    return out


@pytest.fixture(scope="module")
def now():
    with torch_threads(1):
        return outputs()


def same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return b == pytest.approx(a, rel=1e-5, abs=1e-7)
    return a == b


# The GPT's attention parameters were renamed (one attention, one set of names); the documented mapping
# (attention_course.gpt.GPT._init): qkv.weight = cat([W_q, W_k, W_v], 1).T, qkv.bias = cat([b_q, b_k, b_v]),
# proj.weight = W_o.T, proj.bias = b_o. Everything else keeps its name.
RENAMED = {"attn.qkv.weight": ["attn.W_q", "attn.W_k", "attn.W_v"], "attn.proj.weight": ["attn.W_o"],
           "attn.qkv.bias": ["attn.b_q", "attn.b_k", "attn.b_v"], "attn.proj.bias": ["attn.b_o"]}


def renamed(keys):
    out = []
    for key in keys:
        suffix = next((old for old in RENAMED if key.endswith(old)), None)
        out += [key[: -len(suffix)] + new for new in RENAMED[suffix]] if suffix else [key]
    return out


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_outputs_are_those_of_the_code_before_the_refactor(now, name):
    if name == "gpt_state_keys":
        assert sorted(renamed(RECORDED[name])) == sorted(now[name])
        return
    assert same(RECORDED[name], now[name]), f"{name}: before {RECORDED[name]}, now {now[name]}"


def test_the_gpt_is_built_from_the_one_block_and_the_one_attention():
    import inspect

    from attention_course.multi_head import MultiHeadSelfAttention
    from attention_course.transformer import TransformerBlock

    model = gpt.GPT(gpt.GPTConfig(vocab_size=10, block_size=8, n_layer=2, num_heads=2, d_model=8))
    assert all(type(b) is TransformerBlock and type(b.attn) is MultiHeadSelfAttention for b in model.blocks)
    assert gpt.GPTConfig(10, n_head=2).num_heads == 2  # the old keyword still works
    assert not hasattr(gpt, "CausalSelfAttention") and "softmax" not in inspect.getsource(gpt.GPT)
