#!/usr/bin/python3
"""Side-by-side comparison of libhgrad (bench/hgrad_bench) with PyTorch.

For every case of hgrad_bench (seed-sgd, seed-adam, standard, long, large,
training) and dtype (f32, f64) this script

  1. has hgrad_bench write the case's inputs as .npy files (--export DIR:
     He-initialised weights, real Fashion-MNIST images when Debian's
     dataset-fashion-mnist is installed), so both sides compute on
     identical weights and data;
  2. alternates, round after round, one hgrad_bench process (--dir DIR,
     timing R repeats inside it) with R repeats of the same computation in
     PyTorch in this process (double backward with create_graph=True), both
     on one thread, and reports the median of each side's round medians and
     their ratio;
  3. checks that both give the same dx = dE_val/dx_train (max |a-b| / max |b|
     at most 1e-10 in f64, else exit status 1; f32 is only reported). PyTorch's double backward
     through Adam gives NaN where v = 0 (one training sample: the vjp of sqrt
     at 0 is infinite and is multiplied by dv/dg = 2g = 0; see
     docs/performance.md); the script says so and compares only the
     finite entries.

Usage (from the build directory, after `ninja`):
    /usr/bin/python3 ../bench/compare_torch.py [--bench bench/hgrad_bench]
        [--cases seed,standard,long,large,training] [--dtypes f32,f64]
        [--rounds 5] [--repeat N] [--train-steps 200] [--workdir DIR]

Exits 0 (after saying so) when PyTorch or NumPy is not installed.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# One thread everywhere, set before any BLAS or OpenMP runtime is loaded.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

try:
    import numpy as np
except ImportError:
    print("compare_torch.py: NumPy is not installed (Debian: apt-get install python3-numpy); "
          "nothing compared.")
    sys.exit(0)
try:
    import torch
    import torch.nn.functional as F
except ImportError:
    print("compare_torch.py: PyTorch is not installed (Debian: apt-get install python3-torch); "
          "nothing compared. hgrad_bench alone still runs.")
    sys.exit(0)

torch.set_num_threads(1)

CASES = {
    # name: (steps, optimizer, lr, training)
    "seed-sgd": (1, "sgd", 0.1, False),
    "seed-adam": (1, "adam", 1e-3, False),
    "standard": (10, "sgd", 0.1, False),
    "long": (100, "sgd", 0.1, False),
    "large": (10, "sgd", 0.1, False),
    "training": (0, "adam", 1e-3, True),
}
DEFAULT_REPEAT = {"seed-sgd": 100, "seed-adam": 100, "standard": 15, "long": 3, "large": 5, "training": 3}
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
PARAM_NAMES = ["W1", "b1", "W2", "b2", "W3", "b3"]


def mlp(params, x):
    W1, b1, W2, b2, W3, b3 = params
    h = torch.relu(torch.addmm(b1, x, W1))
    h = torch.relu(torch.addmm(b2, h, W2))
    return torch.addmm(b3, h, W3)


def hypergradient(P, x_train, y_train, x_val, y_val, steps, opt, lr):
    """dE_val/dx_train through `steps` unrolled differentiable steps; the
    update formulas are written exactly as libhgrad's hg_opt_step."""
    x = x_train.detach().requires_grad_(True)
    params = [p.detach().requires_grad_(True) for p in P]
    m = v = None
    for k in range(1, steps + 1):
        loss = F.cross_entropy(mlp(params, x), y_train)
        g = torch.autograd.grad(loss, params, create_graph=True)
        if opt == "sgd":
            params = [p - gi * lr for p, gi in zip(params, g)]
        else:
            gm = [gi * (1 - BETA1) for gi in g]
            gv = [(gi * gi) * (1 - BETA2) for gi in g]
            m = gm if m is None else [mi * BETA1 + a for mi, a in zip(m, gm)]
            v = gv if v is None else [vi * BETA2 + a for vi, a in zip(v, gv)]
            c1, c2 = 1.0 / (1.0 - BETA1 ** k), 1.0 / (1.0 - BETA2 ** k)
            params = [p - ((mi * c1) / (torch.sqrt(vi * c2) + EPS)) * lr
                      for p, mi, vi in zip(params, m, v)]
    E = F.cross_entropy(mlp(params, x_val), y_val)
    dx, = torch.autograd.grad(E, x)
    return dx, E.item()


