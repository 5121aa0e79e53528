"""Peer comparison driver: export the problems, check every peer's loss and gradient against
revode's, then time revode and the peers interleaved over several rounds, one pinned core each.

    peers/.venv/bin/python peers/run.py [--rounds 3] [--bench target/release/revode-bench]
                                       [--problems complexity,compute,sde,brownian]
                                       [--out docs/results/peers] [--core 0]

Writes OUT/results.json and OUT/report.md. See peers/README.md.
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# Tolerances of the equality check: relative max-norm difference of the loss and of the flat
# gradient (dL/dy0, dL/dtheta) against revode's.
TOL = {"float64": 1e-12, "float32": 1e-6}

# Each peer entry: (library, script, method, revode method it is the counterpart of, reference
# in the exported problem it must equal).
PEERS = {
    "complexity": [
        ("Diffrax", "peer_jax.py", "recursive_checkpoint", "checkpointed", "reference"),
        ("Diffrax", "peer_jax.py", "direct", "direct", "reference"),
        ("torchdiffeq", "peer_torch.py", "backprop", "direct", "reference"),
    ],
    "compute": [
        ("Diffrax", "peer_jax.py", "recursive_checkpoint", "checkpointed", "reference"),
        ("Diffrax", "peer_jax.py", "direct", "direct", "reference"),
        ("torchdiffeq", "peer_torch.py", "backprop", "direct", "reference"),
    ],
    "sde": [
        ("torchsde", "peer_torch.py", "adjoint_reversible_heun", "reversible", "reference"),
        ("torchsde", "peer_torch.py", "backprop_reversible_heun", "direct", "reference"),
        ("Diffrax", "peer_jax.py", "reversible_heun_recursive_checkpoint", "checkpointed",
         "reference"),
        ("Diffrax", "peer_jax.py", "reversible_heun_direct", "direct", "reference"),
    ],
    "cde": [
        ("torchcde", "peer_torch.py", "backprop", "direct", "reference"),
    ],
    "brownian": [
        ("torchsde", "peer_torch.py", "forward", "forward", None),
        ("torchsde", "peer_torch.py", "reversed", "reversed", None),
        ("torchsde", "peer_torch.py", "random", "random", None),
        ("Diffrax", "peer_jax.py", "forward", "forward", None),
        ("Diffrax", "peer_jax.py", "reversed", "reversed", None),
        ("Diffrax", "peer_jax.py", "random", "random", None),
    ],
}
REVODE_METHODS = {
    "complexity": ["reversible", "checkpointed", "direct"],
    "compute": ["reversible", "checkpointed", "direct"],
    "sde": ["reversible", "checkpointed", "direct"],
    "brownian": ["forward", "reversed", "random"],
    "cde": ["reversible", "checkpointed", "direct"],
}
# Timed repetitions per process call: (revode, peers).
REPS = {"complexity": (50, 10), "compute": (3, 3), "sde": (5, 3), "brownian": (5, 2), "cde": (5, 3)}


def env():
    e = dict(os.environ)
    e.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
             RAYON_NUM_THREADS="1",
             XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
             JAX_COMPILATION_CACHE_DIR=os.path.join(HERE, ".work", "jax-cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PLATFORMS="cpu")
    return e


def call(cmd, core, timeout=1800):
    full = ["taskset", "-c", str(core)] + cmd
    p = subprocess.run(full, capture_output=True, text=True, env=env(), timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": f"exit {p.returncode}: {p.stderr.strip()[-2000:]}"}
    return json.loads(lines[-1])


def rel(a, b):
    scale = max(max((abs(x) for x in b), default=0.0), 1e-300)
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0) / scale


def check(args, prob_name, problem, entry):
    lib, script, method, _, ref_key = entry
    py = sys.executable
    out = call([py, os.path.join(HERE, script), "--problems", args.work, "--problem", prob_name,
                "--method", method, "--mode", "check"], args.core)
    res = {"library": lib, "method": method}
    if "error" in out:
        res.update(passed=False, note=out["error"])
        return res
    res["versions"] = out.get("versions")
    if ref_key is None:
        v = out["variance_over_h"]
        res.update(variance_over_h=v, passed=abs(v - 1.0) < 0.01,
                   note="statistics only: sample variance of the sweep's increments / h")
        return res
    ref = problem[ref_key]
    g_ref = ref["grad_y0"] + ref["grad_params"]
    g = out["grad_y0"] + out["grad_params"]
    if len(g) != len(g_ref):
        res.update(passed=False, note=f"gradient length {len(g)} != {len(g_ref)}")
        return res
    tol = TOL[problem["dtype"]]
    d_loss = abs(out["loss"] - ref["loss"]) / max(abs(ref["loss"]), 1e-300)
    d_grad = rel(g, g_ref)
    res.update(loss=out["loss"], revode_loss=ref["loss"], loss_rel_diff=d_loss,
               grad_rel_diff=d_grad, tolerance=tol, passed=d_loss <= tol and d_grad <= tol)
    return res


def stats(round_mins):
    ok = [t for t in round_mins if t is not None]
    if not ok:
        return None, None
    lo = min(ok)
    return lo, (max(ok) - lo) / lo


def git(*a):
    try:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bench", default=os.path.join(ROOT, "target", "release", "revode-bench"))
    ap.add_argument("--problems", default="complexity,compute,sde,brownian,cde")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "peers"))
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--notes", help="a Markdown file appended to the report")
    ap.add_argument("--time-failed", action="store_true",
                    help="also time peers whose gradient check failed numerically (marked "
                         "unverified in the report); peers that errored are never timed")
    args = ap.parse_args()
    args.work = os.path.join(HERE, ".work", "problems")
    names = [p for p in args.problems.split(",") if p]
    started = datetime.datetime.now(datetime.timezone.utc)
    # The code's state when the run starts; results written under docs/results (by this run or
    # an earlier one) do not make the code dirty.
    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".",
                     ":(exclude)docs/results"))
    load_before = os.getloadavg()
    subprocess.run([args.bench, "export-problems", "--out", args.work], check=True)
    problems = {}
    for n in names:
        with open(os.path.join(args.work, n + ".json")) as f:
            problems[n] = json.load(f)

    # 1. Equality checks.
    checks = {n: [check(args, n, problems[n], e) for e in PEERS[n]] for n in names}
    for n in names:
        for c in checks[n]:
            print(f"check {n:10s} {c['library']:11s} {c['method']:38s} passed={c['passed']} "
                  f"loss={c.get('loss_rel_diff')} grad={c.get('grad_rel_diff')} "
                  f"var/h={c.get('variance_over_h')} {c.get('note', '')[:300]}", flush=True)

    # 2. Interleaved timing rounds: revode and the peers that passed, each in its own process.
    def timeable(c):
        return c["passed"] or (args.time_failed and "grad_rel_diff" in c)

    timed = {n: [e for e, c in zip(PEERS[n], checks[n]) if timeable(c)] for n in names}
    rounds = {}
    for r in range(args.rounds):
        for n in names:
            r_reps, p_reps = REPS[n]
            jobs = [("revode", m, [args.bench, "peer-time", "--problem", n, "--method", m,
                                   "--reps", str(r_reps)]) for m in REVODE_METHODS[n]]
            jobs += [(e[0], e[2], [sys.executable, os.path.join(HERE, e[1]), "--problems",
                                   args.work, "--problem", n, "--method", e[2], "--mode", "time",
                                   "--reps", str(p_reps)]) for e in timed[n]]
            # Alternate revode and peers; reverse the order every other round.
            rev, peer = [j for j in jobs if j[0] == "revode"], [j for j in jobs if j[0] != "revode"]
            order = []
            for i in range(max(len(rev), len(peer))):
                order += rev[i:i + 1] + peer[i:i + 1]
            if r % 2:
                order.reverse()
            for lib, m, cmd in order:
                t0 = time.time()
                out = call(cmd, args.core)
                key = f"{n}|{lib}|{m}"
                best = min(out["times"]) if "times" in out else None
                rounds.setdefault(key, []).append(best)
                print(f"round {r} {key:60s} min {best} ({time.time() - t0:.1f} s wall)"
                      + (f" ERROR {out['error'][:300]}" if "error" in out else ""), flush=True)

    load_after = os.getloadavg()
    versions = {}
    for n in names:
        for c in checks[n]:
            versions.update(c.get("versions") or {})
    rows = []
    for n in names:
        rev_stats = {m: stats(rounds.get(f"{n}|revode|{m}", [])) for m in REVODE_METHODS[n]}
        for m in REVODE_METHODS[n]:
            lo, spread = rev_stats[m]
            rows.append({"problem": n, "library": "revode", "method": m, "min_s": lo,
                         "spread": spread, "rounds": rounds.get(f"{n}|revode|{m}")})
        for e, c in zip(PEERS[n], checks[n]):
            lo, spread = stats(rounds.get(f"{n}|{e[0]}|{e[2]}", []))
            matched = rev_stats[e[3]][0]
            first = REVODE_METHODS[n][0]
            rows.append({
                "problem": n, "library": e[0], "method": e[2], "counterpart": e[3],
                "check": c, "min_s": lo, "spread": spread,
                "rounds": rounds.get(f"{n}|{e[0]}|{e[2]}"),
                "ratio_to_counterpart": lo / matched if lo and matched else None,
                "ratio_to_revode_" + first:
                    lo / rev_stats[first][0] if lo and rev_stats[first][0] else None,
            })
    meta = {
        "command": " ".join([os.path.relpath(sys.executable, ROOT)] + sys.argv),
        "git_commit": commit,
        "git_dirty": dirty,
        "date_utc": started.isoformat(timespec="seconds"),
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(), "logical_cpus": os.cpu_count(), "pinned_core": args.core,
        "loadavg_before": load_before, "loadavg_after": load_after,
        "python": platform.python_version(), "versions": versions, "rounds": args.rounds,
        "reps_per_call": REPS, "tolerances": TOL,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    import report

    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report.render(meta, rows, problems))
        if args.notes:
            with open(args.notes) as n:
                f.write("\n" + n.read())
    print(f"written {args.out}/report.md and results.json")


if __name__ == "__main__":
    main()
