#!/usr/bin/env python3
"""diffrax's side of `examples/work_precision.rs`: the same problems, solvers and tolerances
(PIDController(rtol, atol) with diffrax's defaults, dt0 = None), the error of the final state
against the reference the Rust example printed. Needs jax, diffrax, equinox, numpy.

usage: cargo run --release --example work_precision -- problem_W64.json > ours.jsonl
       python3 benches/work_precision.py problem_W64.json ours.jsonl > diffrax.jsonl
"""
import json
import sys

import jax

jax.config.update("jax_enable_x64", True)
import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def lotka(t, y, args):
    u, v = y[..., 0], y[..., 1]
    return jnp.stack([1.5 * u - u * v, u * v - 3.0 * v], axis=-1)


def vdp(t, y, args):
    u, v = y[..., 0], y[..., 1]
    return jnp.stack([v, (1.0 - u * u) * v - u], axis=-1)


def mlp(params):
    w1, b1, w2, b2, w3, b3 = params

    def f(t, y, args):
        h = jnp.tanh(y @ w1.T + b1)
        h = jnp.tanh(h @ w2.T + b2)
        return h @ w3.T + b3

    return f


def main():
    problem_file, ours = sys.argv[1], sys.argv[2]
    refs = {}
    for line in open(ours):
        d = json.loads(line)
        if "reference" in d:
            refs[d["reference"]] = np.asarray(d["y"])
    with open(problem_file) as f:
        p = json.load(f)
    params = [np.asarray(p[k]).reshape(p["shapes"][k]) for k in ["W1", "b1", "W2", "b2", "W3", "b3"]]
    x0_mlp = np.asarray(p["x0"]).reshape(p["shapes"]["x0"])
    problems = [
        ("lotka_volterra", lotka, np.array([[1.0, 1.0]]), 10.0),
        ("van_der_pol", vdp, np.array([[2.0, 0.0]]), 10.0),
        ("mlp", mlp(params), x0_mlp, 1.0),
    ]
    for name, f, y0, t1 in problems:
        if name not in refs:
            continue
        for solver_name, solver in [("dopri5", diffrax.Dopri5()), ("tsit5", diffrax.Tsit5())]:
            for j in range(29):  # quarter decades, 1e-3 ... 1e-10 (as the Rust example)
                tol = 10.0 ** (-3.0 - j / 4.0)
                sol = diffrax.diffeqsolve(
                    diffrax.ODETerm(f), solver, t0=0.0, t1=t1, dt0=None, y0=jnp.asarray(y0),
                    stepsize_controller=diffrax.PIDController(rtol=tol, atol=tol), max_steps=1_000_000,
                )
                y = np.asarray(sol.ys[-1]).ravel()
                ref = refs[name]
                err = float(np.max(np.abs(y[: len(ref)] - ref)))
                st = sol.stats
                print(json.dumps({
                    "impl": "diffrax", "problem": name, "solver": solver_name, "tol": tol,
                    "steps": int(st["num_steps"]),
                    "accepted": int(st["num_accepted_steps"]), "rejected": int(st["num_rejected_steps"]),
                    "error": err,
                }), flush=True)


if __name__ == "__main__":
    main()
