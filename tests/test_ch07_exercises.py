"""The Chapter 7 exercise checks can fail, and say why: run them against typical wrong answers.

Each check cell of solutions/ch07_transformer_on_dates/transformer_on_dates.ipynb runs after a
deliberately wrong implementation. Its PUBLIC part (what a student sees; the hidden tests are cut off
in the release) must raise AssertionError whose message names the mistake (the words listed with each
wrong answer), never let a raw framework error through (the whole cell starts with the public part, so it
rejects them too). With the reference solution every check passes. At least eight wrong answers per exercise.
"""
from __future__ import annotations

import textwrap

import pytest

from course_tools import ALLOWED, ROOT, ExerciseNotebook, course_imports

NOTEBOOK = ROOT / "solutions" / "ch07_transformer_on_dates" / "transformer_on_dates.ipynb"
EXERCISE = ExerciseNotebook(NOTEBOOK)
CELLS = EXERCISE.sources  # grade_id -> source


run = EXERCISE.run  # the check's message after a given answer ("" if it passed)


# ---------------------------------------------------------------------------- 1. cross-attention
CROSS = """
def cross_attention(queries, memory, W_q, W_k, W_v, W_o, num_heads, source_lengths):
    B, L, d = queries.shape
    T = memory.shape[1]
    d_k = d // num_heads
    def heads(x):
        return SPLIT
    KV = memory
    Q, K, V = heads(queries @ W_q), heads(KV @ W_k), heads(KV @ W_v)
    scores = Q @ K.transpose(-2, -1) / SCALE
    allowed = ALLOWED
    MASKING
    out = MERGE
    return OUTPUT, weights
"""
GOOD_CROSS = {
    "SPLIT": "x.reshape(B, x.shape[1], num_heads, d_k).transpose(1, 2)",
    "SCALE": "math.sqrt(d_k)",
    "ALLOWED": "(torch.arange(T)[None, :] < source_lengths[:, None])[:, None, None, :]",
    "MASKING": "weights = torch.softmax(scores.masked_fill(~allowed, float('-inf')), dim=-1)",
    "MERGE": "(weights @ V).transpose(1, 2).reshape(B, L, d)",
    "OUTPUT": "out @ W_o",
}


def cross(**change) -> str:
    body = CROSS
    for key, value in {**GOOD_CROSS, **change}.items():
        body = body.replace(key, value)
    return body


CROSS_WRONG = {
    "mask over the queries": (cross(ALLOWED="(torch.arange(L)[None, :] < source_lengths[:, None])[:, None, :, None]"),
                              ("wrong axis", "queries", "keys")),
    "mask inverted": (cross(MASKING="weights = torch.softmax(scores.masked_fill(allowed, float('-inf')), dim=-1)"),
                      ("inverted", "key_padding_mask")),
    "mask after the softmax": (cross(MASKING="weights = torch.softmax(scores, dim=-1) * allowed"), ("after the softmax",)),
    "zero instead of -inf": (cross(MASKING="weights = torch.softmax(scores.masked_fill(~allowed, 0.0), dim=-1)"),
                             ("set to 0, not to -inf",)),
    "no mask": (cross(MASKING="weights = torch.softmax(scores, dim=-1)"), ("no padding mask",)),
    "keys and values from the decoder": (cross().replace("KV = memory", "KV = queries"), ("self-attention", "memory @ w_k")),
    "no 1/sqrt(d_k)": (cross(SCALE="1.0"), ("not divided by sqrt(d_k)",)),
    "sqrt(d_model)": (cross(SCALE="math.sqrt(d)"), ("sqrt(d_model)",)),
    "softmax over the queries": (cross(MASKING="weights = torch.softmax(scores.masked_fill(~allowed, float('-inf')), dim=-2)"),
                                 ("wrong axis", "dim=-2")),
    "heads interleaved": (cross(SPLIT="x.reshape(B, x.shape[1], d_k, num_heads).permute(0, 3, 1, 2)"),
                          ("heads are split wrongly", "interleaves")),
    "heads reshaped without transpose": (cross(SPLIT="x.reshape(B, num_heads, x.shape[1], d_k)"),
                                         ("heads are split wrongly", "without a transpose")),
    "heads merged without transpose": (cross(MERGE="(weights @ V).reshape(B, L, d)"), ("heads are put back wrongly",)),
    "lengths off by one (one padding kept)": (
        cross(ALLOWED="(torch.arange(T)[None, :] <= source_lengths[:, None])[:, None, None, :]"),
        ("off by one", "padding position too many")),
    "lengths off by one (last real hidden)": (
        cross(ALLOWED="(torch.arange(T)[None, :] < source_lengths[:, None] - 1)[:, None, None, :]"),
        ("off by one", "hides the last real")),
    "W_o not applied": (cross(OUTPUT="out"), ("w_o is not applied",)),
    "weights averaged over the heads": (cross().replace("return out @ W_o, weights", "return out @ W_o, weights.mean(1)"),
                                        ("one weight map per head",)),
    "padding filled in place in the caller's memory": (cross().replace(
        "KV = memory", "memory[torch.arange(T)[None, :].expand(B, T) >= source_lengths[:, None]] = 0.0\n    KV = memory"),
        ("in place",)),
    "only the output returned": (cross().replace("return out @ W_o, weights", "return out @ W_o"), ("pair (output, weights)",)),
    "float32 whatever the input (float64 case)": (cross().replace("return out @ W_o, weights",
                                                                 "return (out @ W_o).float(), weights.float()"),
                                                  ("dtype torch.float64",)),
}

