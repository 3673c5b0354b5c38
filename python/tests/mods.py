"""The FlexAttention notebook's mods (shared/seeds/003), written as users write them, with the
canonical text each traces to. Shared by the tracing, library and GPU tests.

Each factory takes `index`, the wrapper of a captured tensor (flexjit.buffer for numpy arrays,
the identity for torch tensors), and `ops`, where torch-style functions come from (flexjit or
torch), so that one definition serves the CPU tests (numpy, no torch) and the GPU tests.
"""

import flexjit

SLIDING_WINDOW = 256
PREFIX_LENGTH = 200
NATTEN_W, NATTEN_K = 16, 3
SOFTCAP = 20.0


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def sliding_window(b, h, q_idx, kv_idx):
    causal_mask = q_idx >= kv_idx
    window_mask = q_idx - kv_idx <= SLIDING_WINDOW
    return causal_mask & window_mask


def prefix_lm(b, h, q_idx, kv_idx):
    return (kv_idx <= PREFIX_LENGTH) | (q_idx >= kv_idx)


def document_mask(document_id):
    def document_causal(b, h, q_idx, kv_idx):
        causal_mask = q_idx >= kv_idx
        document_mask = document_id[q_idx] == document_id[kv_idx]
        return causal_mask & document_mask
    return document_causal


def natten(b, h, q_idx, kv_idx):
    q_x, q_y = q_idx // NATTEN_W, q_idx % NATTEN_W
    kv_x, kv_y = kv_idx // NATTEN_W, kv_idx % NATTEN_W
    horizontal = (q_x - kv_x).abs() <= NATTEN_K
    vertical = (q_y - kv_y).abs() <= NATTEN_K
    return horizontal & vertical


def alibi_closure(alibi_bias):
    def alibi(score, b, h, q_idx, kv_idx):
        bias = alibi_bias[h] * (q_idx - kv_idx)
        return score + bias
    return alibi


def alibi_functional(num_heads, ops=flexjit):
    def alibi(score, b, h, q_idx, kv_idx):
        scale = ops.exp2(-((h + 1) * 8.0 / num_heads))
        bias = (q_idx - kv_idx) * scale
        return score + bias
    return alibi


def softcap(score, b, h, q_idx, kv_idx):
    score = score / SOFTCAP
    score = flexjit.tanh(score)
    return score * SOFTCAP


def relative_positional(score, b, h, q_idx, kv_idx):
    return score + (q_idx - kv_idx)


def relative_bias(bias):
    """bias [H, 2 S - 1]: a learned bias per head and distance (kv_idx - q_idx + S - 1)."""
    def rel(score, b, h, q_idx, kv_idx):
        return score + bias[h, kv_idx - q_idx + ((bias.shape[1] + 1) // 2 - 1)]
    return rel


def checkerboard(ops=flexjit):
    def checker(score, b, h, q_idx, kv_idx):
        score = ops.where(abs(kv_idx - q_idx) % 1 == 0, score * 0.5, score)
        score = ops.where(abs(kv_idx - q_idx) % 2 == 0, score * 2.0, score)
        return score
    return checker


def causal_bias(ops=flexjit):
    def bias(score, b, h, q_idx, kv_idx):
        return ops.where(q_idx >= kv_idx, score, -float("inf"))
    return bias


# (name, mod kind, canonical text) of the mods above; buffers are buf0, ...
EXPECTED = {
    "causal": "(kv_idx <= q_idx)",
    "sliding_window": "((kv_idx <= q_idx) && ((q_idx - kv_idx) <= 256))",
    "prefix_lm": "((kv_idx <= 200) || (kv_idx <= q_idx))",
    "document": "((kv_idx <= q_idx) && (buf0:i32:1[q_idx] == buf0:i32:1[kv_idx]))",
    "natten": ("((abs(((q_idx // 16) - (kv_idx // 16))) <= 3) && "
               "(abs(((q_idx % 16) - (kv_idx % 16))) <= 3))"),
    "alibi_closure": "(score + (buf0:f32:1[h] * float((q_idx - kv_idx))))",
    "alibi_functional": ("(score + (float((q_idx - kv_idx)) * "
                         "exp2(-(((float((h + 1)) * 8.0f) / 4.0f)))))"),
    "softcap": "(tanh((score / 20.0f)) * 20.0f)",
    "relative_positional": "(score + float((q_idx - kv_idx)))",
    "relative_bias": "(score + buf0:f32:2[h, ((kv_idx - q_idx) + 63)])",
    "checkerboard": ("let t0 = abs((kv_idx - q_idx))\n"
                     "let t1 = where(((t0 % 1) == 0), (score * 0.5f), score)\n"
                     "where(((t0 % 2) == 0), (t1 * 2.0f), t1)"),
    "causal_bias": "where((kv_idx <= q_idx), score, -inf)",
}


def alibi_slopes(num_heads):
    return [2.0 ** (-(h + 1) * 8.0 / num_heads) for h in range(num_heads)]
