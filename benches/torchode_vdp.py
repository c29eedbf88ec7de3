#!/usr/bin/env python3
"""Python reference harness: mixed-stiffness Van der Pol batch.

Problem
-------
B = 256 Van der Pol oscillators, state (x, v):
    dx/dt = v
    dv/dt = mu_i (1 - x^2) v - x,      mu_i = linspace(0.1, 5.0, 256)
every row starts at (x, v) = (2, 0); integrate t = 0 .. 10, output only at t = 10.
Solver: Dopri5, rtol = atol = 1e-6, float64 throughout, one CPU thread.

Measured
--------
1. torchode, per-sample step control (AutoDiffAdjoint + Dopri5 + IntegralController),
   forward only: per-row step statistics, vector-field calls, loop iterations, wall time.
2. torchdiffeq.odeint(method='dopri5'), one shared step size for the whole batch:
   accepted/rejected steps, vector-field calls, wall time.
3. Gradient of loss = sum_i x_i(10)^2 + v_i(10)^2 w.r.t. mu (shape (256,)) by
   backprop through the solver (torchode AutoDiffAdjoint; torchdiffeq odeint, not
   odeint_adjoint): wall time of forward+backward, and peak RSS increase measured in a
   fresh subprocess per measurement.
4. Sanity: torchode vs torchdiffeq final states, selected rows, mu gradients.

Run (pin to one core; the other core may be busy):
    python3 -m venv v && v/bin/pip install torch torchode torchdiffeq numpy psutil
    taskset -c 1 v/bin/python benches/torchode_vdp.py
The same batch in neural-ode: `cargo bench --bench per_sample`.
"""

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import torch
import torchdiffeq
import torchode as to

try:
    from importlib.metadata import version as _pkg_version
except ImportError:  # pragma: no cover
    _pkg_version = None

# ----------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------
B = 256
MU_MIN, MU_MAX = 0.1, 5.0
X0, V0 = 2.0, 0.0
T0, T1 = 0.0, 10.0
RTOL, ATOL = 1e-6, 1e-6
DTYPE = torch.float64
N_TIMING = 7          # timed runs (median reported), after 1 warm-up
N_MEM_REPEATS = 3     # fresh subprocesses per memory measurement
SHOW_ROWS = (0, 128, 255)

torch.set_num_threads(1)
torch.set_default_dtype(DTYPE)


# ----------------------------------------------------------------------------------
# Problem
# ----------------------------------------------------------------------------------
def make_mu(requires_grad=False):
    mu = torch.linspace(MU_MIN, MU_MAX, B, dtype=DTYPE)
    return mu.requires_grad_(requires_grad)


def make_y0():
    y0 = torch.empty(B, 2, dtype=DTYPE)
    y0[:, 0] = X0
    y0[:, 1] = V0
    return y0


class VdpField:
    """Batched Van der Pol vector field, y of shape (B, 2). Counts its calls and
    exposes torchdiffeq's step callbacks to count accepted/rejected steps."""

    def __init__(self, mu):
        self.mu = mu
        self.n_calls = 0
        self.n_accept = 0
        self.n_reject = 0

    def __call__(self, t, y):
        self.n_calls += 1
        x, v = y[:, 0], y[:, 1]
        dx = v
        dv = self.mu * (1.0 - x * x) * v - x
        return torch.stack((dx, dv), dim=1)

    # torchdiffeq callbacks (ignored by torchode)
    def callback_accept_step(self, t0, y0, dt):
        self.n_accept += 1

    def callback_reject_step(self, t0, y0, dt):
        self.n_reject += 1


# ----------------------------------------------------------------------------------
# Solvers
# ----------------------------------------------------------------------------------
def solve_torchode(mu):
    """Per-sample step control (torchode default AutoDiffAdjoint). Returns
    (final state (B, 2), stats dict, field)."""
    field = VdpField(mu)
    term = to.ODETerm(field)
    step_method = to.Dopri5(term=term)
    controller = to.IntegralController(atol=ATOL, rtol=RTOL, term=term)
    solver = to.AutoDiffAdjoint(step_method, controller)
    t_eval = torch.tensor([T0, T1], dtype=DTYPE).expand(B, 2)
    problem = to.InitialValueProblem(y0=make_y0(), t_eval=t_eval)
    sol = solver.solve(problem)
    if not bool((sol.status == to.Status.SUCCESS.value).all()):
        raise RuntimeError(f"torchode failed: status {sol.status.unique()}")
    return sol.ys[:, -1, :], sol.stats, field


def solve_torchdiffeq(mu):
    """One shared step size for the whole batch (torchdiffeq mixes all rows into a
    single error norm). Returns (final state (B, 2), field)."""
    field = VdpField(mu)
    t = torch.tensor([T0, T1], dtype=DTYPE)
    ys = torchdiffeq.odeint(field, make_y0(), t, method="dopri5", rtol=RTOL, atol=ATOL)
    return ys[-1], field