# ---------------------------------------------------------------------------- 2. Eq. 3
NOAM = """
def noam_lr(step, d_model, warmup):
    s = np.asarray(step, dtype=float)
    lr = BODY
    return float(lr) if lr.ndim == 0 else lr
"""


def noam(body="d_model ** -0.5 * np.minimum(s ** -0.5, s * warmup ** -1.5)") -> str:
    return NOAM.replace("BODY", body)


NOAM_WRONG = {
    "max instead of min": (noam("d_model ** -0.5 * np.maximum(s ** -0.5, s * warmup ** -1.5)"), ("max",)),
    "steps from 0": (noam("d_model ** -0.5 * np.minimum(np.maximum(s - 1, 1e-12) ** -0.5, (s - 1) * warmup ** -1.5)"),
                     ("counted from 0",)),
    "steps + 1": (noam("d_model ** -0.5 * np.minimum((s + 1) ** -0.5, (s + 1) * warmup ** -1.5)"), ("off by one",)),
    "no d_model**-0.5": (noam("np.minimum(s ** -0.5, s * warmup ** -1.5)"), ("d_model**-0.5 is missing",)),
    "d_model**0.5": (noam("d_model ** 0.5 * np.minimum(s ** -0.5, s * warmup ** -1.5)"), ("d_model**0.5",)),
    "warmup**-0.5 in the ramp": (noam("d_model ** -0.5 * np.minimum(s ** -0.5, s * warmup ** -0.5)"),
                                 ("warmup**-0.5", "mixed")),
    "step**-1.5 in the decay": (noam("d_model ** -0.5 * np.minimum(s ** -1.5, s * warmup ** -1.5)"),
                                ("step**-1.5", "mixed")),
    "warmup**1.5 (no warm-up either)": (noam("d_model ** -0.5 * np.minimum(s ** -0.5, s * warmup ** 1.5)"),
                                        ("no warm-up", "warmup**1.5")),
    "never decays": (noam("d_model ** -0.5 * s * warmup ** -1.5"), ("never decays",)),
    "no warm-up": (noam("d_model ** -0.5 * s ** -0.5"), ("no warm-up",)),
    "Python min() on arrays": ("""
        def noam_lr(step, d_model, warmup):
            return d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)
    """, ("works for one step", "np.minimum")),
    "if on the step": ("""
        def noam_lr(step, d_model, warmup):
            if step < warmup:
                return d_model ** -0.5 * step * warmup ** -1.5
            return d_model ** -0.5 * step ** -0.5
    """, ("works for one step", "if step < warmup")),
    "a list for an array": ("""
        def noam_lr(step, d_model, warmup):
            if np.ndim(step):
                return [d_model ** -0.5 * min(s ** -0.5, s * warmup ** -1.5) for s in step]
            return d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)
    """, ("numpy array", "list")),
}

# ---------------------------------------------------------------------------- 3. warm-up + linear decay
LINEAR = """
def linear_warmup_lr(step, d_model, warmup, total_steps):
    s = np.asarray(step, dtype=float)
    peak = PEAK
    fall = FALL
    lr = COMBINE
    return float(lr) if lr.ndim == 0 else lr
"""
GOOD_LINEAR = {"PEAK": "noam_lr(warmup, d_model, warmup)",
               "FALL": "np.clip((total_steps - s + 1) / (total_steps - warmup + 1), 0.0, 1.0)",
               "COMBINE": "np.minimum(noam_lr(np.minimum(s, warmup), d_model, warmup), peak * fall)"}


def linear(**change) -> str:
    body = LINEAR
    for key, value in {**GOOD_LINEAR, **change}.items():
        body = body.replace(key, value)
    return body


