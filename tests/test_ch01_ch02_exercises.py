"""The checks of exercises 1 and 2 fail on the typical mistakes (mutants) and pass the solutions.

Each check cell (public and hidden tests) of the nbgrader source is run against the
solution and against wrong implementations: the solution must pass, each mutant must
raise an AssertionError, the way a student would see it.
"""
import textwrap

import pytest

from course_tools import ROOT, ExerciseNotebook, course_imports

NOTEBOOKS = {
    "ch01": ROOT / "solutions" / "ch01_origin" / "origin.ipynb",
    "ch02": ROOT / "solutions" / "ch02_bahdanau_attention" / "bahdanau_attention.ipynb",
}
EXERCISES = {chapter: ExerciseNotebook(path) for chapter, path in NOTEBOOKS.items()}


def namespace(chapter):
    """Run the notebook's imports and solution cells (not the setup cell or the checks)."""
    return EXERCISES[chapter].namespace()


def check(chapter, function):
    return EXERCISES[chapter].sources[f"test_{function}"]


MUTANTS = {
    ("ch01", "final_context"): {
        "last padded position": """
            def final_context(encoder_outputs, lengths):
                return encoder_outputs[:, -1]
        """,
        "off by one (position = length)": """
            def final_context(encoder_outputs, lengths):
                lengths = torch.as_tensor(lengths).long()
                return encoder_outputs[torch.arange(encoder_outputs.shape[0]), lengths.clamp(max=encoder_outputs.shape[1] - 1)]
        """,
        "lengths given as a list not handled": """
            def final_context(encoder_outputs, lengths):
                return encoder_outputs[torch.arange(encoder_outputs.shape[0]), lengths - 1]
        """,
        "first position": """
            def final_context(encoder_outputs, lengths):
                return encoder_outputs[:, 0]
        """,
    },
    ("ch01", "accuracy_by_length"): {
        "overall accuracy in every bucket": """
            def accuracy_by_length(predictions, targets, lengths, bins):
                acc = np.mean([p == t for p, t in zip(predictions, targets)])
                return np.full(len(bins) - 1, acc)
        """,
        "right edge inclusive": """
            def accuracy_by_length(predictions, targets, lengths, bins):
                correct = np.array([p == t for p, t in zip(predictions, targets)], dtype=float)
                lengths = np.asarray(lengths)
                out = np.full(len(bins) - 1, np.nan)
                for k in range(len(bins) - 1):
                    inside = (lengths > bins[k]) & (lengths <= bins[k + 1])
                    if inside.any():
                        out[k] = correct[inside].mean()
                return out
        """,
        "character accuracy instead of exact match": """
            def accuracy_by_length(predictions, targets, lengths, bins):
                correct = np.array([np.mean([a == b for a, b in zip(p, t)]) for p, t in zip(predictions, targets)])
                lengths = np.asarray(lengths)
                out = np.full(len(bins) - 1, np.nan)
                for k in range(len(bins) - 1):
                    inside = (lengths >= bins[k]) & (lengths < bins[k + 1])
                    if inside.any():
                        out[k] = correct[inside].mean()
                return out
        """,
        "a list, with 0.0 for an empty bucket (issue 17)": """
            def accuracy_by_length(predictions, targets, lengths, bins):
                out = []
                for lo, hi in zip(bins[:-1], bins[1:]):
                    hits = [p == t for p, t, l in zip(predictions, targets, lengths) if lo <= l < hi]
                    out.append(sum(hits) / len(hits) if hits else 0.0)
                return out
        """,
        "empty bucket gives 0": """
            def accuracy_by_length(predictions, targets, lengths, bins):
                correct = np.array([p == t for p, t in zip(predictions, targets)], dtype=float)
                lengths = np.asarray(lengths)
                out = np.zeros(len(bins) - 1)
                for k in range(len(bins) - 1):
                    inside = (lengths >= bins[k]) & (lengths < bins[k + 1])
                    if inside.any():
                        out[k] = correct[inside].mean()
                return out
        """,
    },
    ("ch02", "bidirectional_annotations"): {
        "one-way encoder (forward twice)": """
            def bidirectional_annotations(x, lengths, forward_cell, backward_cell):
                B, T, _ = x.shape
                real = (torch.arange(T)[None, :] < torch.as_tensor(lengths)[:, None]).to(x.dtype)
                h, out = x.new_zeros(B, forward_cell.hidden_size), []
                for t in range(T):
                    h = forward_cell(x[:, t], h) * real[:, t, None]
                    out.append(h)
                H = torch.stack(out, 1)
                return torch.cat([H, H], -1)
        """,
        "one-way encoder (backward cell, left to right)": """
            def bidirectional_annotations(x, lengths, forward_cell, backward_cell):
                B, T, _ = x.shape
                real = (torch.arange(T)[None, :] < torch.as_tensor(lengths)[:, None]).to(x.dtype)
                hf, hb, f, b = x.new_zeros(B, forward_cell.hidden_size), x.new_zeros(B, backward_cell.hidden_size), [], []
                for t in range(T):
                    hf = forward_cell(x[:, t], hf) * real[:, t, None]
                    hb = backward_cell(x[:, t], hb) * real[:, t, None]
                    f.append(hf); b.append(hb)
                return torch.cat([torch.stack(f, 1), torch.stack(b, 1)], -1)
        """,
        "backward starts at the padding": """
            def bidirectional_annotations(x, lengths, forward_cell, backward_cell):
                B, T, _ = x.shape
                real = (torch.arange(T)[None, :] < torch.as_tensor(lengths)[:, None]).to(x.dtype)
                h, f = x.new_zeros(B, forward_cell.hidden_size), []
                for t in range(T):
                    h = forward_cell(x[:, t], h) * real[:, t, None]
                    f.append(h)
                h, b = x.new_zeros(B, backward_cell.hidden_size), [None] * T
                for t in reversed(range(T)):
                    h = backward_cell(x[:, t], h)  # no mask: reads the padding first
                    b[t] = h * real[:, t, None]
                return torch.cat([torch.stack(f, 1), torch.stack(b, 1)], -1)
        """,
        "backward states in reading order (not aligned with x_j)": """
            def bidirectional_annotations(x, lengths, forward_cell, backward_cell):
                B, T, _ = x.shape
                real = (torch.arange(T)[None, :] < torch.as_tensor(lengths)[:, None]).to(x.dtype)
                h, f = x.new_zeros(B, forward_cell.hidden_size), []
                for t in range(T):
                    h = forward_cell(x[:, t], h) * real[:, t, None]
                    f.append(h)
                h, b = x.new_zeros(B, backward_cell.hidden_size), []
                for t in reversed(range(T)):
                    h = backward_cell(x[:, t], h) * real[:, t, None]
                    b.append(h)
                return torch.cat([torch.stack(f, 1), torch.stack(b, 1)], -1)
        """,
    },
    ("ch02", "additive_score"): {
        "no tanh": """
            def additive_score(s_prev, H, W_s, W_h, v):
                return ((s_prev @ W_s.T)[:, None, :] + H @ W_h.T) @ v
        """,
        "no v (returns the hidden layer summed)": """
            def additive_score(s_prev, H, W_s, W_h, v):
                return torch.tanh((s_prev @ W_s.T)[:, None, :] + H @ W_h.T).sum(-1)
        """,
        "query of sentence 0 for the whole batch": """
            def additive_score(s_prev, H, W_s, W_h, v):
                return torch.tanh((s_prev[:1] @ W_s.T)[:, None, :] + H @ W_h.T) @ v
        """,
    },
    ("ch02", "masked_softmax"): {
        "softmax over the batch axis": """
            def masked_softmax(scores, mask):
                return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=0).nan_to_num(0.0)
        """,
        "padding not masked": """
            def masked_softmax(scores, mask):
                return torch.softmax(scores, dim=-1)
        """,
        "zeroed after the softmax, not renormalised": """
            def masked_softmax(scores, mask):
                return torch.softmax(scores, dim=-1) * mask
        """,
        "mask inverted": """
            def masked_softmax(scores, mask):
                return torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1).nan_to_num(0.0)
        """,
    },
    ("ch02", "context_vector"): {
        "plain mean of the annotations": """
            def context_vector(weights, H):
                return H.mean(1)
        """,
        "weights of sentence 0 for all": """
            def context_vector(weights, H):
                return torch.einsum("t,btd->bd", weights[0], H)
        """,
        "sum over the feature axis": """
            def context_vector(weights, H):
                return (weights[:, :, None] * H).sum(2)
        """,
    },
    ("ch02", "decoder_step"): {
        "scores with s_i instead of s_{i-1}": """
            def decoder_step(y_prev, s_prev, H, mask, W_s, W_h, v, cell):
                alpha = masked_softmax(additive_score(s_prev, H, W_s, W_h, v), mask)
                s = cell(torch.cat([y_prev, context_vector(alpha, H)], -1), s_prev)
                alpha = masked_softmax(additive_score(s, H, W_s, W_h, v), mask)  # re-scored with s_i
                c = context_vector(alpha, H)
                return s, c, alpha
        """,
        "padding not masked": """
            def decoder_step(y_prev, s_prev, H, mask, W_s, W_h, v, cell):
                alpha = torch.softmax(additive_score(s_prev, H, W_s, W_h, v), -1)
                c = context_vector(alpha, H)
                return cell(torch.cat([y_prev, c], -1), s_prev), c, alpha
        """,
        "context left out of the state update": """
            def decoder_step(y_prev, s_prev, H, mask, W_s, W_h, v, cell):
                alpha = masked_softmax(additive_score(s_prev, H, W_s, W_h, v), mask)
                c = context_vector(alpha, H)
                return cell(torch.cat([y_prev, torch.zeros_like(c)], -1), s_prev), c, alpha
        """,
        "inputs concatenated in the wrong order": """
            def decoder_step(y_prev, s_prev, H, mask, W_s, W_h, v, cell):
                alpha = masked_softmax(additive_score(s_prev, H, W_s, W_h, v), mask)
                c = context_vector(alpha, H)
                x = torch.cat([c, y_prev], -1)
                return cell(x, s_prev), c, alpha
        """,
    },
}

CASES = [(ch, fn, name) for (ch, fn), mutants in MUTANTS.items() for name in mutants]


@pytest.mark.parametrize("chapter,function", sorted(MUTANTS), ids=lambda x: x)
def test_solution_passes_its_check(chapter, function):
    ns = namespace(chapter)
    exec(check(chapter, function), ns)


@pytest.mark.parametrize("chapter,function,mutant", CASES, ids=lambda x: str(x))
def test_check_catches_the_mistake(chapter, function, mutant):
    ns = namespace(chapter)
    exec(textwrap.dedent(MUTANTS[(chapter, function)][mutant]), ns)
    with pytest.raises(AssertionError):
        exec(check(chapter, function), ns)


def test_every_exercise_has_mutants():
    for chapter in NOTEBOOKS:
        graded = EXERCISES[chapter].graded
        assert {f"test_{fn}" for (ch, fn) in MUTANTS if ch == chapter} == set(graded)


def test_student_notebooks_do_not_import_the_answers():
    for chapter, path in NOTEBOOKS.items():
        assert course_imports(path) <= {"attention_course.grading.checks"}, chapter
        assert "seq2seq" not in path.read_text(), chapter
