"""Multi-head attention (Vaswani et al., 2017, Sec. 3.2.2) and self-attention over feature maps.

    MultiHead(Q, K, V) = Concat(head_1, …, head_h) W_O,   head_i = Attention(Q W_Q_i, K W_K_i, V W_V_i)

Both compute through :func:`attnlab.scaled_dot_product_attention`: torch's fused kernels when the
weights are not asked for, the reference math when they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..functional import scaled_dot_product_attention
from ._shared import factory_kwargs

__all__ = ["MultiHeadAttention", "SelfAttention2d"]


def _split_heads(x: Tensor, heads: int) -> Tensor:
    """(B, N, heads·D) -> (B, heads, N, D)."""
    B, N, _ = x.shape
    return x.reshape(B, N, heads, -1).transpose(1, 2)


class MultiHeadAttention(nn.Module):
    """A drop-in for ``torch.nn.MultiheadAttention``, with grouped-query heads.

    Arguments and mask conventions are torch's module's, which differ from the functional:
    here a **bool mask is True where attention is NOT allowed** (``attn_mask`` and
    ``key_padding_mask``); a float mask is added to the scores. ``attn_mask`` is (L, S) or
    (B·num_heads, L, S); ``key_padding_mask`` is (B, S).

    Differences from torch, all additive:
      * ``batch_first=True`` by default: inputs (B, L, E); with ``False``, (L, B, E). Unbatched
        (L, E) inputs work as in torch.
      * ``is_causal=True`` applies the causal mask itself (torch treats it as a hint about
        ``attn_mask``) and combines with the other masks.
      * ``need_weights=False`` by default, so the fused kernels run; ask for weights to get them.
      * ``num_kv_heads`` < ``num_heads`` gives grouped-query attention (Ainslie et al., 2023):
        key and value projections of ``num_kv_heads · head_dim`` features shared by query groups.
      * A query with no key to attend gets zeros, not NaN.
      * ``add_bias_kv`` and ``add_zero_attn`` are not supported.

    Parameters: ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` (``nn.Linear``);
    :meth:`from_torch` and :meth:`to_torch` convert to and from torch's packed ``in_proj_weight``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        dropout: float = 0.0,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = True,
        num_kv_heads: int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads != 0:
            raise ValueError(
                f"embed_dim, num_heads: expected positive embed_dim divisible by num_heads, "
                f"got embed_dim={embed_dim}, num_heads={num_heads}"
            )
        if num_kv_heads <= 0 or num_heads % num_kv_heads != 0:
            raise ValueError(f"num_kv_heads: expected a divisor of num_heads={num_heads}, got {num_kv_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: expected a value in [0, 1), got {dropout}")
        f = factory_kwargs(device, dtype)
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        kv_dim = num_kv_heads * self.head_dim
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **f)
        self.k_proj = nn.Linear(self.kdim, kv_dim, bias=bias, **f)
        self.v_proj = nn.Linear(self.vdim, kv_dim, bias=bias, **f)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **f)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's initialization: Xavier-uniform projections, zero biases."""
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.xavier_uniform_(proj.weight)
        for proj in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            if proj.bias is not None:
                nn.init.zeros_(proj.bias)

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        *,
        attn_mask: Tensor | None = None,
        key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
        need_weights: bool = False,
        average_attn_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` to ``key``/``value`` (both default to ``query``: self-attention).

        Returns ``(out, weights)``: out like ``query``; weights (B, L, S) averaged over heads,
        (B, num_heads, L, S) per head, or None without ``need_weights``.
        """
        key = query if key is None else key
        value = key if value is None else value
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        self._check_inputs(query, key, value)
        B, L, _ = query.shape
        S = key.shape[1]

        q = _split_heads(self.q_proj(query), self.num_heads)  # (B, Hq, L, D)
        k = _split_heads(self.k_proj(key), self.num_kv_heads)  # (B, H, S, D)
        v = _split_heads(self.v_proj(value), self.num_kv_heads)  # (B, H, S, D)
        result = scaled_dot_product_attention(
            q,
            k,
            v,
            self._functional_mask(attn_mask, B, L, S),
            key_padding_mask=key_padding_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal,
            enable_gqa=self.num_kv_heads != self.num_heads,
            return_weights=need_weights,
        )
        out, weights = result if need_weights else (result, None)  # (B, Hq, L, D), (B, Hq, L, S)
        out = self.out_proj(out.transpose(1, 2).reshape(B, L, self.embed_dim))  # (B, L, E)

        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if unbatched:
            out = out.squeeze(0)
            weights = None if weights is None else weights.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _check_inputs(self, query: Tensor, key: Tensor, value: Tensor) -> None:
        layout = "(B, L, E)" if self.batch_first else "(L, B, E)"
        for name, t, dim in (("query", query, self.embed_dim), ("key", key, self.kdim), ("value", value, self.vdim)):
            if t.dim() != 3 or t.shape[-1] != dim:
                raise ValueError(
                    f"{name}: expected {layout} with E={dim} (or unbatched 2-D), got shape {tuple(t.shape)}"
                )
        if not query.shape[0] == key.shape[0] == value.shape[0]:
            raise ValueError(
                f"query, key, value: expected one batch size, got {query.shape[0]}, {key.shape[0]}, {value.shape[0]}"
            )
        if key.shape[1] != value.shape[1]:
            raise ValueError(f"key, value: expected one sequence length S, got {key.shape[1]} and {value.shape[1]}")

    def _functional_mask(self, attn_mask: Tensor | None, B: int, L: int, S: int) -> Tensor | None:
        """torch-module attn_mask (L, S) or (B·heads, L, S), True = blocked -> the functional's."""
        if attn_mask is None:
            return None
        if attn_mask.dim() == 3:
            if attn_mask.shape != (B * self.num_heads, L, S):
                raise ValueError(
                    f"attn_mask: expected (L, S) = {(L, S)} or (B·num_heads, L, S) = "
                    f"{(B * self.num_heads, L, S)}, got {tuple(attn_mask.shape)}"
                )
            attn_mask = attn_mask.view(B, self.num_heads, L, S)
        elif attn_mask.shape != (L, S):
            raise ValueError(
                f"attn_mask: expected (L, S) = {(L, S)} or (B·num_heads, L, S) = "
                f"{(B * self.num_heads, L, S)}, got {tuple(attn_mask.shape)}"
            )
        return ~attn_mask if attn_mask.dtype == torch.bool else attn_mask

    @classmethod
    def from_torch(cls, m: nn.MultiheadAttention) -> MultiHeadAttention:
        """The same attention as ``m``: same weights, same ``batch_first``, same outputs."""
        if m.bias_k is not None or m.add_zero_attn:
            raise ValueError("m: add_bias_kv and add_zero_attn are not supported by attnlab.MultiHeadAttention")
        w = m.out_proj.weight
        new = cls(
            m.embed_dim,
            m.num_heads,
            dropout=m.dropout,
            bias=m.in_proj_bias is not None,
            kdim=m.kdim,
            vdim=m.vdim,
            batch_first=m.batch_first,
            device=w.device,
            dtype=w.dtype,
        )
        if m._qkv_same_embed_dim:
            q_w, k_w, v_w = m.in_proj_weight.chunk(3)
        else:
            q_w, k_w, v_w = m.q_proj_weight, m.k_proj_weight, m.v_proj_weight
        biases = m.in_proj_bias.chunk(3) if m.in_proj_bias is not None else (None, None, None)
        with torch.no_grad():
            for proj, weight, b in zip((new.q_proj, new.k_proj, new.v_proj), (q_w, k_w, v_w), biases, strict=True):
                proj.weight.copy_(weight)
                if b is not None:
                    proj.bias.copy_(b)
            new.out_proj.load_state_dict(m.out_proj.state_dict())
        return new.train(m.training)

    def to_torch(self) -> nn.MultiheadAttention:
        """``torch.nn.MultiheadAttention`` with the same weights; not for grouped-query heads."""
        if self.num_kv_heads != self.num_heads:
            raise ValueError(
                f"num_kv_heads={self.num_kv_heads}: torch.nn.MultiheadAttention has no "
                f"grouped-query heads (needs num_kv_heads == num_heads={self.num_heads})"
            )
        w = self.out_proj.weight
        bias = self.out_proj.bias is not None
        m = nn.MultiheadAttention(
            self.embed_dim,
            self.num_heads,
            dropout=self.dropout,
            bias=bias,
            kdim=self.kdim,
            vdim=self.vdim,
            batch_first=self.batch_first,
            device=w.device,
            dtype=w.dtype,
        )
        projs = (self.q_proj, self.k_proj, self.v_proj)
        with torch.no_grad():
            if m._qkv_same_embed_dim:
                m.in_proj_weight.copy_(torch.cat([p.weight for p in projs]))
            else:
                for p, weight in zip(projs, (m.q_proj_weight, m.k_proj_weight, m.v_proj_weight), strict=True):
                    weight.copy_(p.weight)
            if bias:
                m.in_proj_bias.copy_(torch.cat([p.bias for p in projs]))
            m.out_proj.load_state_dict(self.out_proj.state_dict())
        return m.train(self.training)

    def extra_repr(self) -> str:
        kv = f", num_kv_heads={self.num_kv_heads}" if self.num_kv_heads != self.num_heads else ""
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}{kv}, batch_first={self.batch_first}"