GOOD_NOAM = noam()
LINEAR_WRONG = {
    "decay from step 1": (GOOD_NOAM + linear(FALL="np.clip((total_steps - s + 1) / total_steps, 0.0, 1.0)"),
                          ("does not start after the warm-up",)),
    "zero at the last step": (GOOD_NOAM + linear(FALL="np.clip((total_steps - s) / (total_steps - warmup), 0.0, 1.0)"),
                              ("already 0 at the last step",)),
    "negative after the end": (GOOD_NOAM + linear(FALL="np.minimum((total_steps - s + 1) / (total_steps - warmup + 1), 1.0)"),
                               ("negative", "clip")),
    "product instead of min": (GOOD_NOAM + linear(COMBINE="peak * (s / warmup) * fall"), ("multiplied",)),
    "Eq. 3's decay": (GOOD_NOAM + linear(COMBINE="noam_lr(step, d_model, warmup) + 0 * fall"), ("eq. 3's decay",)),
    "no warm-up": (GOOD_NOAM + linear(COMBINE="peak * fall"), ("no warm-up",)),
    "steps from 0": (GOOD_NOAM + linear(COMBINE="np.minimum(noam_lr(np.clip(s - 1, 1, warmup), d_model, warmup) * (s > 1), "
                                                "peak * np.clip((total_steps - s + 2) / (total_steps - warmup + 1), 0, 1))"),
                     ("counted from 0",)),
    "peak without d_model**-0.5": (GOOD_NOAM + linear(
        PEAK="warmup ** -0.5",
        COMBINE="np.minimum(peak * np.minimum(s, warmup) / warmup, peak * fall)"), ("lacks the factor d_model**-0.5",)),
    "a wrong noam_lr is blamed first": (noam("np.minimum(s ** -0.5, s * warmup ** -1.5)") + linear(), ("fix noam_lr first",)),
    "Python min() on arrays": (GOOD_NOAM + textwrap.dedent("""
        def linear_warmup_lr(step, d_model, warmup, total_steps):
            peak = noam_lr(warmup, d_model, warmup)
            return max(0.0, min(noam_lr(min(step, warmup), d_model, warmup),
                                peak * (total_steps - step + 1) / (total_steps - warmup + 1)))
    """), ("works for one step",)),
}

# ---------------------------------------------------------------------------- 4. label smoothing
SMOOTH = """
def label_smoothing_loss(logits, targets, epsilon, pad=0):
    V = logits.shape[-1]
    log_p = LOGP
    q = Q
    per_position = PER
    keep = KEEP
    return REDUCE
"""
GOOD_SMOOTH = {"LOGP": "F.log_softmax(logits, dim=-1)",
               "Q": "(1 - epsilon) * F.one_hot(targets, V).to(log_p.dtype) + epsilon / V",
               "PER": "-(q * log_p).sum(-1)",
               "KEEP": "targets != pad",
               "REDUCE": "per_position[keep].mean()"}


def smooth(**change) -> str:
    body = SMOOTH
    for key, value in {**GOOD_SMOOTH, **change}.items():
        body = body.replace(key, value)
    return body


ONEHOT = "F.one_hot(targets, V).to(log_p.dtype)"
SMOOTH_WRONG = {
    "eps / (V - 1) over the wrong classes": (smooth(Q=f"(1 - epsilon) * {ONEHOT} + (1 - {ONEHOT}) * epsilon / (V - 1)"),
                                             ("v - 1", "every class")),
    "padding not left out": (smooth(REDUCE="per_position.mean()"), ("padding positions are not left out",)),
    "padding zeroed, divided by all positions": (smooth(REDUCE="(per_position * keep).sum() / keep.numel()"),
                                                 ("number of real target positions",)),
    "pad id hard-coded to 0": (smooth(KEEP="targets != 0"), ("pad argument is ignored",)),
    "mean over the vocabulary": (smooth(PER="-(q * log_p).mean(-1)"), ("mean over the vocabulary",)),
    "sum over the positions": (smooth(REDUCE="per_position[keep].sum()"), ("summed over the positions",)),
    "sign error": (smooth(PER="(q * log_p).sum(-1)"), ("sign",)),
    "no smoothing": (smooth(Q=ONEHOT), ("no smoothing",)),
    "smoothing applied to the logits": (smooth(LOGP="F.log_softmax((1 - epsilon) * logits + epsilon / V, dim=-1)",
                                               Q=ONEHOT), ("smoothed the logits",)),
    "eps / V forgotten": (smooth(Q=f"(1 - epsilon) * {ONEHOT}"), ("does not sum to 1",)),
    "eps and 1 - eps swapped": (smooth(Q=f"epsilon * {ONEHOT} + (1 - epsilon) / V"), ("swapped",)),
    "probabilities instead of log-probabilities": (smooth(LOGP="torch.softmax(logits, dim=-1)"), ("log-probabilities",)),
    "log of softmax (unstable)": (smooth(LOGP="torch.log(torch.softmax(logits, dim=-1))"), ("underflows", "f.log_softmax")),
    "returns a float": (smooth(REDUCE="per_position[keep].mean().item()"), ("must return a torch tensor", ".item()")),
    "detached": (smooth(REDUCE="per_position[keep].mean().detach()"), ("requires_grad",)),
    "one loss per position": (smooth(REDUCE="per_position"), ("one number", "one loss per position")),
    "targets changed in place": (smooth(KEEP="targets != pad\n    targets[~keep] = 0"), ("in place",)),
}