# name -> function mu -> final state (B, 2)
SOLVERS = {
    "torchode": lambda mu: solve_torchode(mu)[0],
    "torchdiffeq": lambda mu: solve_torchdiffeq(mu)[0],
}


def loss_of(y_end):
    return (y_end * y_end).sum()


def forward_backward(name):
    mu = make_mu(requires_grad=True)
    y_end = SOLVERS[name](mu)
    loss = loss_of(y_end)
    (grad,) = torch.autograd.grad(loss, mu)
    return y_end.detach(), loss.detach(), grad


# ----------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------
def time_it(fn, n=N_TIMING):
    fn()  # warm-up
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def fwd_only(name):
    mu = make_mu()
    with torch.no_grad():
        SOLVERS[name](mu)


# ----------------------------------------------------------------------------------
# Memory (fresh subprocess per measurement)
# ----------------------------------------------------------------------------------
def rss_now():
    return psutil.Process().memory_info().rss


def vm_hwm_bytes():
    """Kernel-tracked peak RSS (VmHWM) of this process."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not found")


def reset_vm_hwm():
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs).
    Needed because importing torch peaks higher than the RSS it settles at, so a plain
    getrusage() ru_maxrss delta would stay 0. Returns False if not supported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def maxrss_bytes():
    # ru_maxrss is in KiB on Linux; lifetime peak, cannot be reset
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def mem_child(name):
    """Runs inside a fresh subprocess: one forward+backward, report peak RSS delta."""
    # Baseline: interpreter + torch/torchode/torchdiffeq imported, nothing solved yet.
    base_rss = rss_now()
    base_maxrss = maxrss_bytes()
    hwm_ok = reset_vm_hwm()
    peak = [base_rss]
    stop = threading.Event()

    def sampler():
        proc = psutil.Process()
        while not stop.is_set():
            r = proc.memory_info().rss
            if r > peak[0]:
                peak[0] = r
            time.sleep(0.001)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    forward_backward(name)
    stop.set()
    th.join()
    peak[0] = max(peak[0], rss_now())
    print(json.dumps({
        "psutil_peak_delta": peak[0] - base_rss,
        "vmhwm_delta": (vm_hwm_bytes() - base_rss) if hwm_ok else None,
        "maxrss_delta": maxrss_bytes() - base_maxrss,
        "base_rss": base_rss,
        "base_maxrss": base_maxrss,
    }))


def measure_memory(name):
    """Spawn N_MEM_REPEATS fresh interpreters (same CPU affinity as this process)."""
    results = []
    for _ in range(N_MEM_REPEATS):
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--mem-child", name],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        results.append(json.loads(out))
    return results


# ----------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------
def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def pkg_version(mod, dist):
    v = getattr(mod, "__version__", None)
    if v is None and _pkg_version is not None:
        try:
            v = _pkg_version(dist)
        except Exception:
            v = "unknown"
    return v


def mib(b):
    return b / 2**20


def main():
    print("=== Environment ===")
    print(f"python      {platform.python_version()}")
    print(f"torch       {torch.__version__}")
    print(f"torchode    {pkg_version(to, 'torchode')}")
    print(f"torchdiffeq {pkg_version(torchdiffeq, 'torchdiffeq')}")
    print(f"numpy       {np.__version__}")
    print(f"CPU         {cpu_model()}")
    print(f"torch threads {torch.get_num_threads()}, CPU affinity {sorted(os.sched_getaffinity(0))}")
    print(f"B={B}, mu=linspace({MU_MIN},{MU_MAX}), y0=({X0},{V0}), t=[{T0},{T1}], "
          f"dopri5 rtol={RTOL} atol={ATOL}, {DTYPE}")

    # ---------------- 1. torchode per-sample, forward only ----------------
    print("\n=== 1. torchode per-sample step control, forward only (no_grad) ===")
    with torch.no_grad():
        y_to, stats, field_to = solve_torchode(make_mu())
    print("stats keys:", sorted(stats.keys()))
    n_steps = stats["n_steps"].numpy()
    n_acc = stats["n_accepted"].numpy()
    n_rej = n_steps - n_acc
    for key, arr in (("accepted steps / row", n_acc), ("rejected steps / row", n_rej),
                     ("attempted steps / row (n_steps)", n_steps)):
        print(f"{key:34s} max {arr.max():5d}  mean {arr.mean():9.3f}  min {arr.min():5d}")
    for key in sorted(stats.keys()):
        if key in ("n_steps", "n_accepted"):
            continue
        val = stats[key]
        if isinstance(val, torch.Tensor) and val.numel() > 1:
            u = val.unique()
            print(f"stats[{key!r}]: per-row tensor, unique values {u.tolist()[:10]}")
        else:
            print(f"stats[{key!r}]: {val}")
    loop_iters = int(n_steps.max())  # every loop iteration adds 1 to n_steps of running rows
    print(f"solver loop iterations (= max n_steps)         {loop_iters}")
    print(f"vector-field calls (counter, whole batch each) {field_to.n_calls}")
    print(f"  -> row evaluations = calls * B               {field_to.n_calls * B}")
    print(f"  sum over rows of n_steps (attempted steps)   {int(n_steps.sum())}")
    t_med, ts = time_it(lambda: fwd_only("torchode"))
    print(f"wall time median of {N_TIMING}: {t_med*1e3:.2f} ms  (runs: "
          + ", ".join(f"{x*1e3:.1f}" for x in ts) + ")")
    res = {"to_fwd_ms": t_med * 1e3}

    # ---------------- 2. torchdiffeq shared steps ----------------
    print("\n=== 2. torchdiffeq.odeint dopri5, one shared step size, forward only ===")
    with torch.no_grad():
        y_td, field_td = solve_torchdiffeq(make_mu())
    print(f"accepted steps                  {field_td.n_accept}")
    print(f"rejected steps                  {field_td.n_reject}")
    print(f"vector-field calls (counter)    {field_td.n_calls}")
    print(f"  -> row evaluations = calls*B  {field_td.n_calls * B}")
    t_med, ts = time_it(lambda: fwd_only("torchdiffeq"))
    print(f"wall time median of {N_TIMING}: {t_med*1e3:.2f} ms  (runs: "
          + ", ".join(f"{x*1e3:.1f}" for x in ts) + ")")

    # ---------------- 3. gradients ----------------
    print("\n=== 3. d loss / d mu, loss = sum_i x_i(10)^2 + v_i(10)^2, backprop through solver ===")
    grads = {}
    for name in ("torchode", "torchdiffeq"):
        y_end, loss, grad = forward_backward(name)
        grads[name] = (y_end, loss, grad)
        t_med, ts = time_it(lambda: forward_backward(name))
        print(f"[{name}] loss = {loss.item():.12f}")
        print(f"[{name}] fwd+bwd wall time median of {N_TIMING}: {t_med*1e3:.2f} ms  (runs: "
              + ", ".join(f"{x*1e3:.1f}" for x in ts) + ")")
        mem = measure_memory(name)
        ps = [m["psutil_peak_delta"] for m in mem]
        mr = [m["maxrss_delta"] for m in mem]
        print(f"[{name}] peak RSS increase over post-import baseline, {N_MEM_REPEATS} fresh subprocesses:")
        print(f"    psutil 1 ms sampler : median {mib(statistics.median(ps)):.1f} MiB  "
              f"(runs: {', '.join(f'{mib(x):.1f}' for x in ps)})")
        hw = [m["vmhwm_delta"] for m in mem]
        if None not in hw:
            print(f"    VmHWM (reset at baseline via /proc/self/clear_refs): median "
                  f"{mib(statistics.median(hw)):.1f} MiB  (runs: {', '.join(f'{mib(x):.1f}' for x in hw)})")
        print(f"    getrusage maxrss delta (lifetime peak, not resettable): median "
              f"{mib(statistics.median(mr)):.1f} MiB  (runs: {', '.join(f'{mib(x):.1f}' for x in mr)})")
        print(f"    baseline RSS after imports: {mib(mem[0]['base_rss']):.1f} MiB "
              f"(ru_maxrss then: {mib(mem[0]['base_maxrss']):.1f} MiB)")

    # ---------------- 4. sanity ----------------
    print("\n=== 4. Sanity ===")
    dabs = (y_to - y_td).abs().amax(dim=1)
    print(f"max |y_torchode(10) - y_torchdiffeq(10)| (no_grad runs) = {dabs.max().item():.3e}"
          f"  (row {int(dabs.argmax())}; median over rows {dabs.median().item():.3e})")
    # Tight-tolerance reference (shared steps, rtol = atol = 1e-11) to see each solver's error
    with torch.no_grad():
        y_ref = torchdiffeq.odeint(VdpField(make_mu()), make_y0(),
                                   torch.tensor([T0, T1], dtype=DTYPE),
                                   method="dopri5", rtol=1e-11, atol=1e-11)[-1]
    for name, y in (("torchode", y_to), ("torchdiffeq", y_td)):
        e = (y - y_ref).abs().amax(dim=1)
        print(f"max |y_{name}(10) - y_ref(10)| = {e.max().item():.3e} (row {int(e.argmax())}), "
              f"median over rows {e.median().item():.3e}   [ref: dopri5 rtol=atol=1e-11]")
    gd = (grads["torchode"][2] - grads["torchdiffeq"][2]).abs()
    gs = grads["torchdiffeq"][2].abs().max().item()
    print(f"max |grad_torchode - grad_torchdiffeq| = {gd.max().item():.3e}  "
          f"(max |grad| = {gs:.3e})")
    mu = make_mu()
    for name, y in (("torchode", y_to), ("torchdiffeq", y_td)):
        g = grads[name][2]
        for i in SHOW_ROWS:
            print(f"[{name:11s}] row {i:3d} mu={mu[i].item():.6f}  x={y[i,0].item(): .12f}  "
                  f"v={y[i,1].item(): .12f}  dL/dmu={g[i].item(): .12e}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--mem-child":
        mem_child(sys.argv[2])
    else:
        main()
