"""One GPT with switches: GPT-2 style or modern, in plain PyTorch.

GPT-2 style (Radford et al. 2019): LayerNorm with biases, GELU MLP, learned position embeddings.
Modern (Llama-like): RMSNorm, SwiGLU MLP, rotary position embeddings (RoPE), grouped-query
attention (GQA; ``n_kv_head=1`` is multi-query attention), optional QK-norm, no biases. Every
switch is a field of ``GPTConfig``, so chapter 03 can change one at a time and measure it.

Attention runs through ``torch.nn.functional.scaled_dot_product_attention`` (flash kernels on a
GPU). ``forward`` takes an optional ``KVCache`` and the position of the first new token, so the
same module serves training (whole sequences) and generation (prefill, then one token at a time).

>>> model = GPT(GPTConfig.modern(vocab_size=300, n_layer=2, n_embd=64, n_head=4, block_size=32))
>>> logits, loss = model(torch.zeros(1, 8, dtype=torch.long), torch.zeros(1, 8, dtype=torch.long))
>>> tuple(logits.shape), loss.item() > 0
((1, 8, 300), True)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.checks import ConfigError, check_choice, check_range


@dataclass(frozen=True)
class GPTConfig:
    """Shapes and switches of the model. ``GPTConfig.gpt2(...)``, ``.modern(...)`` and
    ``.from_depth(depth)`` give sensible presets; every field can be overridden."""

    vocab_size: int = 4096
    block_size: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 0  # 0 = same as n_head (multi-head); 1 = multi-query; in between = grouped-query
    n_embd: int = 256
    norm: str = "rmsnorm"  # "rmsnorm" | "layernorm"
    mlp: str = "swiglu"  # "swiglu" | "gelu"
    gelu_approximate: str = "tanh"  # GELU MLP only: "tanh" (GPT-2's gelu_new) | "none" (exact erf, nanoGPT's nn.GELU)
    position: str = "rope"  # "rope" | "learned"
    bias: bool = False
    qk_norm: bool = False
    tie_embeddings: bool = True
    dropout: float = 0.0
    rope_theta: float = 10000.0
    # Position Interpolation (Chen et al. 2023): RoPE angles are computed at position / rope_scaling,
    # so a model extended to k times its trained context sees angles in the range it was trained on.
    rope_scaling: float = 1.0
    norm_eps: float = 1e-5

    def __post_init__(self):
        check_range("vocab_size", self.vocab_size, 2, 1_000_000)
        check_range("block_size", self.block_size, 1, 1_000_000)
        check_range("n_layer", self.n_layer, 1, 1000)
        check_range("n_head", self.n_head, 1, 1024)
        check_range("n_kv_head", self.n_kv_head, 0, self.n_head)
        check_range("n_embd", self.n_embd, 1, 65536)
        check_choice("norm", self.norm, ("rmsnorm", "layernorm"))
        check_choice("mlp", self.mlp, ("swiglu", "gelu"))
        check_choice("position", self.position, ("rope", "learned"))
        check_choice("gelu_approximate", self.gelu_approximate, ("tanh", "none"))
        check_range("dropout", self.dropout, 0.0, 1.0)
        check_range("rope_theta", self.rope_theta, 1.0, 1e12)
        check_range("rope_scaling", self.rope_scaling, 1.0, 1e6)
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd={self.n_embd} must be a multiple of n_head={self.n_head}")
        if self.n_head % self.kv_heads:
            raise ConfigError(f"n_head={self.n_head} must be a multiple of n_kv_head={self.kv_heads}")
        if self.position == "rope" and self.head_dim % 2:
            raise ConfigError(f"RoPE needs an even head size, got n_embd/n_head = {self.head_dim}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def kv_heads(self) -> int:
        return self.n_kv_head or self.n_head

    @property
    def mlp_hidden(self) -> int:
        """4x width for GELU; for SwiGLU 8/3 x width (same parameters, three matrices), rounded up to 32."""
        if self.mlp == "gelu":
            return 4 * self.n_embd
        return 32 * math.ceil(8 * self.n_embd / 3 / 32)

    @classmethod
    def gpt2(cls, **overrides) -> "GPTConfig":
        """GPT-2's components: LayerNorm + biases, GELU, learned positions, tied embeddings."""
        base = dict(norm="layernorm", mlp="gelu", position="learned", bias=True, qk_norm=False, tie_embeddings=True)
        return cls(**{**base, **overrides})

    @classmethod
    def modern(cls, **overrides) -> "GPTConfig":
        """Llama-style components: RMSNorm, SwiGLU, RoPE, no biases (GQA/QK-norm by choice)."""
        base = dict(norm="rmsnorm", mlp="swiglu", position="rope", bias=False)
        return cls(**{**base, **overrides})

    @classmethod
    def from_depth(cls, depth: int, style: str = "modern", **overrides) -> "GPTConfig":
        """nanochat's single knob: depth layers, width 64 x depth; here with heads of 64 dimensions
        (nanochat's are 128: on an H100 they trained the depth-12 benchmark 3% faster, bench.py).

        >>> GPTConfig.from_depth(4).n_embd, GPTConfig.from_depth(4).n_head
        (256, 4)
        """
        check_range("depth", depth, 1, 1000)
        check_choice("style", style, ("modern", "gpt2"))
        shape = dict(n_layer=depth, n_embd=64 * depth, n_head=depth)
        preset = cls.modern if style == "modern" else cls.gpt2
        return preset(**{**shape, **overrides})

    def with_overrides(self, **changes) -> "GPTConfig":
        return replace(self, **changes)


