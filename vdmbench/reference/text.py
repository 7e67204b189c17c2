"""A small word-level text encoder over the captions' vocabulary.

The reference models only ever see captions of the shapes domain, so a learned embedding per
word plus one transformer layer is enough; a pretrained CLIP/T5 would be 1000x larger for nothing.
Words outside the vocabulary map to an explicit <unk> token and are counted, so a caller can
report that a prompt was partly not understood instead of silently ignoring it.

Token 0 is <pad> (masked out of attention and pooling), 1 is <unk>, 2 is <null>: the empty
caption used for classifier-free guidance is the single token <null>, so the unconditional
branch has one well-defined token to attend to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn as nn

PAD, UNK, NULL = "<pad>", "<unk>", "<null>"
_WORD_RE = re.compile(r"[a-z]+(?:-[a-z]+)?")


@dataclass(frozen=True)
class Tokenized:
    ids: torch.Tensor  # int64 [B, L]
    mask: torch.Tensor  # bool [B, L], True for real tokens
    unknown: tuple[tuple[str, ...], ...]  # per caption, the words mapped to <unk>


class Vocabulary:
    """Word -> id; lower-cased words of letters (hyphenated words like "up-left" stay one word)."""

    def __init__(self, words: list[str], max_len: int = 16) -> None:
        self.words = [PAD, UNK, NULL] + [w for w in words if w not in (PAD, UNK, NULL)]
        self.index = {w: i for i, w in enumerate(self.words)}
        self.max_len = max_len

    def __len__(self) -> int:
        return len(self.words)

    def split(self, text: str) -> list[str]:
        return _WORD_RE.findall(text.lower())

    def encode(self, texts: list[str]) -> Tokenized:
        ids = torch.zeros(len(texts), self.max_len, dtype=torch.int64)
        unknown = []
        for b, text in enumerate(texts):
            words = self.split(text)[: self.max_len]
            unk = tuple(w for w in words if w not in self.index)
            unknown.append(unk)
            row = [self.index.get(w, self.index[UNK]) for w in words] or [self.index[NULL]]
            ids[b, : len(row)] = torch.tensor(row)
        return Tokenized(ids, ids != self.index[PAD], tuple(unknown))


class TextEncoder(nn.Module):
    """Token embeddings + learned positions + one pre-norm transformer layer.

    Returns per-token features [B, L, D] (for cross-attention) and a masked mean [B, D]
    (for FiLM-style conditioning together with the timestep).
    """

    def __init__(self, vocab_size: int, dim: int = 64, max_len: int = 16, heads: int = 4) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.zeros(max_len, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.norm_out = nn.LayerNorm(dim)
        # Unit-variance word vectors, so every word is already distinct after the layer norms at
        # init. With the usual std 0.02 the denoiser first learns the words that pay off at once
        # (colors) and the features of the others (directions) stay near-identical for thousands
        # of steps: the models then ignored "left" vs "right" entirely.
        nn.init.normal_(self.tok.weight, std=1.0)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.tok(ids) + self.pos[: ids.shape[1]]
        h = self.norm1(x)
        x = x + self.attn(h, h, h, key_padding_mask=~mask, need_weights=False)[0]
        x = x + self.mlp(self.norm2(x))
        x = self.norm_out(x)
        w = mask.to(x.dtype).unsqueeze(-1)
        pooled = (x * w).sum(1) / w.sum(1).clamp(min=1.0)
        return x, pooled


