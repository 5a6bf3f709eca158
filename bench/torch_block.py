#!/usr/bin/python3
"""torch_block.py — the LRQ iteration of bench/lrq_bench.c in PyTorch (CPU), for a side-by-side ratio.

    /usr/bin/python3 bench/torch_block.py --dim 4096 --ffn 11008 --heads 32 --kv-heads 32 --rank 1024 \
        --batch 2 --seq 512 --iters 3 --threads 2

One iteration = Ŵ from the LRQ quantizer parameters for all 7 linears (docs/algorithms.md, LRQ:
Wint = clamp(round_ste(W / exp(a + L·U + r + c)), -z, 2^b-1-z), Ŵ = exp(a)·Wint; full S2 + r when
rank >= min(m, n)), Llama block forward (RMSNorm, q/k/v, rotate-half RoPE, causal GQA attention with
plain matmuls + softmax, o, residual, RMSNorm, SwiGLU, residual), MSE loss against a random target,
autograd backward (the block input does not require grad), torch.optim.Adam step (cosine lr, as the C
bench) over every quantizer parameter. Weights are SYNTHETIC (Gaussian, std 0.02), W4 minmax init.

FLOPs are counted with the formula of bench/lrq_bench.c (only what the algorithm needs; autograd
does the same products), and sgemm_gflops is torch.matmul on the same two shapes the C bench times
(BT×D·(D×D)ᵀ and BT×D·(F×D)ᵀ, best of 3 after a warm-up, the faster of the two), in the same run.
Prints one JSON line. Iteration 0 is a warm-up and is not timed.
"""
import argparse
import json
import math
import os
import resource
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", nargs="?", default="block", choices=["block"])
    p.add_argument("--dim", type=int, default=4096)
    p.add_argument("--ffn", type=int, default=11008)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=32)
    p.add_argument("--rank", type=int, default=1024)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--flexround", action="store_true", help="full S2 + r for every linear")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: forward under torch.autocast('cpu', dtype=torch.bfloat16) (matmuls in bf16, "
                        "parameters and Adam in fp32), and the matmul rate measured in bf16 too")
    p.add_argument("--profile", action="store_true", help="op table of the timed iterations on stderr")
    a = p.parse_args(argv)
    if (min(a.dim, a.ffn, a.heads, a.kv_heads, a.batch, a.iters) < 1 or a.seq < 2
            or a.heads % a.kv_heads or a.dim % a.heads):
        p.error("bad shape")
    return a


args = parse_args(sys.argv[1:])
# Debian's torch does its GEMMs in OpenBLAS (libblas.so.3 → openblas-pthread), whose pool size is read
# from the environment at load time; torch.set_num_threads only sets the OpenMP pool.
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
os.environ["OMP_NUM_THREADS"] = str(args.threads)
try:
    import torch
except ImportError:
    print("skipped: python3-torch not installed (apt-get install python3-torch)")
    sys.exit(0)

torch.set_num_threads(args.threads)
torch.manual_seed(1234)


def round_ste(x):
    return x + (x.round() - x).detach()


class LRQLinearWeight(torch.nn.Module):
    """Learnable per-row log step a, low-rank log scaling L·U + r + c (or full S2 + r); W and z frozen."""

    def __init__(self, W, bits, rank, full):
        super().__init__()
        m, n = W.shape
        self.register_buffer("W", W)
        qmax = 2 ** bits - 1
        # minmax init per row (docs/algorithms.md, RTN: min-max init)
        xmax = W.max(dim=1).values.clamp(min=0)
        xmin = W.min(dim=1).values.clamp(max=0)
        s1 = ((xmax - xmin) / qmax).clamp(min=1e-8)
        z = (-(xmin / s1).round()).clamp(0, qmax)
        self.register_buffer("lo", (-z)[:, None].contiguous())
        self.register_buffer("hi", (qmax - z)[:, None].contiguous())
        self.a = torch.nn.Parameter(s1.log())
        self.r = torch.nn.Parameter(torch.zeros(m))
        self.full = full
        if full:
            self.S2 = torch.nn.Parameter(torch.zeros(m, n))
        else:
            b = 1.0 / math.sqrt(n)
            self.L = torch.nn.Parameter(torch.zeros(m, rank))
            self.U = torch.nn.Parameter(torch.empty(rank, n).uniform_(-b, b))
            self.c = torch.nn.Parameter(torch.zeros(n))

    def forward(self):
        a = self.a[:, None]
        if self.full:
            S = self.S2 + self.r[:, None]
        else:
            S = self.L @ self.U + self.r[:, None] + self.c[None, :]
        wint = torch.clamp(round_ste(self.W / torch.exp(a + S)), self.lo, self.hi)
        return torch.exp(a) * wint


