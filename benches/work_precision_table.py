#!/usr/bin/env python3
"""Tables of `examples/work_precision.rs` (ours.jsonl) next to `benches/work_precision.py`
(diffrax.jsonl): per problem, steps / evaluations / error at each tolerance, and the ratio of our
evaluations to diffrax's at equal achieved accuracy (our evaluations at diffrax's error, by
log-log interpolation along our curve ordered by tolerance; '–' where diffrax's error lies
outside our range). diffrax's evaluations are estimated as 6 × (accepted + rejected) + 2.

usage: python3 benches/work_precision_table.py ours.jsonl diffrax.jsonl > tables.md
"""
import json
import math
import sys


def load(path):
    rows = []
    for line in open(path):
        d = json.loads(line)
        if "reference" in d:
            continue
        if d["impl"] == "diffrax":
            d["nfe"] = 6 * (d["accepted"] + d["rejected"]) + 2
        else:
            # "dopri5_shampine" is a dopri5 variant: compared with diffrax's dopri5.
            base, _, variant = d["solver"].partition("_")
            d["solver"], d["variant"] = base, variant
        rows.append(d)
    return rows


def at_error(curve, err):
    """Evaluations along `curve` [(tol, nfe, error)] (loosest first) at `err`: the first
    segment whose errors bracket it, interpolated in log-log."""
    for (t0, n0, e0), (t1, n1, e1) in zip(curve, curve[1:]):
        lo, hi = min(e0, e1), max(e0, e1)
        if lo <= err <= hi:
            if e0 == e1:
                return min(n0, n1)
            s = (math.log(err) - math.log(e0)) / (math.log(e1) - math.log(e0))
            return math.exp(math.log(n0) + s * (math.log(n1) - math.log(n0)))
    return None


def fit(curve):
    """Least-squares line log(nfe) = a + b log(error) through [(tol, nfe, error)], and the
    spread (standard deviation) of the points' log(nfe) about it."""
    xs = [math.log(e) for _, _, e in curve]
    ys = [math.log(n) for _, n, _ in curve]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    a = my - b * mx
    spread = math.sqrt(sum((y - a - b * x) ** 2 for x, y in zip(xs, ys)) / len(xs))
    return a, b, spread


def cell(d):
    return f"{d['accepted']}+{d['rejected']}, {d['nfe']}, {d['error']:.1e}"


def is_decade(tol):
    return abs(math.log10(tol) - round(math.log10(tol))) < 1e-9


LABELS = {
    ("neural-ode", ""): "default (PI controller{})",
    ("neural-ode", "shampine"): "Shampine's b̂, PI controller",
    ("neural-ode-I", ""): "diffrax's I controller{}",
    ("neural-ode-I", "shampine"): "Shampine's b̂, diffrax's I controller",
}


def main():
    ours, theirs = load(sys.argv[1]), load(sys.argv[2])
    problems = []
    for d in ours:
        if d["problem"] not in problems:
            problems.append(d["problem"])

    def curve_of(rows, **key):
        return sorted(
            ((d["tol"], d["nfe"], d["error"]) for d in rows if all(d.get(k) == v for k, v in key.items())),
            key=lambda c: -c[0],
        )

    for problem in problems:
        print(f"\n**{problem}** — steps accepted + rejected, evaluations, error of the final state:\n")
        print("| rtol = atol | dopri5 (ours) | dopri5 (diffrax) | tsit5 (ours) | tsit5 (diffrax) |")
        print("| --- | --- | --- | --- | --- |")
        for r in [d for d in theirs if d["problem"] == problem and d["solver"] == "dopri5" and is_decade(d["tol"])]:
            cells = []
            for solver in ["dopri5", "tsit5"]:
                for impl, rows in [("neural-ode", ours), ("diffrax", theirs)]:
                    match = [d for d in rows if d["impl"] == impl and d["problem"] == problem
                             and d["solver"] == solver and d.get("variant", "") == ""
                             and math.isclose(d["tol"], r["tol"], rel_tol=1e-9)]
                    cells.append(cell(match[0]) if match else "")
            print(f"| {r['tol']:.0e} | " + " | ".join(cells) + " |")

    print("\n**Our evaluations / diffrax's at equal achieved accuracy** (at each whole-decade tolerance, "
          "our evaluations at the error diffrax reached, log–log interpolated along our curve of all 29 "
          "tolerances; – where outside our range), then over all 29 quarter-decade tolerances the median "
          "and the largest, and the ratio of fitted work–precision lines at the loosest / middle / "
          "tightest error both reached (only where diffrax's error spans more than three decades):\n")
    print("| problem | solver, variant | 1e-3 | 1e-4 | 1e-5 | 1e-6 | 1e-7 | 1e-8 | 1e-9 | 1e-10 | median | max | fitted |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for problem in problems:
        for solver in ["dopri5", "tsit5"]:
            ref = sorted((d for d in theirs if d["problem"] == problem and d["solver"] == solver),
                         key=lambda d: -d["tol"])
            for (impl, variant), label in LABELS.items():
                curve = curve_of(ours, impl=impl, problem=problem, solver=solver, variant=variant)
                if not curve or not ref:
                    continue
                cells, every = [], []
                for r in ref:
                    n = at_error(curve, r["error"])
                    if n is not None:
                        every.append(n / r["nfe"])
                    if is_decade(r["tol"]):
                        cells.append("–" if n is None else f"{n / r['nfe']:.2f}")
                every.sort()
                theirs_curve = [(r["tol"], r["nfe"], r["error"]) for r in ref]
                errors = [e for *_, e in theirs_curve]
                fitted = "–"
                if max(errors) / min(errors) > 1000:
                    (a, b, _), (a2, b2, _) = fit(curve), fit(theirs_curve)
                    lo = max(min(e for *_, e in curve), min(errors))
                    hi = min(max(e for *_, e in curve), max(errors))
                    fitted = " / ".join(
                        f"{math.exp(a + b * math.log(e) - a2 - b2 * math.log(e)):.2f}"
                        for e in [hi, math.sqrt(lo * hi), lo])
                name = label.format(", 1980 b̂" if solver == "dopri5" else "")
                print(f"| {problem} | {solver}, {name} | " + " | ".join(cells)
                      + f" | {every[len(every) // 2]:.2f} | {every[-1]:.2f} | {fitted} |")


if __name__ == "__main__":
    main()
