"""Shared helpers of the peer scripts: problem loading, the command line, output.

Every peer script is called as

    python peer_X.py --problems DIR --problem NAME --method M --mode check|time [--reps K]

and prints one JSON line on stdout: in ``check`` mode the loss and the flat gradient
(dL/dy0 then dL/dtheta, in the order of the exported problem); in ``time`` mode the wall time
of each of K repetitions after warm-up (JIT compilation and one untimed run).
"""

import argparse
import json
import os
import sys
import time


def single_thread_env():
    """Environment variables that keep numerical libraries on one thread (set before import)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ["XLA_FLAGS"] = flags.strip()


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--problems", required=True, help="directory written by export-problems")
    p.add_argument("--problem", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--mode", choices=["check", "time"], required=True)
    p.add_argument("--reps", type=int, default=5)
    return p.parse_args()


def load(args):
    with open(os.path.join(args.problems, args.problem + ".json")) as f:
        return json.load(f)


def layers(mlp):
    """(out, in) of each layer of an exported MLP, in the flat weight order."""
    inputs = mlp["dim"] + (1 if mlp["time_input"] else 0)
    shapes = [(mlp["hidden"], inputs)]
    shapes += [(mlp["hidden"], mlp["hidden"])] * (mlp["depth"] - 1)
    shapes.append((mlp["dim"], mlp["hidden"]))
    return shapes


def split_params(flat, shapes):
    """Flat weights -> list of (W as nested lists out x in, b as list)."""
    out, at = [], 0
    for o, i in shapes:
        w = [flat[at + r * i: at + (r + 1) * i] for r in range(o)]
        at += o * i
        b = flat[at: at + o]
        at += o
        out.append((w, b))
    assert at == len(flat), (at, len(flat))
    return out


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def time_reps(fn, reps):
    """Wall time of each of `reps` calls of fn (fn must block until its result is ready)."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def brownian_queries(problem, order):
    """The (t_a, t_b) pairs, t_a < t_b, of one sweep in the given order, and the sign."""
    n, h = problem["n_queries"], problem["h"]
    if order == "forward":
        steps = range(n)
    elif order == "reversed":
        steps = range(n - 1, -1, -1)
    elif order == "random":
        steps = problem["random_steps"]
    else:
        raise SystemExit(f"unknown order {order}")
    return [(k * h, (k + 1) * h) for k in steps]
