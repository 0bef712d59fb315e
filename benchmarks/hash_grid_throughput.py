"""Hash-grid forward+backward throughput on the CPU: naive PyTorch, our PyTorch path, our C kernels.

Config from the issue: 3-D, 16 levels x 2 features, 2^19 table, base 16, finest 2048, batch 2^16,
2 threads. Run: .venv/bin/python benchmarks/hash_grid_throughput.py
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from fields.encodings import hash_grid_kernels
from fields.encodings.hash_grid import PRIMES, HashGrid


def naive_encode(enc: HashGrid, x: torch.Tensor) -> torch.Tensor:
    """The textbook version: per level and per corner, compute the index, gather, weight, add."""
    outs = []
    for L in enc.levels:
        pos = x * L["scale"] + 0.5
        base = torch.floor(pos).long()
        frac = pos - base
        acc = torch.zeros(x.shape[0], enc.n_features)
        for c in range(8):
            bits = [(c >> k) & 1 for k in range(3)]
            corner = base + torch.tensor(bits)
            w = torch.ones(x.shape[0])
            for k in range(3):
                w = w * (frac[:, k] if bits[k] else 1 - frac[:, k])
            if L["hashed"]:
                idx = corner[:, 0] * PRIMES[0]
                for k in (1, 2):
                    idx = idx ^ ((corner[:, k] * PRIMES[k]) & 0xFFFFFFFF)
            else:
                r = L["resolution"]
                idx = corner[:, 0] + corner[:, 1] * r + corner[:, 2] * r * r
            acc = acc + w[:, None] * enc.params[idx % L["size"] + L["offset"]]
        outs.append(acc)
    return torch.cat(outs, -1)


def points_per_second(fn, enc: HashGrid, x: torch.Tensor, repeats: int) -> float:
    def step() -> None:
        enc.params.grad = None
        fn(x).sum().backward()

    step()
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    return repeats * x.shape[0] / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-log2", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    enc = HashGrid(dim=3, n_levels=16, n_features=2, log2_hashmap_size=19, base_resolution=16, finest_resolution=2048)
    x = torch.rand(2**args.batch_log2, 3)
    with torch.no_grad():
        assert torch.allclose(naive_encode(enc, x), enc.reference(x, enc.params), atol=1e-6)
    rows = [("naive PyTorch (per corner)", points_per_second(lambda v: naive_encode(enc, v), enc, x, args.repeats)),
            ("fields PyTorch path (per level)", points_per_second(lambda v: enc.reference(v, enc.params), enc, x, args.repeats))]
    if hash_grid_kernels.load() is not None:
        rows.append(("fields C/OpenMP kernels", points_per_second(enc, enc, x, args.repeats)))
    base = rows[0][1]
    print(f"hash grid fwd+bwd, 3-D, 16x2, 2^19, batch 2^{args.batch_log2}, {args.threads} threads, "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}")
    print(f"{'implementation':34s} {'points/s':>12s} {'vs naive':>9s}")
    for name, pps in rows:
        print(f"{name:34s} {pps:12,.0f} {pps / base:8.1f}x")


if __name__ == "__main__":
    main()