# ---------------------------------------------------------------------------- 5. greedy decoding
GREEDY = """
def greedy_decode(step, batch_size, bos, eos, max_len):
    tokens = torch.full((batch_size, 1), bos, dtype=torch.long)
    past, out = None, []
    done = torch.zeros(batch_size, dtype=torch.bool)
    for t in range(LOOP):
        logits, PAST = step(FEED, POSITIONS, past)
        next_token = NEXT
        out.append(next_token)
        done = done | (next_token == eos)
        if STOP:
            break
        tokens = APPEND
    return RESULT
"""
GOOD_GREEDY = {"LOOP": "max_len", "PAST": "past", "FEED": "tokens", "POSITIONS": "torch.tensor([t])",
               "NEXT": "logits[:, -1].argmax(dim=-1).masked_fill(done, 0)", "STOP": "bool(done.all())",
               "APPEND": "next_token[:, None]", "RESULT": "torch.stack(out, dim=1)"}


def greedy(**change) -> str:
    body = GREEDY
    for key, value in {**GOOD_GREEDY, **change}.items():
        body = body.replace(key, value)
    return body


PREFIX = dict(FEED="prefix[:, -1:]", APPEND="next_token[:, None]; prefix = torch.cat([prefix, tokens], 1)")
GREEDY_WRONG = {
    "cache not updated (present thrown away)": (greedy(PAST="present"), ("cache is not updated", "past=none")),
    "cache kept from the first call": (
        greedy(PAST="present")
        .replace("past, out = None, []", "past, out = None, []\n    first = True")
        .replace("out.append(next_token)",
                 "out.append(next_token)\n        past = present if first else past\n        first = False"),
        ("cache is not updated", "previous call")),
    "positions restart at 0": (greedy(POSITIONS="torch.tensor([0])"), ("restart at 0",)),
    "positions off by one": (greedy(POSITIONS="torch.tensor([t + 1])"), ("off by one",)),
    "whole prefix fed with the cache": (greedy(FEED="prefix", POSITIONS="torch.arange(t + 1)",
                                               APPEND="next_token[:, None]; prefix = torch.cat([prefix, tokens], 1)")
                                        .replace("past, out = None, []", "past, out = None, []\n    prefix = tokens"),
                                        ("whole prefix", "and the cache")),
    "no cache at all (whole prefix, past=None)": (greedy(FEED="prefix", POSITIONS="torch.arange(t + 1)", PAST="_",
                                                         APPEND="next_token[:, None]; prefix = torch.cat([prefix, tokens], 1)")
                                                  .replace("past, out = None, []", "past, out = None, []\n    prefix = tokens"),
                                                  ("without", "the cache")),
    "stops at the first EOS of any row": (greedy(STOP="bool(done.any())"), ("one row", "every row")),
    "never stops": (greedy(STOP="False"), ("did not stop",)),
    "no padding after EOS": (greedy(NEXT="logits[:, -1].argmax(dim=-1)"), ("padding (id 0)",)),
    "EOS dropped from the output": (greedy(RESULT="torch.stack(out, dim=1).masked_fill(torch.stack(out, dim=1) == eos, 0)"),
                                    ("eos is missing",)),
    "BOS in the output": (greedy(RESULT="torch.cat([torch.full((batch_size, 1), bos), torch.stack(out, dim=1)], 1)"),
                          ("starts with bos",)),
    "argmax over the batch axis": (greedy(NEXT="logits[:, -1].argmax(dim=0)"), ("wrong axis", "vocabulary")),
    "argmax over the positions axis": (greedy(NEXT="logits.argmax(dim=1)"), ("wrong axis", "vocabulary")),
    "first call without BOS": (greedy().replace("torch.full((batch_size, 1), bos", "torch.full((batch_size, 1), eos"),
                               ("first call must feed bos",)),
    "one token too few": (greedy(LOOP="max_len - 1"), ("fewer than max_len",)),
    "float token ids": (greedy(RESULT="torch.stack(out, dim=1).float()"), ("dtype torch.int64",)),
}

