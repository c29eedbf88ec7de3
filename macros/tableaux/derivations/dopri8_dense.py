"""Derives the [dense] section of macros/tableaux/dopri8.toml: a 5th-order continuous extension of
Prince & Dormand's RK8(7)13M over its 13 stages and the extra stage k14 = f(t + h, y).

    python3 -m pip install mpmath      # the only dependency
    python3 macros/tableaux/derivations/dopri8_dense.py [--check]

The interpolant is y(t0 + θh) = y0 + h Σ_i b_i(θ) k_i with b_i(θ) = Σ_{m=1..5} β_{m,i} θ^m. The
unknowns β are linear in the conditions:

* order 5 (Hairer, Nørsett & Wanner I, Theorem II.6.1): for every rooted tree τ with |τ| ≤ 5
  and every power m, Σ_i β_{m,i} Φ_i(τ) = [m = |τ|] / γ(τ), over the 14 stages (the extra one
  has row b, node 1);
* the endpoint: Σ_m β_{m,i} = b_i (b_14 = 0);
* β_{m,i} = 0 for stages 2-5, whose weight in b is 0 too.

Order 6 cannot be met with these stages (printed: the least-squares residual of the order-6
system is about 2e-3). Of the order-5 solutions (a 20-dimensional family) this takes the one
that minimises the L2 norm on [0, 1] of the order-6 defects Σ_i b_i(θ) Φ_i(τ) − θ⁶/γ(τ),
|τ| = 6, plus 1e-8 times |β|² (to fix the directions the defects do not see), at 40 digits.
Each coefficient is then rounded to the nearest ratio with denominator below 10^12. The
tableau's own coefficients are the paper's ratio approximations of irrational numbers, so the
conditions hold to about 6e-16, not exactly; the file's tolerance (1e-15) covers it, and the
macro checks it again at compile time. --check compares the output with the tableau file.
"""
import sys
import tomllib
from fractions import Fraction
from pathlib import Path

from mpmath import matrix, mp, mpf

mp.dps = 40
HERE = Path(__file__).resolve().parent
TABLEAU = HERE.parent / "dopri8.toml"
ORDER, DEGREE, REG = 5, 5, mpf("1e-8")
ZERO_STAGES = [1, 2, 3, 4]


def trees(max_order):
    """Rooted trees by order, each a sorted tuple of its children."""
    by = {1: [()]}
    for n in range(2, max_order + 1):
        found = set()

        def grow(rest, kids):
            if rest == 0:
                found.add(tuple(sorted(kids)))
                return
            for k in range(1, rest + 1):
                for t in by[k]:
                    grow(rest - k, kids + [t])

        grow(n - 1, [])
        by[n] = sorted(found)
    return by


def gamma(t):
    g = 1 + sum(size(c) for c in t)
    for c in t:
        g *= gamma(c)
    return g


def size(t):
    return 1 + sum(size(c) for c in t)


def stage_weights(t, a, memo):
    """Φ_i(τ) for every stage i: the product over children of (A Φ(child))_i."""
    if t not in memo:
        s = len(a)
        v = [mpf(1)] * s
        for c in t:
            w = stage_weights(c, a, memo)
            v = [v[i] * sum(a[i][j] * w[j] for j in range(s)) for i in range(s)]
        memo[t] = v
    return memo[t]


def lstsq(m, y, rel_tol=mpf(10) ** -14):
    """Minimum-norm least squares by SVD: (solution, rank, residual, null-space basis)."""
    u, sv, v = mp.svd_r(m, full_matrices=True)
    cut = max(sv) * rel_tol
    rank = sum(1 for x in sv if x > cut)
    uty = u.T * y
    x = matrix(m.cols, 1)
    for j in range(rank):
        for i in range(m.cols):
            x[i] += uty[j] / sv[j] * v[j, i]
    residual = max(abs(r) for r in (m * x - y))
    null = [[v[j, i] for i in range(m.cols)] for j in range(rank, m.cols)]
    return x, rank, residual, null