def torch_hyper_times(inputs, case, repeat):
    steps, opt, lr, _ = CASES[case]
    hypergradient(*inputs, steps, opt, lr)  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        hypergradient(*inputs, steps, opt, lr)
        times.append(time.perf_counter() - t0)
    return times


def torch_training_rate(inputs, repeat, steps, batch=32):
    """Training-form Adam steps of batch 32: steps per second per repeat."""
    P, x_train, y_train = inputs[0], inputs[1], inputs[2]
    n_batches = x_train.shape[0] // batch
    xb = [x_train[b * batch:(b + 1) * batch] for b in range(n_batches)]
    yb = [y_train[b * batch:(b + 1) * batch] for b in range(n_batches)]
    rates = []
    for r in range(-1, repeat):  # r = -1: warm-up
        params = [p.detach().clone().requires_grad_(True) for p in P]
        optim = torch.optim.Adam(params, lr=1e-3, betas=(BETA1, BETA2), eps=EPS)

        def step(i):
            loss = F.cross_entropy(mlp(params, xb[i % n_batches]), yb[i % n_batches])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()

        step(0)  # first step outside the timing, as in hgrad_bench
        t0 = time.perf_counter()
        for s in range(1, steps + 1):
            step(s)
        t = time.perf_counter() - t0
        if r >= 0:
            rates.append(steps / t)
    return rates


def load_inputs(d, dtype):
    tdt = torch.float32 if dtype == "f32" else torch.float64
    P = [torch.from_numpy(np.load(os.path.join(d, n + ".npy"))).to(tdt) for n in PARAM_NAMES]
    xt = torch.from_numpy(np.load(os.path.join(d, "x_train.npy"))).to(tdt)
    yt = torch.from_numpy(np.load(os.path.join(d, "y_train.npy"))).long()
    xv = torch.from_numpy(np.load(os.path.join(d, "x_val.npy"))).to(tdt)
    yv = torch.from_numpy(np.load(os.path.join(d, "y_val.npy"))).long()
    return P, xt, yt, xv, yv


def run_bench(bench, args):
    out = subprocess.run([bench] + args, check=True, capture_output=True, text=True,
                         env=dict(os.environ, OPENBLAS_NUM_THREADS="1")).stdout
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return dict(kv.split("=", 1) for kv in line.split()[1:])
    raise RuntimeError("no RESULT line from hgrad_bench:\n" + out)


