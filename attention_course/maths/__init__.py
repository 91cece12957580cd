"""The attention maths (layer 1): functions and ``nn.Module`` building blocks, no models or training.

Bottom up: :mod:`.numerics` (when two float computations agree), :mod:`.self_attention` (the one
masked softmax, scaled dot-product attention, causal, window and padding masks, the sinusoidal
encoding; Chapter 4), :mod:`.positions` (RoPE and ``repeat_kv``; Chapter 8), :mod:`.multi_head`
(multi-head attention and its KV cache; Chapter 5), :mod:`.bahdanau` (Chapters 1-2),
:mod:`.scoring` (the general form; Chapter 3), :mod:`.online_softmax` (FlashAttention's tiling;
Chapter 8), :mod:`.modern` (RMSNorm, grouped-query attention, SwiGLU; Chapter 8) and
:mod:`.transformer` (the encoder and decoder blocks; Chapters 6-7).
"""