WRONG = {"test_cross_attention": CROSS_WRONG, "test_noam_lr": NOAM_WRONG, "test_linear_warmup_lr": LINEAR_WRONG,
         "test_label_smoothing_loss": SMOOTH_WRONG, "test_greedy_decode": GREEDY_WRONG}
CASES = [(check, name) for check, wrong in WRONG.items() for name in wrong]


def test_the_checks_pass_on_the_reference_solutions():
    for check_id in EXERCISE.graded:
        assert run(check_id, "", public=False) == "", check_id


def test_the_templates_are_correct_when_not_mutated():
    assert run("test_cross_attention", cross(), public=False) == ""
    assert run("test_noam_lr", noam(), public=False) == ""
    assert run("test_linear_warmup_lr", GOOD_NOAM + linear(), public=False) == ""
    assert run("test_label_smoothing_loss", smooth(), public=False) == ""
    assert run("test_greedy_decode", greedy(), public=False) == ""


def test_every_exercise_has_at_least_eight_wrong_answers():
    assert set(WRONG) == set(EXERCISE.graded)
    assert all(len(wrong) >= 8 for wrong in WRONG.values()), {k: len(v) for k, v in WRONG.items()}


@pytest.mark.parametrize("check_id,name", CASES, ids=[f"{c[5:]}:{n}" for c, n in CASES])
def test_public_check_names_the_mistake(check_id, name):
    source, words = WRONG[check_id][name]
    message = run(check_id, source)
    assert message, f"the public part of {check_id} passed this wrong answer"
    missing = [w for w in words if w.lower() not in message.lower()]
    assert not missing, f"the message does not name the mistake (missing {missing}):\n{message}"


def test_student_notebook_imports_only_the_checks():
    assert course_imports(NOTEBOOK) <= {*ALLOWED, "attention_course.grading.checks",
                                        "attention_course.grading.checks_transformer"}


@pytest.mark.numerics
def test_the_checks_decoder_is_the_date_transformers_decoder_and_cached_equals_uncached():
    """The step handed to greedy_decode is DateTransformer.decode (teacher forcing) plus the EOS rule; cached
    greedy decoding equals decoding without the cache for every case the check cell uses."""
    import torch

    from attention_course.grading import checks_transformer as ct
    from attention_course.maths.numerics import assert_agree, rounding_tolerance

    for kwargs in [dict(batch=3, stops=[4, 7, 2], seed=0), dict(batch=2, stops=[3, 12], seed=1, dtype=torch.float64),
                   dict(batch=1, stops=[1], seed=2), dict(batch=4, stops=[5, 5, 9, 2], seed=9, vocab=13, d_model=24,
                                                          num_heads=3),
                   dict(batch=2, stops=[20, 20], seed=4, dtype=torch.float64)]:
        step = ct.RecordingDecoder(kwargs.pop("batch"), kwargs.pop("stops"), **kwargs)
        prefix = torch.randint(3, step.vocab, (step.batch, 6), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            full, _, _ = step.model.decode(prefix, step.memory, step.mask)  # (B, 6, V)
            ours, _ = step._run(prefix, torch.arange(6), None)
        keep = [v for v in range(step.vocab) if v not in (step.PAD, step.BOS, step.EOS)]
        assert_agree(ours[..., keep], full[..., keep], reduction=step.model.config.d_ff)
        cached, uncached = step.decode(12), step.decode(12, cache=False)
        assert torch.equal(cached, uncached)
        # no near-ties: where a row is still writing, the best token wins by far more than rounding
        prefix = torch.cat([torch.full((step.batch, 1), step.BOS), cached], 1)
        with torch.no_grad():
            logits, _ = step._run(prefix[:, :-1], torch.arange(cached.shape[1]), None)  # (B, L, V)
        writing = torch.cat([torch.ones(step.batch, 1, dtype=torch.bool), (cached != step.EOS).cumprod(1)[:, :-1].bool()], 1)
        top2 = logits[writing].topk(2, dim=-1).values
        plain = logits[..., keep].abs().max().item()
        assert float((top2[:, 0] - top2[:, 1]).min()) > 10 * rounding_tolerance(step.dtype, step.model.config.d_ff) * plain