def compare_dx(ours, theirs):
    """(relative difference over the finite entries of theirs, fraction finite)."""
    finite = np.isfinite(theirs)
    frac = finite.mean()
    if not finite.any():
        return None, 0.0
    scale = np.abs(theirs[finite]).max()
    diff = np.abs(ours[finite] - theirs[finite]).max()
    return (diff / scale if scale > 0 else diff), frac


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", default=None, help="path of hgrad_bench (default: bench/hgrad_bench "
                    "under the current directory, then build*/bench/hgrad_bench)")
    ap.add_argument("--cases", default="seed,standard,long,large,training")
    ap.add_argument("--dtypes", default="f32,f64")
    ap.add_argument("--rounds", type=int, default=5, help="alternations per case (default 5)")
    ap.add_argument("--repeat", type=int, default=0, help="repeats per round and side (default per case)")
    ap.add_argument("--train-steps", type=int, default=200)
    ap.add_argument("--workdir", default=None, help="keep the case directories here")
    a = ap.parse_args()

    bench = a.bench
    if bench is None:
        for cand in ["bench/hgrad_bench"] + [os.path.join(here, "..", b, "bench", "hgrad_bench")
                                             for b in ("build-f", "build")]:
            if os.path.exists(cand):
                bench = cand
                break
    if bench is None or not os.path.exists(bench):
        print("compare_torch.py: hgrad_bench not found; build it (ninja -C build) and pass --bench")
        return 1
    bench = os.path.abspath(bench)

    cases = []
    for c in a.cases.split(","):
        cases += ["seed-sgd", "seed-adam"] if c == "seed" else [c]
    for c in cases:
        if c not in CASES:
            print("compare_torch.py: unknown case", c)
            return 2
    dtypes = a.dtypes.split(",")
    work = a.workdir or tempfile.mkdtemp(prefix="hgrad_cmp_")
    os.makedirs(work, exist_ok=True)

    print(f"PyTorch {torch.__version__} ({torch.get_num_threads()} thread), NumPy {np.__version__}; "
          f"{bench}; {a.rounds} alternating rounds per case")
    rows = []
    results = {}
    for case in cases:
        steps, opt, lr, training = CASES[case]
        d = os.path.join(work, case)
        os.makedirs(d, exist_ok=True)
        msg = subprocess.run([bench, "--export", d, "--cases", case], check=True, capture_output=True,
                             text=True).stdout.strip()
        print(f"\n== {case}: {msg}")
        repeat = a.repeat or DEFAULT_REPEAT[case]
        for dt in dtypes:
            inputs = load_inputs(d, dt)
            h_med, t_med, ratios, gemm_ratios, res = [], [], [], [], None
            bench_args = ["--dir", d, "--cases", case, "--dtypes", dt, "--repeat", str(repeat)]
            if training:
                bench_args += ["--train-steps", str(a.train_steps)]
            for rnd in range(a.rounds):
                # every round replays the products too (the GEMM limit),
                # so the time/limit ratio is a median of side-by-side pairs
                res = run_bench(bench, bench_args + (["--no-gemm"] if training and rnd > 0 else []))
                if rnd == 0:
                    first = res
                if not training and float(res["gemm_limit_s"]) > 0:
                    gemm_ratios.append(float(res["median_s"]) / float(res["gemm_limit_s"]))
                if training:
                    h = float(res["steps_per_s"])
                    t = statistics.median(torch_training_rate(inputs, repeat, a.train_steps))
                    ratios.append(h / t)
                else:
                    h = float(res["median_s"])
                    t = statistics.median(torch_hyper_times(inputs, case, repeat))
                    ratios.append(t / h)
                h_med.append(h)
                t_med.append(t)
            hm, tm = statistics.median(h_med), statistics.median(t_med)
            ratio = statistics.median(ratios)
            row = {"case": case, "dtype": dt, "hgrad": hm, "torch": tm, "ratio": ratio,
                   "ratio_min": min(ratios), "ratio_max": max(ratios), "res": first}
            if training:
                print(f"  {dt}: hgrad {hm:.0f} steps/s, PyTorch {tm:.0f} steps/s: "
                      f"{ratio:.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}); after the first step hgrad "
                      f"allocated {first['steady_chunk_allocs']} chunks / {first['steady_bytes_reserved']} bytes")
            else:
                row["gemm_ratio"] = statistics.median(gemm_ratios) if gemm_ratios else float("nan")
                row["gemm_min"] = min(gemm_ratios) if gemm_ratios else float("nan")
                row["gemm_max"] = max(gemm_ratios) if gemm_ratios else float("nan")
                # dx: the hgrad dx of the first round against PyTorch's.
                ours = np.load(os.path.join(d, f"dx_{dt}.npy"))
                theirs, E_t = hypergradient(*inputs, steps, opt, lr)
                theirs = theirs.detach().double().numpy()
                rel, frac = compare_dx(ours, theirs)
                tol = 1e-10
                if rel is None:
                    dxmsg = ("PyTorch's dx is all NaN (double backward through Adam's sqrt at v = 0, "
                             "see docs/performance.md); hgrad's is finite" if np.isfinite(ours).all()
                             else "both dx contain NaN")
                    row["dx"] = "torch all-NaN"
                elif dt == "f64":
                    ok = rel <= tol
                    dxmsg = (f"dx max rel diff {rel:.2e} ({'ok' if ok else 'ABOVE'} {tol:g})")
                    if frac < 1:
                        dxmsg += (f" over the {100 * frac:.1f}% finite entries of PyTorch's dx "
                                  f"(the rest NaN: sqrt at v = 0)")
                    row["dx"] = f"{rel:.1e}" + ("" if frac == 1 else f" ({100 * frac:.0f}% finite)")
                    row["dx_ok"] = ok
                else:  # f32: rounding differences grow through the steps; reported, not checked
                    dxmsg = f"dx max rel diff {rel:.2e} (f32: reported, not checked)"
                    if frac < 1:
                        dxmsg += f" over the {100 * frac:.1f}% finite entries of PyTorch's dx"
                    row["dx"] = f"{rel:.1e}" + ("" if frac == 1 else f" ({100 * frac:.0f}% finite)")
                print(f"  {dt}: hgrad {1e3 * hm:.3f} ms, PyTorch {1e3 * tm:.3f} ms: {ratio:.2f}x faster "
                      f"(rounds {min(ratios):.2f}-{max(ratios):.2f}); time/GEMM limit {row['gemm_ratio']:.2f} "
                      f"(rounds {row['gemm_min']:.2f}-{row['gemm_max']:.2f}); "
                      f"peak {int(first['peak_bytes']) / 1e6:.1f} MB; E_val {float(first['val_loss']):.10f} "
                      f"vs {E_t:.10f}; {dxmsg}")
            rows.append(row)
            results[(case, dt)] = row
            sys.stdout.flush()

    print("\n| case | dtype | hgrad | PyTorch | speedup | time / GEMM limit | arena peak | dx rel. diff |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["case"] == "training":
            print(f"| training | {r['dtype']} | {r['hgrad']:.0f} steps/s | {r['torch']:.0f} steps/s | "
                  f"{r['ratio']:.2f}x | - | {int(r['res']['peak_bytes']) / 1e6:.2f} MB/step | - |")
        else:
            print(f"| {r['case']} | {r['dtype']} | {1e3 * r['hgrad']:.3f} ms | {1e3 * r['torch']:.3f} ms | "
                  f"{r['ratio']:.2f}x | {r['gemm_ratio']:.2f} | {int(r['res']['peak_bytes']) / 1e6:.1f} MB | "
                  f"{r.get('dx', '-')} |")

    # Targets (docs/performance.md, "Targets").
    print("\nTargets:")
    def target(name, ok, detail):
        print(f"  [{'met' if ok else 'NOT met'}] {name}: {detail}")
    for dt in dtypes:
        for c in ("seed-sgd", "seed-adam"):
            if (c, dt) in results:
                r = results[(c, dt)]
                target(f"{c} {dt} >= 10x PyTorch", r["ratio"] >= 10, f"{r['ratio']:.2f}x")
        if ("standard", dt) in results:
            r = results[("standard", dt)]
            need = 2.5 if dt == "f32" else 2.0
            target(f"standard {dt} >= {need:g}x PyTorch", r["ratio"] >= need, f"{r['ratio']:.2f}x")
        if ("large", dt) in results:
            r = results[("large", dt)]
            target(f"large {dt} >= 1.3x PyTorch", r["ratio"] >= 1.3, f"{r['ratio']:.2f}x")
            target(f"large {dt} within 1.25x of the GEMM limit", r["gemm_ratio"] <= 1.25, f"{r['gemm_ratio']:.2f}x")
        if ("long", dt) in results and ("standard", dt) in results:
            lin = results[("long", dt)]["hgrad"] / results[("standard", dt)]["hgrad"]
            target(f"long {dt}: 100 steps <= 10.5x 10 steps", lin <= 10.5, f"{lin:.2f}x")
        if ("long", dt) in results and dt == "f64":
            pk = int(results[("long", dt)]["res"]["peak_bytes"])
            target("long f64 arena peak <= 100 MB", pk <= 100e6, f"{pk / 1e6:.1f} MB")
        if ("training", dt) in results:
            r = results[("training", dt)]
            target(f"training {dt} >= 3x PyTorch steps/s", r["ratio"] >= 3, f"{r['ratio']:.2f}x")
            zero = (r["res"]["steady_chunk_allocs"] == "0" and r["res"]["steady_bytes_reserved"] == "0"
                    and r["res"]["steady_in_use_drift"] == "0")
            target(f"training {dt}: zero bytes allocated per step after the first", zero,
                   f"{r['res']['steady_chunk_allocs']} chunks, {r['res']['steady_bytes_reserved']} bytes")
    bad_dx = [f"{r['case']} {r['dtype']}" for r in rows if r.get("dx_ok") is False]
    if bad_dx:
        print("dx disagreement beyond tolerance:", ", ".join(bad_dx))
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if bad_dx else 0


if __name__ == "__main__":
    sys.exit(main())