def rms_norm(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(torch.nn.Module):
    NAMES = ("q", "k", "v", "o", "gate", "up", "down")

    def __init__(self, a):
        super().__init__()
        D, F, H, KVH = a.dim, a.ffn, a.heads, a.kv_heads
        Dh = D // H
        self.H, self.KVH, self.Dh = H, KVH, Dh
        shapes = {"q": (H * Dh, D), "k": (KVH * Dh, D), "v": (KVH * Dh, D), "o": (D, H * Dh),
                  "gate": (F, D), "up": (F, D), "down": (D, F)}
        self.lin = torch.nn.ModuleDict()
        self.lowrank_mn = 0.0
        for name in self.NAMES:
            m, n = shapes[name]
            full = a.flexround or a.rank >= min(m, n)
            if not full:
                self.lowrank_mn += float(m) * n * a.rank
            self.lin[name] = LRQLinearWeight(torch.randn(m, n) * 0.02, a.bits, a.rank, full)
        self.register_buffer("norm1", 1 + 0.1 * (torch.rand(D) - 0.5))
        self.register_buffer("norm2", 1 + 0.1 * (torch.rand(D) - 0.5))
        inv = 1.0 / (10000.0 ** (torch.arange(0, Dh, 2, dtype=torch.float32) / Dh))
        ang = torch.arange(a.seq, dtype=torch.float32)[:, None] * inv[None, :]
        ang = torch.cat((ang, ang), dim=-1)                       # (T, Dh), rotate-half layout
        self.register_buffer("cos", ang.cos())
        self.register_buffer("sin", ang.sin())
        mask = torch.full((a.seq, a.seq), float("-inf")).triu(1)  # causal, additive
        self.register_buffer("mask", mask)

    def forward(self, x):                                         # x (B, T, D)
        B, T, D = x.shape
        H, KVH, Dh = self.H, self.KVH, self.Dh
        W = {name: self.lin[name]() for name in self.NAMES}
        h = rms_norm(x, self.norm1)
        q = (h @ W["q"].t()).view(B, T, H, Dh).transpose(1, 2)    # (B, H, T, Dh)
        k = (h @ W["k"].t()).view(B, T, KVH, Dh).transpose(1, 2)  # (B, KVH, T, Dh)
        v = (h @ W["v"].t()).view(B, T, KVH, Dh).transpose(1, 2)
        q = q * self.cos + rotate_half(q) * self.sin
        k = k * self.cos + rotate_half(k) * self.sin
        if KVH != H:
            k = k.repeat_interleave(H // KVH, dim=1)
            v = v.repeat_interleave(H // KVH, dim=1)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(Dh)) + self.mask
        att = torch.softmax(att, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, H * Dh)
        x = x + o @ W["o"].t()
        h = rms_norm(x, self.norm2)
        f = torch.nn.functional.silu(h @ W["gate"].t()) * (h @ W["up"].t())
        return x + f @ W["down"].t()


def sgemm_rate(M, N, K, dtype=None):
    a = torch.randn(M, K, dtype=dtype or torch.float32)
    b = torch.randn(N, K, dtype=dtype or torch.float32)
    torch.matmul(a, b.t())                                        # warm-up
    best = 1e30
    for _ in range(3):
        t = time.perf_counter()
        torch.matmul(a, b.t())
        best = min(best, time.perf_counter() - t)
    return 2.0 * M * N * K / best / 1e9


def main(a):
    D, F, H, KVH, B, T = a.dim, a.ffn, a.heads, a.kv_heads, a.batch, a.seq
    Dh = D // H
    blk = Block(a)
    params = [p for p in blk.parameters()]
    nparams = sum(p.numel() for p in params)
    opt = torch.optim.Adam(params, lr=5e-4, betas=(0.9, 0.999), eps=1e-8)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.iters + 1, eta_min=0.0)
    x = torch.randn(B, T, D)
    target = torch.randn(B, T, D)

    # FLOPs exactly as bench/lrq_bench.c counts them
    ms = [H * Dh, KVH * Dh, KVH * Dh, D, F, F, D]
    ns = [D, D, D, H * Dh, D, D, F]
    sum_mn = float(sum(m * n for m, n in zip(ms, ns)))
    dx_mn = float(ms[3] * ns[3] + sum(ms[i] * ns[i] for i in (4, 5, 6)))
    BT = float(B * T)
    flops = (2 * BT * sum_mn + 2 * BT * sum_mn + 2 * BT * dx_mn
             + 12.0 * B * H * float(T) * T * Dh + 6 * blk.lowrank_mn)

    best, total = 1e30, 0.0
    prof = None
    for it in range(a.iters + 1):                                 # iteration 0 is a warm-up
        if it == 1 and a.profile:
            prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            prof.__enter__()
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if a.precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = blk(x)
        else:
            y = blk(x)
        loss = torch.nn.functional.mse_loss(y.float(), target)
        loss.backward()
        opt.step()
        sched.step()
        t = time.perf_counter() - t
        if it > 0:
            total += t
            best = min(best, t)
    if prof is not None:
        prof.__exit__(None, None, None)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25), file=sys.stderr)
    ms_iter = total / a.iters * 1e3
    mdt = torch.bfloat16 if a.precision == "bf16" else None  # the rate of the precision the products run in
    rate = max(sgemm_rate(B * T, D, D, mdt), sgemm_rate(B * T, F, D, mdt))
    gflop = flops / 1e9
    equiv_ms = gflop / rate * 1e3
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({
        "ms_per_iter": round(ms_iter, 2), "best_ms": round(best * 1e3, 2), "gflop_per_iter": round(gflop, 2),
        "sgemm_gflops": round(rate, 1), "sgemm_equiv_ms": round(equiv_ms, 2), "ratio": round(ms_iter / equiv_ms, 3),
        "peak_rss_mb": round(peak), "params": nparams, "loss": round(float(loss), 6),
        "shape": "D%d F%d H%d KVH%d rank%d B%d T%d %s threads%d" % (D, F, H, KVH, a.rank, B, T,
                                                                   "flexround" if a.flexround else "lrq", a.threads),
        "weights": "synthetic", "impl": "pytorch %s %s" % (torch.__version__, a.precision), "precision": a.precision,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}))


if __name__ == "__main__":
    main(args)