# ----------------------------------------------------------------------------------------------
# Components


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight: LayerNorm without centring or bias (Zhang & Sennrich 2019)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in float32 (in bf16 the mean of squares loses too many digits). PyTorch's fused
        # kernel computes x * rsqrt(mean(x^2) + eps) in one op: at batch 1 a decode step is
        # bounded by per-op overhead, and the three-op form costs twice as much.
        if x.dtype == torch.float32:
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
        normed = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps)
        return normed.type_as(x) * self.weight


def make_norm(config: GPTConfig, dim: int | None = None) -> nn.Module:
    dim = dim or config.n_embd
    if config.norm == "rmsnorm":
        return RMSNorm(dim, config.norm_eps)
    return nn.LayerNorm(dim, eps=config.norm_eps, bias=config.bias)


def rope_tables(head_dim: int, length: int, theta: float = 10000.0,
                scaling: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables, (length, head_dim/2): pair i of a head rotates by
    (position / scaling) * theta^(-2i/d); ``scaling`` > 1 is Position Interpolation."""
    inverse_frequency = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float32) / scaling, inverse_frequency)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (first half, second half) pair of x (B, H, T, D) by the angles of its position.

    ``cos``/``sin`` are (T, D/2) when every row has the same positions, or (B, T, D/2) when each
    row has its own (a left-padded batch). Dot products of rotated queries and keys then depend
    only on their distance (Su et al. 2021).
    """
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    per_row = cos.dim() == 3
    if cos.dtype != x.dtype:
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    if per_row:  # (B, T, D/2) -> (B, 1, T, D/2): broadcast over heads; (T, D/2) broadcasts as it is
        cos, sin = cos[:, None], sin[:, None]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def row_positions(pad: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """Positions (B, length) of slots start..start+length-1 in a left-padded batch.

    Row b begins with ``pad[b]`` padding slots, so its first real token sits at slot ``pad[b]`` and
    gets position 0, exactly as if it were alone. (Padding slots get position 0; nothing sees them.)

    >>> row_positions(torch.tensor([0, 2]), start=0, length=4).tolist()
    [[0, 1, 2, 3], [0, 0, 0, 1]]
    """
    slots = torch.arange(start, start + length, device=pad.device)
    return (slots[None, :] - pad[:, None]).clamp(min=0)


def padded_causal_mask(pad: torch.Tensor, start: int, length: int, total: int) -> torch.Tensor:
    """Which keys each query may attend to in a left-padded batch: (B, 1, length, total), True = visible.

    Queries are slots start..start+length-1, keys the last ``total`` slots up to the same end.
    A query sees keys at or before its own slot that are not padding (the key padding mask). A
    padding query sees only itself: a row with no visible key would make the softmax 0/0 = NaN.

    >>> padded_causal_mask(torch.tensor([1]), start=0, length=3, total=3)[0, 0].int().tolist()
    [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    """
    query = torch.arange(start, start + length, device=pad.device)[:, None]
    key = torch.arange(start + length - total, start + length, device=pad.device)[None, :]
    visible = ((key <= query) & (key >= pad[:, None, None])) | (key == query)
    return visible[:, None]


def check_token_ids(idx: torch.Tensor, vocab_size: int | None = None) -> None:
    """Raise ValueError unless ``idx`` is a (batch, time) tensor of integer ids, each in
    [0, vocab_size) when ``vocab_size`` is given.

    ``GPT.embed`` checks only the shape and dtype: the range takes a pass over the ids (and on a GPU
    a wait for them) that every training step would pay. Entry points that take ids from a caller
    check the range too, so a bad id is named here rather than failing inside the embedding lookup.

    >>> check_token_ids(torch.tensor([[1, 2, 300]]), vocab_size=300)
    Traceback (most recent call last):
    ...
    ValueError: token ids must be in [0, 300); got 1..300
    """
    if not isinstance(idx, torch.Tensor):
        raise ValueError(f"token ids must be a (batch, time) tensor of integers, got {type(idx).__name__} "
                         "(a list of rows: torch.tensor(ids))")
    # The dtypes the embedding lookup takes; a float tensor would have to be cast, truncating 1.7 to 1.
    if idx.dim() != 2 or idx.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"token ids must be a (batch, time) tensor of integers, got {idx.dtype} of shape "
                         f"{tuple(idx.shape)} (one sequence: ids[None])")
    if vocab_size is not None and idx.numel():
        low, high = (int(v) for v in torch.aminmax(idx))
        if low < 0 or high >= vocab_size:
            raise ValueError(f"token ids must be in [0, {vocab_size}); got {low}..{high}")


class KVCache:
    """Keys and values of past positions, preallocated per layer: (B, n_kv_head, max_len, head_dim).

    Slot t of every row is written at step t. In a left-padded batch the slots of a row's padding
    are written too but never attended to (see ``padded_causal_mask``).
    """

    def __init__(self, config: GPTConfig, batch_size: int, max_len: int | None = None,
                 device=None, dtype=torch.float32):
        self.max_len = max_len or config.block_size
        shape = (config.n_layer, batch_size, config.kv_heads, self.max_len, config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        # One view per layer, taken once: a decode step is a few hundred tiny ops at batch 1, and
        # indexing self.k[layer, :, :, a:b] would cost a select and three slices on every call.
        # (Selected one by one: unbind's views may not be written in place under autograd when the
        # cache was made under no_grad.)
        self.layer_k = [self.k[layer] for layer in range(config.n_layer)]
        self.layer_v = [self.v[layer] for layer in range(config.n_layer)]

    def update(self, layer: int, start: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, H_kv, T, D) at positions start..start+T-1; return all keys/values so far."""
        end = start + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions; writing up to position {end}")
        keys, values = self.layer_k[layer], self.layer_v[layer]
        keys.narrow(2, start, end - start).copy_(k)
        values.narrow(2, start, end - start).copy_(v)
        return keys.narrow(2, 0, end), values.narrow(2, 0, end)


class Attention(nn.Module):
    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        self.config, self.layer = config, layer
        hd, heads, kv = config.head_dim, config.n_head, config.kv_heads
        # One matrix for queries, keys and values (GPT-2's c_attn); with GQA the k/v parts are narrower.
        self.c_attn = nn.Linear(config.n_embd, (heads + 2 * kv) * hd, bias=config.bias)
        self.c_proj = nn.Linear(heads * hd, config.n_embd, bias=config.bias)
        self.q_norm = RMSNorm(hd, config.norm_eps) if config.qk_norm else None
        self.k_norm = RMSNorm(hd, config.norm_eps) if config.qk_norm else None
        self.dropout = config.dropout

    def forward(self, x, rope=None, cache: KVCache | None = None, start: int = 0, pad: torch.Tensor | None = None):
        """x (B, T, C) at positions start..start+T-1; ``rope`` is (cos, sin) for those positions."""
        B, T, _ = x.shape
        hd, heads, kv = self.config.head_dim, self.config.n_head, self.config.kv_heads
        qk, v = self.c_attn(x).split([(heads + kv) * hd, kv * hd], dim=-1)
        qk = qk.view(B, T, heads + kv, hd).transpose(1, 2)  # (B, H + H_kv, T, D): query heads, then key heads
        v = v.view(B, T, kv, hd).transpose(1, 2)
        if self.q_norm is not None:
            qk = torch.cat((self.q_norm(qk[:, :heads]), self.k_norm(qk[:, heads:])), dim=1)
        if rope is not None:  # the angles of these T positions, (T, D/2) or per row (B, T, D/2)
            qk = apply_rope(qk, *rope)  # queries and keys rotate by the same angles: one call for both
        q, k = qk[:, :heads], qk[:, heads:]
        if cache is not None:
            k, v = cache.update(self.layer, start, k, v)
        total = k.shape[2]
        if pad is not None:  # left-padded rows: causal and no padding keys
            mask, causal = padded_causal_mask(pad, start, T, total), False
        elif total == T:  # no earlier positions: the usual causal mask
            mask, causal = None, True
        elif T == 1:  # one new query (a decode step) sees every key so far: no mask to build
            mask, causal = None, False
        else:  # new queries at positions start..start+T-1 see every key up to their own position
            mask = torch.ones(T, total, dtype=torch.bool, device=x.device).tril(diagonal=total - T)
            causal = False
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           dropout_p=self.dropout if self.training else 0.0,
                                           enable_gqa=kv != heads)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, heads * hd))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.kind, hidden, self.approximate = config.mlp, config.mlp_hidden, config.gelu_approximate
        if self.kind == "gelu":
            self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        else:  # SwiGLU (Shazeer 2020): silu(x W_gate) * (x W_up), then W_down
            self.c_gate = nn.Linear(config.n_embd, hidden, bias=config.bias)
            self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)

    def forward(self, x):
        if self.kind == "gelu":
            # GPT-2 used the tanh approximation ("gelu_new"); the exact form is about 3x cheaper on a CPU.
            return self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate))
        return self.c_proj(F.silu(self.c_gate(x)) * self.c_fc(x))


class Block(nn.Module):
    """Pre-norm residual block: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: GPTConfig, layer: int):
        super().__init__()
        self.ln_1, self.attn = make_norm(config), Attention(config, layer)
        self.ln_2, self.mlp = make_norm(config), MLP(config)

    def forward(self, x, rope=None, cache=None, start=0, pad=None):
        x = x + self.attn(self.ln_1(x), rope, cache, start, pad)
        return x + self.mlp(self.ln_2(x))


# ----------------------------------------------------------------------------------------------
# The model


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd) if config.position == "learned" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.ln_f = make_norm(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.wte.weight  # one matrix reads tokens in and writes them out
        if config.position == "rope":
            cos, sin = rope_tables(config.head_dim, config.block_size, config.rope_theta, config.rope_scaling)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        # GPT-2: scale the init of projections into the residual stream by 1/sqrt(2 * layers),
        # so the stream's variance does not grow with depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None, start: int = 0, pad: torch.Tensor | None = None,
                last_only: bool = False):
        """Logits (B, T, vocab) for token ids (B, T) at positions start..start+T-1, and the mean
        cross-entropy against ``targets`` when given (target -1 = ignored position).

        ``pad`` (B,) says how many slots at the start of each row are left padding (batches of
        prompts of different lengths): those slots are hidden from attention and each row's
        positions count from its first real token, so a row's logits are those it has alone.
        ``last_only`` returns the logits of the last position only, (B, 1, vocab): all that
        sampling needs, and it spares the unembedding of every earlier position.
        """
        x, rope = self.embed(idx, start, pad)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, rope, cache, start, pad)
        if last_only:
            if targets is not None:
                raise ValueError("last_only=True gives no loss: the targets need every position's logits")
            x = x[:, -1:]
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def embed(self, idx: torch.Tensor, start: int = 0, pad: torch.Tensor | None = None):
        """The first block's input for token ids (B, T) at slots start..start+T-1 (before dropout),
        and the RoPE angles ``(cos, sin)`` of their positions (None without RoPE); ``pad`` as in
        ``forward``. Raises ValueError past ``block_size`` or for a ``pad`` of the wrong shape.
        Shared by ``forward`` and ``minilm.inference.decode_step.DecodeStep``.
        """
        check_token_ids(idx)
        B, T = idx.shape
        if start < 0:  # a negative start would read the position tables from their end
            raise ValueError(f"start={start} must be >= 0")
        if start + T > self.config.block_size:
            raise ValueError(f"positions up to {start + T} exceed block_size={self.config.block_size}")
        if pad is not None and tuple(pad.shape) != (B,):
            raise ValueError(f"pad must hold one count per row, shape ({B},); got {tuple(pad.shape)}")
        # Positions of the new tokens: start..start+T-1, or per row in a left-padded batch (each row
        # counts from its first real token). Looked up once here, not again in every layer.
        positions = None if pad is None else row_positions(pad, start, T)
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(start, start + T, device=idx.device) if positions is None else positions)
        rope = None
        if self.config.position == "rope":
            if positions is None:
                rope = (self.rope_cos[start : start + T], self.rope_sin[start : start + T])
            else:
                rope = (self.rope_cos[positions], self.rope_sin[positions])
        return x, rope

    # -- sizes ---------------------------------------------------------------------------------

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters (tied matrices counted once); ``non_embedding`` leaves out token and position
        embeddings, the count Kaplan et al. use for scaling laws."""
        total = sum(p.numel() for p in self.parameters())
        if non_embedding:
            total -= self.wte.weight.numel() + (self.wpe.weight.numel() if self.wpe is not None else 0)
        return total

    def flops_per_token(self, seq_len: int | None = None, unembedding: bool = False) -> float:
        """Training FLOPs per token: 6 N (forward + backward through the weights) plus attention's
        12 * layers * heads * head_dim * T (Kaplan et al. 2020; PaLM appendix B).

        N is the non-embedding parameter count, Kaplan's convention for scaling laws. With
        ``unembedding=True`` the output projection (vocab x width) counts too even when it shares
        its matrix with the token embedding: it is real work on every token, and for small models a
        large share of it, so MFU is computed with it.
        """
        cfg = self.config
        T = seq_len or cfg.block_size
        n = self.num_params(non_embedding=True)
        if unembedding and self.lm_head.weight is self.wte.weight:
            n += self.lm_head.weight.numel()
        return 6 * n + 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * T

    def param_counts_by_component(self) -> dict[str, int]:
        """Parameters per kind of component (embeddings, attention, MLP, norms, head)."""
        counts = {"embeddings": 0, "attention": 0, "mlp": 0, "norms": 0, "lm_head (untied)": 0}
        seen = set()
        for name, p in self.named_parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            if name.startswith(("wte", "wpe")):
                key = "embeddings"
            elif ".attn." in name and "norm" not in name:
                key = "attention"
            elif ".mlp." in name:
                key = "mlp"
            elif name.startswith("lm_head"):
                key = "lm_head (untied)"
            else:
                key = "norms"
            counts[key] += p.numel()
        return counts

    # -- interoperability ----------------------------------------------------------------------

    @classmethod
    def from_hf_gpt2(cls, hf_model) -> "GPT":
        """Our GPT with the weights of a Hugging Face ``GPT2LMHeadModel`` (same logits).

        Settings of the HF config that change the logits are either carried over (GELU exact or
        tanh-approximated, tied or untied unembedding) or refused with the setting named; none is
        ignored.
        """
        c = hf_model.config
        gelu = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}
        refused = []
        if c.activation_function not in gelu:
            refused.append(f"activation_function={c.activation_function!r} (we have {', '.join(gelu)})")
        if getattr(c, "scale_attn_by_inverse_layer_idx", False):
            refused.append("scale_attn_by_inverse_layer_idx=True (scores divided by the layer number too)")
        if not getattr(c, "scale_attn_weights", True):
            refused.append("scale_attn_weights=False (scores not divided by sqrt(head size))")
        if getattr(c, "add_cross_attention", False):
            refused.append("add_cross_attention=True (an encoder-decoder block)")
        if refused:
            raise ValueError("this GPT-2 config changes the logits in ways our GPT does not implement: "
                             + "; ".join(refused))
        tied = getattr(c, "tie_word_embeddings", True)
        config = GPTConfig.gpt2(vocab_size=c.vocab_size, block_size=c.n_positions, n_layer=c.n_layer,
                                n_head=c.n_head, n_embd=c.n_embd, norm_eps=c.layer_norm_epsilon, dropout=0.0,
                                gelu_approximate=gelu[c.activation_function], tie_embeddings=tied)
        if (c.n_inner or 4 * c.n_embd) != config.mlp_hidden:
            raise ValueError(f"n_inner={c.n_inner} is not 4 x n_embd: not a GPT-2 shape we can load")
        model = cls(config)
        hf = hf_model.state_dict()
        ours = model.state_dict()
        # HF GPT-2 stores Linear layers as Conv1D, with weights transposed.
        transposed = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
        mapping = {"wte.weight": "transformer.wte.weight", "wpe.weight": "transformer.wpe.weight",
                   "ln_f.weight": "transformer.ln_f.weight", "ln_f.bias": "transformer.ln_f.bias"}
        if not tied:
            mapping["lm_head.weight"] = "lm_head.weight"
        for i in range(config.n_layer):
            for name in ("ln_1.weight", "ln_1.bias", "ln_2.weight", "ln_2.bias", "attn.c_attn.weight",
                         "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias", "mlp.c_fc.weight",
                         "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"):
                mapping[f"blocks.{i}.{name}"] = f"transformer.h.{i}.{name}"
        with torch.no_grad():
            for ours_name, hf_name in mapping.items():
                source = hf[hf_name]
                if ours_name.endswith(transposed):
                    source = source.t()
                if ours[ours_name].shape != source.shape:
                    raise ValueError(f"{hf_name}: shape {tuple(source.shape)} does not fit {ours_name} {tuple(ours[ours_name].shape)}")
                ours[ours_name].copy_(source)
        return model

    @classmethod
    def from_pretrained(cls, name: str = "gpt2") -> "GPT":
        """OpenAI's GPT-2 weights (gpt2, gpt2-medium, gpt2-large, gpt2-xl) through ``transformers``.

        Needs the ``hf`` extra and a network connection the first time (or the Hugging Face cache).
        """
        try:
            from transformers import GPT2LMHeadModel
        except ImportError:
            raise RuntimeError("from_pretrained needs transformers: pip install -e '.[hf]'") from None
        try:
            hf_model = GPT2LMHeadModel.from_pretrained(name)
        except OSError as err:
            raise RuntimeError(f"could not load {name!r} from the Hugging Face hub (offline, or no such model): "
                               f"{str(err).splitlines()[0]}") from None
        return cls.from_hf_gpt2(hf_model)

    def config_dict(self) -> dict:
        return asdict(self.config)


# ----------------------------------------------------------------------------------------------
# A longer context

# How a RoPE model is stretched past the context it was trained on (chapter 07):
CONTEXT_METHODS = {
    # the same angles, continued: positions past the trained ones rotate by angles never seen
    "extrapolate": "plain extrapolation (RoPE as trained, longer tables)",
    # every position maps into the trained range (Chen et al. 2023, Position Interpolation)
    "interpolate": "Position Interpolation (positions divided by the extension factor)",
    # the base frequency grows so the slowest pair turns no further than it did (NTK-aware scaling,
    # bloc97 2023; Xiong et al. 2023 raise the base of Llama 2 for the same reason)
    "base": "a larger base frequency (theta x factor^(d/(d-2)), NTK-aware)",
}


def extended_config(config: GPTConfig, block_size: int, method: str = "interpolate") -> GPTConfig:
    """``config`` with ``block_size`` positions, its rotary angles stretched by ``method`` (one of
    :data:`CONTEXT_METHODS`). Raises ConfigError for learned positions or a shorter context.

    >>> c = GPTConfig.modern(n_embd=64, n_head=4, block_size=64)
    >>> extended_config(c, 256, "interpolate").rope_scaling, round(extended_config(c, 256, "base").rope_theta)
    (4.0, 48761)
    """
    check_choice("method", method, tuple(CONTEXT_METHODS))
    if config.position != "rope":
        raise ConfigError(f"a context of {block_size} needs rotary positions; this model has position="
                          f"{config.position!r} with {config.block_size} learned positions")
    if block_size < config.block_size:
        raise ConfigError(f"a context of {block_size} is shorter than the model's {config.block_size}")
    factor = block_size / config.block_size
    if method == "interpolate":
        return replace(config, block_size=block_size, rope_scaling=config.rope_scaling * factor)
    if method == "base":
        d = config.head_dim
        return replace(config, block_size=block_size, rope_theta=config.rope_theta * factor ** (d / (d - 2)))
    return replace(config, block_size=block_size)


def extend_context(model: GPT, block_size: int, method: str = "interpolate") -> GPT:
    """A copy of ``model`` (same weights, same device) that takes ``block_size`` positions, with
    its rotary angles stretched by ``method`` (see :func:`extended_config`). The weights never saw
    the new positions (or the new angles): training at the longer context is what teaches them."""
    longer = GPT(extended_config(model.config, block_size, method))
    longer.load_state_dict(model.state_dict())
    return longer.to(next(model.parameters()).device).train(model.training)