def conditions(order, degree, g, by, b, zero):
    """The linear system in β (stage-major within each power) for the given order."""
    s = len(b)
    n = s * degree
    rows, rhs = [], []
    for m in range(1, degree + 1):
        for k in range(1, order + 1):
            for t in by[k]:
                r = [mpf(0)] * n
                for i in range(s):
                    r[(m - 1) * s + i] = g[t][i]
                rows.append(r)
                rhs.append(mpf(1) / gamma(t) if m == k else mpf(0))
    for i in range(s):
        r = [mpf(0)] * n
        for m in range(1, degree + 1):
            r[(m - 1) * s + i] = mpf(1)
        rows.append(r)
        rhs.append(b[i])
    for i in zero:
        for m in range(1, degree + 1):
            r = [mpf(0)] * n
            r[(m - 1) * s + i] = mpf(1)
            rows.append(r)
            rhs.append(mpf(0))
    return matrix(rows), matrix(rhs)


def main():
    tab = tomllib.loads(TABLEAU.read_text())
    frac = [Fraction(x) for x in tab["b"]] + [Fraction(0)]
    as_mp = lambda q: mpf(q.numerator) / q.denominator
    s = len(tab["b"]) + 1
    a = [[as_mp(Fraction(x)) for x in row] + [mpf(0)] * (s - len(row)) for row in tab["a"]]
    a.append([as_mp(q) for q in frac])  # the extra stage: row b
    b = [as_mp(q) for q in frac]
    by = trees(ORDER + 1)
    memo = {}
    g = {t: stage_weights(t, a, memo) for n in by for t in by[n]}

    _, _, res6, _ = lstsq(*conditions(ORDER + 1, ORDER + 1, g, by, b, []))
    print(f"order {ORDER + 1}: least-squares residual {mp.nstr(res6, 3)} (not attainable)", file=sys.stderr)
    c, d = conditions(ORDER, DEGREE, g, by, b, ZERO_STAGES)
    x0, rank, res, null = lstsq(c, d)
    print(f"order {ORDER}: rank {rank}, {len(null)} free, residual {mp.nstr(res, 3)}", file=sys.stderr)

    # The order-6 defects' L2 norm: with H the Gram matrix of θ, θ², … on [0, 1] and H = L Lᵀ,
    # ‖q‖²_H = ‖Lᵀ q‖² for the defect's coefficient vector q.
    n, q_len = s * DEGREE, max(DEGREE, ORDER + 1)
    gram = matrix(q_len, q_len)
    for i in range(q_len):
        for j in range(q_len):
            gram[i, j] = mpf(1) / (i + j + 3)
    chol = mp.cholesky(gram)
    rows, rhs = [], []
    for t in by[ORDER + 1]:
        for r_ in range(q_len):
            row, const = [mpf(0)] * n, mpf(0)
            for m in range(1, q_len + 1):
                l = chol[m - 1, r_]
                if m <= DEGREE:
                    for i in range(s):
                        row[(m - 1) * s + i] += l * g[t][i]
                if m == ORDER + 1:
                    const += l / gamma(t)
            rows.append(row)
            rhs.append(const)
    for i in range(n):
        row = [mpf(0)] * n
        row[i] = mp.sqrt(REG)
        rows.append(row)
        rhs.append(mpf(0))
    lm, e = matrix(rows), matrix(rhs)
    basis = matrix(null).T
    mz = lm * basis
    z = mp.lu_solve(mz.T * mz, mz.T * (e - lm * x0))
    x = x0 + basis * z

    out = []
    for i in range(s):
        if i in ZERO_STAGES:
            out.append(["0"] * DEGREE)
            continue
        out.append([str(Fraction(mp.nstr(x[(m - 1) * s + i], 35)).limit_denominator(10**12)) for m in range(1, DEGREE + 1)])
    text = "b = [\n" + "".join("  [" + ", ".join(f'"{v}"' for v in row) + "],\n" for row in out) + "]\n"
    if "--check" in sys.argv:
        shipped = tab["dense"]["b"]
        same = shipped == out
        print("matches macros/tableaux/dopri8.toml" if same else "DIFFERS from macros/tableaux/dopri8.toml", file=sys.stderr)
        sys.exit(0 if same else 1)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
