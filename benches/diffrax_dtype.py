#!/usr/bin/env python3
"""diffrax in f32 or f64 on the peers harness's gradient case, for `benches/mlp.rs --peer`.

The case of `../shared/peers` `c2_dopri5_N100`: dopri5, 100 constant steps on [0, 1], an MLP
2 -> W -> W -> 2 with tanh, batch 512, loss sum(x(1)^2), the gradient with respect to the
parameters and x0 by RecursiveCheckpointAdjoint (RCA), compiled once with
jit(value_and_grad). Weights are random (uniform in +-1/sqrt(fan_in), as dfdx's Linear); timing
does not depend on their values. Also one MLP evaluation (forward, and forward + VJP) at batch
512, compiled.

usage: taskset -c 0 benches/diffrax_dtype.py --dtype f32 --width 64 [--reps 7]

Threads: XLA uses the cores `taskset` leaves it. Prints one JSON line: median seconds per
gradient, and microseconds per evaluation.
"""
import argparse
import json
import time

import jax

ap = argparse.ArgumentParser()
ap.add_argument("--dtype", choices=["f32", "f64"], required=True)
ap.add_argument("--width", type=int, required=True)
ap.add_argument("--reps", type=int, default=7)
a = ap.parse_args()
jax.config.update("jax_enable_x64", a.dtype == "f64")

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

DT = jnp.float32 if a.dtype == "f32" else jnp.float64
W, BATCH, STEPS = a.width, 512, 100
rng = np.random.default_rng(0)


def layer(i, o):
    b = 1.0 / np.sqrt(i)
    return (jnp.asarray(rng.uniform(-b, b, (o, i)), DT), jnp.asarray(rng.uniform(-b, b, (o,)), DT))


params = (*layer(2, W), *layer(W, W), *layer(W, 2))
x0 = jnp.asarray(np.sin(0.37 * np.arange(2 * BATCH)).reshape(BATCH, 2), DT)


def mlp(p, x):
    W1, b1, W2, b2, W3, b3 = p
    h = jnp.tanh(x @ W1.T + b1)
    h = jnp.tanh(h @ W2.T + b2)
    return h @ W3.T + b3


term = diffrax.ODETerm(lambda t, y, p: mlp(p, y))


def loss(p, x):
    sol = diffrax.diffeqsolve(term, diffrax.Dopri5(), t0=0.0, t1=1.0, dt0=1.0 / STEPS, y0=x,
                              args=p, saveat=diffrax.SaveAt(t1=True),
                              stepsize_controller=diffrax.ConstantStepSize(),
                              adjoint=diffrax.RecursiveCheckpointAdjoint())
    return jnp.sum(sol.ys[-1] ** 2)


def median_time(f, reps):
    jax.block_until_ready(f())
    jax.block_until_ready(f())
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f())
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
g = median_time(lambda: grad(params, x0), a.reps)
fwd = jax.jit(mlp)
vjp = jax.jit(lambda p, x: jax.vjp(lambda x: mlp(p, x), x)[1](jnp.ones((BATCH, 2), DT)))
inner = 200
ev = median_time(lambda: [fwd(params, x0) for _ in range(inner)][-1], a.reps) / inner
ej = median_time(lambda: [vjp(params, x0) for _ in range(inner)][-1], a.reps) / inner
print(json.dumps({"impl": "diffrax RCA", "dtype": a.dtype, "width": W, "gradient_s": g,
                  "eval_us": ev * 1e6, "eval_vjp_us": ej * 1e6,
                  "jax": jax.__version__, "diffrax": diffrax.__version__}))
