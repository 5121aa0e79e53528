#!/usr/bin/env python3
"""Rewrites every number quoted before a `<!-- figure: FILE PATH [×SCALE] -->` marker in
README.md and docs/src/*.md from its results JSON, keeping the quoted precision (decimals, or
two significant digits in e-notation). The check itself is revode-bench/tests/docs_figures.rs;
this script only saves retyping after a results file is regenerated.

    python3 scripts/refresh-figures.py [--dry-run]
"""
import json, math, re, sys, pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
MARK = re.compile(r"<!-- figure: (\S+) (\S+)(?: ×(\S+))? -->")
NUM = re.compile(r"(-?\d+(?:\.\d+)?(?:e-?\d+)?)(\D{0,12})$")


def select(v, path):
    for seg in [s for s in path.split("/") if s]:
        key, filt = (seg.split("[", 1) + [None])[:2]
        if key:
            v = v[int(key)] if isinstance(v, list) and key.isdigit() else v[key]
        if filt:
            conds = []
            for c in filt.rstrip("]").split(","):
                if "=" in c:
                    k, w = c.split("=", 1); conds.append((k, True, w))
                elif "~" in c:
                    k, w = c.split("~", 1); conds.append((k, False, w))
            def field(e, k):
                x = e[int(k)] if k.isdigit() and isinstance(e, list) else (e.get(k) if isinstance(e, dict) else None)
                if x is None:
                    return None
                if isinstance(x, str):
                    return x
                return json.dumps(x) if not isinstance(x, float) else repr_num(x)
            hits = [e for e in v if all((lambda t: t is not None and (t == w if ex else w in t))(field(e, k)) for k, ex, w in conds)]
            if len(hits) != 1:
                raise KeyError(f"{len(hits)} elements match [{filt}]")
            v = hits[0]
    return v


def repr_num(x):
    # serde_json prints floats like Rust: integers keep ".0".
    return json.dumps(x)


def fmt(value, quoted):
    if "e" in quoted:
        m = quoted.split("e")[0]
        sig = len(m.replace("-", "").replace(".", "").lstrip("0")) or 1
        mant, exp = f"{value:.{max(sig - 1, 0)}e}".split("e")
        e = int(exp)
        digits = quoted.split("e")[1].lstrip("-+")
        padded = len(digits) > 1 and digits.startswith("0")
        return f"{mant}e{'-' if e < 0 else ''}{abs(e):0{2 if padded else 1}d}"
    d = len(quoted.split(".")[1]) if "." in quoted else 0
    return f"{value:.{d}f}"


def main():
    dry = "--dry-run" in sys.argv
    files = [ROOT / "README.md"] + sorted((ROOT / "docs/src").glob("*.md"))
    changed = 0
    for f in files:
        lines = f.read_text().split("\n")
        for i, line in enumerate(lines):
            out, pos = "", 0
            for m in MARK.finditer(line):
                before = line[pos:m.start()]
                try:
                    data = json.loads((ROOT / m.group(1)).read_text())
                    value = float(select(data, m.group(2))) * float(m.group(3) or 1.0)
                except Exception as e:  # noqa: BLE001
                    print(f"{f.name}:{i + 1}: cannot read {m.group(1)} {m.group(2)}: {e}")
                    out += before + m.group(0); pos = m.end(); continue
                n = NUM.search(before)
                if n and not math.isnan(value):
                    new = fmt(value, n.group(1))
                    if new != n.group(1):
                        changed += 1
                        print(f"{f.name}:{i + 1}: {n.group(1)} → {new}")
                        before = before[:n.start(1)] + new + before[n.end(1):]
                out += before + m.group(0); pos = m.end()
            lines[i] = out + line[pos:]
        if not dry:
            f.write_text("\n".join(lines))
    print(f"{changed} figures rewritten" + (" (dry run)" if dry else ""))


if __name__ == "__main__":
    main()