class SelfAttention2d(nn.Module):
    """Multi-head self-attention over the H·W positions of a feature map.

        x (B, C, H, W) -> tokens (B, N = H·W, C)
        q, k, v = 1×1 projections of x                       (B, heads, N, d_qk | d_v)
        y = softmax(q kᵀ · scale) v, heads concatenated      (B, N, v_channels)
        out = 1×1 projection of y back to C                  (B, C, H, W)

    No residual: blocks that add one (non-local, BoTNet) own it. The weights pass through the
    submodule ``gate`` (an identity), as (B, heads, N, H, W), when they are asked for or when ``gate``
    carries a forward hook, so maps can be captured with hooks while the fused kernels run otherwise.

    Args:
        channels: C, input and output channels.
        num_heads: heads; ``qk_channels`` and ``v_channels`` must divide by it.
        qk_channels: query/key channels (default C).
        v_channels: value channels (default ``qk_channels``).
        bias: biases in the projections.
        scale: score scale; default 1/√(qk_channels / num_heads). The non-local block uses 1.0.
        out_proj: with False, no output projection (needs ``v_channels == channels``).
    """

    def __init__(
        self,
        channels: int,
        num_heads: int = 1,
        *,
        qk_channels: int | None = None,
        v_channels: int | None = None,
        bias: bool = True,
        scale: float | None = None,
        out_proj: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        qk_channels = channels if qk_channels is None else qk_channels
        v_channels = qk_channels if v_channels is None else v_channels
        for name, value in (("qk_channels", qk_channels), ("v_channels", v_channels)):
            if value <= 0 or value % num_heads != 0:
                raise ValueError(f"{name}: expected a positive multiple of num_heads={num_heads}, got {value}")
        if not out_proj and v_channels != channels:
            raise ValueError(f"out_proj=False: expected v_channels == channels={channels}, got {v_channels}")
        f = factory_kwargs(device, dtype)
        self.num_heads = num_heads
        self.scale = scale
        self.splits = (qk_channels, qk_channels, v_channels)
        self.qkv = nn.Conv2d(channels, sum(self.splits), 1, bias=bias, **f)
        self.proj = nn.Conv2d(v_channels, channels, 1, bias=bias, **f) if out_proj else nn.Identity()
        self.gate = nn.Identity()

    def forward(
        self, x: Tensor, *, attn_bias: Tensor | None = None, need_weights: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """(B, C, H, W) -> (B, C, H, W); with ``need_weights``, also weights (B, heads, N, N).

        ``attn_bias`` (broadcastable to (B, heads, N, N)) is added to the scores (position terms).
        """
        B, _, H, W = x.shape
        qkv = self.qkv(x).flatten(2).transpose(1, 2)  # (B, N, 2·d_qk + d_v)
        q, k, v = (_split_heads(t, self.num_heads) for t in qkv.split(self.splits, dim=-1))
        return self.attend(q, k, v, (B, H, W), attn_bias=attn_bias, need_weights=need_weights)

    def project(self, x: Tensor, keys_from: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """The 1×1 projections as maps: queries of ``x`` (B, d_qk, H, W), keys and values of ``keys_from``
        (default ``x``; e.g. a pooled or other map) (B, d_qk, H', W'), (B, d_v, H', W')."""
        w, b = self.qkv.weight, self.qkv.bias
        c = self.splits[0]
        q = F.conv2d(x, w[:c], None if b is None else b[:c])
        source = x if keys_from is None else keys_from
        k, v = F.conv2d(source, w[c:], None if b is None else b[c:]).split(self.splits[1:], dim=1)
        return q, k, v

    def attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        bhw: tuple[int, int, int],
        *,
        attn_bias: Tensor | None = None,
        need_weights: bool = False,
        key_hw: tuple[int, int] | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Attention of projected heads q (B, heads, N, d_qk), k, v (B, heads, S, d), then the output projection.

        ``bhw`` is the query map's (B, H, W); ``key_hw`` the key map's (default (H, W)). The gate sees the
        weights as (B, heads, N, H_k, W_k): for each query, a map over the key positions.
        """
        B, H, W = bhw
        hooked = bool(self.gate._forward_hooks or self.gate._forward_pre_hooks)
        result = scaled_dot_product_attention(
            q, k, v, attn_bias, scale=self.scale, return_weights=need_weights or hooked
        )
        out, weights = result if need_weights or hooked else (result, None)
        if weights is not None:
            weights = self.gate(weights.unflatten(-1, key_hw or (H, W))).flatten(-2)
        out = out.transpose(-2, -1).reshape(B, -1, H, W)  # (B, heads·d_v, H, W)
        out = self.proj(out)
        return (out, weights) if need_weights else out
