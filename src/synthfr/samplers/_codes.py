"""Algebraic spherical codes with a certified maximal cosine (dual BCH / Gold-type binary codes).

For odd m, the codewords ``c_{a,b}(x) = Tr(a·x + b·x³)`` (x over GF(2^m)*, one coordinate per x) of the dual of the
double-error-correcting BCH code of length 2^m − 1 have weights 2^(m−1) and 2^(m−1) ± 2^((m−1)/2) only (Gold
pairs). Mapped to ±1/√D vectors (with one constant extra coordinate when D = 2^m), any two distinct codewords
have cosine at most 2^((m+1)/2)/2^m — 0.0625 in 512-D for up to 2^(2m) = 262,144 vectors (0.125 in 128-D for
16,384). Adding ``Tr(c·x⁵)`` (dual of the triple-error BCH code) gives 2^(3m) codewords with cosine at most
2^((m+3)/2)/2^m (0.125 in 512-D for 134 million vectors). A random subset of codewords, randomly rotated, is a
deterministic, seed-dependent starting point whose maximal cosine is guaranteed without any pair check.
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["code_bound", "gold_code", "code_available"]

# primitive polynomials over GF(2) (bit i = coefficient of x^i)
_PRIMITIVE = {3: 0b1011, 5: 0b100101, 7: 0b10001001, 9: 0b1000010001, 11: 0b100000000101,
              13: 0b10000000011011}


def _m_for_dim(dim: int) -> int | None:
    for m, _ in _PRIMITIVE.items():
        if dim in (2 ** m, 2 ** m - 1):
            return m
    return None


def code_bound(dim: int, n: int) -> float | None:
    """The certified maximal cosine of :func:`gold_code` for ``n`` points in ``dim`` dims (None if unavailable)."""
    m = _m_for_dim(dim)
    if m is None:
        return None
    order = 2 if n <= 2 ** (2 * m) else 3 if n <= 2 ** (3 * m) else None
    if order is None:
        return None
    extra = dim - (2 ** m - 1)  # 1 when a constant coordinate is appended
    w_min = 2 ** (m - 1) - 2 ** ((m - 1) // 2 + (order - 2))
    length = 2 ** m - 1
    return ((length - 2 * w_min) + extra) / dim


def code_available(dim: int, n: int) -> bool:
    return code_bound(dim, n) is not None


def _trace_table(m: int) -> np.ndarray:
    """tr[e] = Tr(α^e) for e in 0..2^m−2 (α a root of the primitive polynomial)."""
    poly = _PRIMITIVE[m]
    q = 2 ** m
    exp = np.zeros(2 * q, dtype=np.int64)
    log = np.zeros(q, dtype=np.int64)
    v = 1
    for e in range(q - 1):
        exp[e] = v
        log[v] = e
        v <<= 1
        if v & q:
            v ^= poly
    exp[q - 1:2 * q - 2] = exp[: q - 1]

    def mul(a: int, b: int) -> int:
        if a == 0 or b == 0:
            return 0
        return int(exp[(log[a] + log[b]) % (q - 1)])

    tr = np.zeros(q - 1, dtype=np.uint8)
    for e in range(q - 1):
        y = int(exp[e])
        s = 0
        z = y
        for _ in range(m):
            s ^= z
            z = mul(z, z)
        assert s in (0, 1), "trace must lie in GF(2)"
        tr[e] = s
    return tr


def gold_code(n: int, dim: int, seed: int, rotate: bool = True) -> torch.Tensor:
    """``n`` distinct codewords (random subset, seed-dependent) as unit vectors in ``dim`` dims, randomly rotated.

    Raises ValueError when no code exists for (n, dim); see :func:`code_bound`.
    """
    bound = code_bound(dim, n)
    if bound is None:
        raise ValueError(f"no algebraic code for n={n} in {dim} dimensions (needs dim = 2^m or 2^m − 1 with m odd "
                         "and n ≤ 2^(3m)); use init='random'")
    m = _m_for_dim(dim)
    length = 2 ** m - 1
    order = 2 if n <= 2 ** (2 * m) else 3
    k = order * m
    tr = _trace_table(m)
    i = np.arange(length)
    rows = []
    for power in (1, 3, 5)[:order]:  # basis a = α^j for each term Tr(a x^power)
        for j in range(m):
            rows.append(tr[(j + power * i) % length])
    gen_mat = np.stack(rows).astype(np.uint8)  # k × length over GF(2)
    rng = np.random.default_rng(seed)
    # n distinct nonzero messages u in 1..2^k-1
    total = 2 ** k - 1
    if n > total:
        raise ValueError(f"the code has only {total} nonzero codewords, fewer than n={n}")
    msgs = rng.choice(total, size=n, replace=False) + 1 if total < 50_000_000 else _distinct(rng, n, total)
    bits = ((msgs[:, None] >> np.arange(k)[None, :]) & 1).astype(np.float32)
    out = torch.empty(n, dim)
    g = torch.as_tensor(gen_mat, dtype=torch.float32)
    for a in range(0, n, 65536):
        cw = torch.remainder(torch.as_tensor(bits[a:a + 65536]) @ g, 2.0)  # n×length in {0,1}
        v = 1.0 - 2.0 * cw
        if dim > length:
            v = torch.cat([v, torch.ones(v.shape[0], dim - length)], 1)
        out[a:a + v.shape[0]] = v / math.sqrt(dim)
    if rotate:
        gen = torch.Generator().manual_seed(int(seed) & ((1 << 63) - 1))
        q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        q = (q * torch.sign(torch.diagonal(r))).float()
        for a in range(0, n, 65536):
            out[a:a + 65536] = out[a:a + 65536] @ q
    return out


def _distinct(rng: np.random.Generator, n: int, total: int) -> np.ndarray:
    out = np.unique(rng.integers(0, total, size=int(n * 1.1) + 100))
    while len(out) < n:
        out = np.unique(np.concatenate([out, rng.integers(0, total, size=n)]))
    return rng.permutation(out)[:n] + 1
