"""Renders docs/results/peers/report.md from the rows and metadata of run.py."""


def fmt_t(s):
    if s is None:
        return "—"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


def fmt_spread(x):
    return "—" if x is None else f"{100 * x:.0f} %"


def fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}×"


def check_text(c):
    if c is None:
        return "—"
    if "variance_over_h" in c:
        return f"var/h = {c['variance_over_h']:.4f} ({'ok' if c['passed'] else 'FAILED'})"
    if "grad_rel_diff" not in c:
        return "FAILED: " + c.get("note", "")[:120].replace("|", "/").replace("\n", " ")
    word = "pass" if c["passed"] else "FAIL"
    return (f"{word}: loss {c['loss_rel_diff']:.1e}, grad {c['grad_rel_diff']:.1e} "
            f"(tol {c['tolerance']:.0e})")


def render(meta, rows, problems):
    out = ["# Peer comparison: revode against Diffrax, torchdiffeq, torchsde and torchcde", ""]
    out += [
        f"Command: `{meta['command']}`  ",
        f"Commit: `{meta['git_commit']}`{' (dirty work tree)' if meta['git_dirty'] else ''}  ",
        f"Date (UTC): {meta['date_utc']} to {meta['finished_utc']}  ",
        f"CPU: {meta['cpu']}, {meta['logical_cpus']} logical CPUs; every process pinned to core "
        f"{meta['pinned_core']} (`taskset`) and single-threaded  ",
        f"Load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in meta['loadavg_before'])}; "
        f"after: {', '.join(f'{x:.2f}' for x in meta['loadavg_after'])}  ",
        f"Python {meta['python']}; versions: "
        + ", ".join(f"{k} {v}" for k, v in sorted(meta["versions"].items())),
        "",
        f"{meta['rounds']} rounds; in each round every revode method and every peer runs in its "
        "own process (after warm-up: JIT compilation and one untimed run), revode and peers "
        "alternating, the order reversed every other round. A process times K repetitions "
        f"(K per problem, revode/peers: {meta['reps_per_call']}); its fastest counts for the "
        "round. **min** is the fastest round, **spread** (max − min)/min over the rounds. "
        "Ratios are peer min ÷ revode min: above 1 means revode is faster.",
        "",
        "Equality check before timing: relative max-norm difference of the loss and of the flat "
        "gradient (dL/dy0, dL/dθ) from revode's full-tape gradient of the same scheme, "
        f"tolerances {meta['tolerances']}. Peers that fail are not timed unless the run says "
        "`--time-failed`; their ratios are then marked *unverified*.",
        "",
    ]
    for name, prob in problems.items():
        out.append(f"## {name}")
        out.append("")
        out.append(prob.get("description", ""))
        if "n_steps" in prob:
            out.append("")
            out.append(f"N = {prob['n_steps']} steps, h = {prob['h']}, {prob['dtype']}.")
        out.append("")
        rev = [r for r in rows if r["problem"] == name and r["library"] == "revode"]
        first = rev[0]["method"] if rev else "reversible"
        out.append("| revode method | min | spread | per round |")
        out.append("|---|---|---|---|")
        for r in rev:
            per = ", ".join(fmt_t(x) for x in (r["rounds"] or []))
            out.append(f"| {r['method']} | {fmt_t(r['min_s'])} | {fmt_spread(r['spread'])} | {per} |")
        out.append("")
        out.append(f"| peer | method | check | counterpart | peer min | spread | "
                   f"peer ÷ revode counterpart | peer ÷ revode {first} |")
        out.append("|---|---|---|---|---|---|---|---|")
        for r in rows:
            if r["problem"] != name or r["library"] == "revode":
                continue
            mark = "" if r["check"]["passed"] else " *unverified*"
            ratio_first = r.get("ratio_to_revode_" + first)
            out.append(
                f"| {r['library']} | {r['method']} | {check_text(r['check'])} | {r['counterpart']} "
                f"| {fmt_t(r['min_s'])} | {fmt_spread(r['spread'])} "
                f"| {fmt_ratio(r['ratio_to_counterpart'])}{mark if r['min_s'] else ''} "
                f"| {fmt_ratio(ratio_first)}{mark if r['min_s'] else ''} |")
        if name == "brownian":
            n = prob["n_queries"]
            out.append("")
            out.append(f"Queries per second (min over rounds, {n} queries per sweep): "
                       + "; ".join(f"{r['library']} {r['method']} {n / r['min_s']:.3g}"
                                   for r in rows if r["problem"] == name and r["min_s"]))
        out.append("")
    return "\n".join(out) + "\n"
