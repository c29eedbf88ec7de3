//! The forward loop shared by every gradient method: one path for every accepted step, whether
//! its size came from adaptive control or a fixed grid. Each accepted step is recorded in the
//! step grid and (as the gradient method asked) in the state store, and the outputs it passes
//! are placed or interpolated.

use dfdx::prelude::*;

use super::outputs::Outputs;
use super::scheme::{Plain, ReversiblePair, Scheme};
use super::{Grid, Record};
use crate::backend::Backend;
use crate::controller::adaptive::{initial_step, Adaptive, Limits};
use crate::controller::constant::{self, Constant};
use crate::controller::{all_finite, ErrorNorm, StepControl, StepSizeController};
use crate::error::Error;
use crate::field::VectorField;
use crate::options::{SolveOptions, Stepping};
use crate::real::Real;
use crate::rk::{RungeKutta, Workspace};
use crate::shape::StateShape;
use crate::stats::ForwardStats;
use crate::store::{CheckpointPolicy, Keep, StateStore};

/// Checks the output times and returns `t_end - t_0`'s direction (+1 or -1; +1 for one time).
pub(crate) fn check_times<E: Real>(times: &[E]) -> Result<f64, Error> {
    let first = *times.first().ok_or(Error::EmptyTimes)?;
    for (index, t) in times.iter().enumerate() {
        if !t.is_finite() {
            return Err(Error::NonFiniteTime {
                index,
                value: (*t).into(),
            });
        }
    }
    let dir = match times.get(1) {
        Some(&second) if second < first => -1.0,
        _ => 1.0,
    };
    for (index, w) in times.windows(2).enumerate() {
        let (previous, value): (f64, f64) = (w[0].into(), w[1].into());
        if (value - previous) * dir <= 0.0 {
            return Err(Error::TimesNotMonotonic {
                index: index + 1,
                previous,
                value,
            });
        }
    }
    Ok(dir)
}

fn shape_string<S: Shape>(s: &S) -> String {
    format!("{:?}", s.concrete())
}

/// Evaluates `f(t, x)` without a tape and checks the result's shape.
fn eval_checked<S, E, D, F>(f: &F, t: E, x: &Tensor<S, E, D>) -> Result<Tensor<S, E, D>, Error>
where
    S: StateShape,
    E: Real,
    D: Backend<E>,
    F: VectorField<S, E, D> + ?Sized,
{
    let k = f.eval(t, x.clone());
    if k.shape().concrete() != x.shape().concrete() {
        return Err(Error::ShapeMismatch {
            expected: shape_string(x.shape()),
            found: shape_string(k.shape()),
        });
    }
    Ok(k.contiguous())
}

/// What a solve starts from once its inputs are checked.
struct Begin<'t, S: Shape, E: Real, D: Backend<E>> {
    /// `t_end - t_0`'s direction.
    dir: f64,
    /// The initial state, contiguous.
    x0: Tensor<S, E, D>,
    /// Whether every output time is a step boundary (else only the last).
    land: bool,
    /// The times steps land on.
    targets: &'t [E],
    /// `t_end - t_0`.
    span: f64,
    /// The fixed-step grid, when steps are fixed.
    constant: Option<Constant<E>>,
    /// The state store, holding the initial state.
    store: StateStore<S, E, D>,
}

/// Checks the options, the output times and the initial state, and starts the state store.
fn begin<'t, S, E, D>(
    x0: &Tensor<S, E, D>,
    times: &'t [E],
    opts: &SolveOptions,
    controller: &dyn StepSizeController,
    keep: Keep,
    (coupling, grouped): (Option<f64>, bool),
) -> Result<Begin<'t, S, E, D>, Error>
where
    S: StateShape,
    E: Real,
    D: Backend<E>,
{
    opts.validate_for::<E>()?;
    controller.validate()?;
    let dir = check_times(times)?;
    // The loop reads states as plain buffers; a strided or broadcast initial state is laid out
    // first (free when it already is contiguous).
    let x0 = x0.clone().contiguous();
    let t0 = times[0];
    let t_end = times[times.len() - 1];
    // Landing on every output time, or only on the last. (The reversible scheme's steps are
    // not those of the tableau, so its interpolant does not apply inside them.)
    let land = opts.land_on_outputs || coupling.is_some();
    let targets = if land {
        &times[1..]
    } else {
        &times[times.len() - 1..]
    };
    let span: f64 = (t_end - t0).into();
    // Fixed steps: the grid is known before solving.
    let constant = opts.stepping.fixed_step(span).map(|h_max| {
        Constant::new(if times.len() < 2 {
            Vec::new()
        } else {
            constant::runs(t0, targets, h_max)
        })
    });
    let known = constant.as_ref().and_then(StepControl::known_steps);
    if let Some(steps) = known.filter(|&n| n > opts.max_steps) {
        return Err(Error::TooManySteps {
            steps,
            max_steps: opts.max_steps,
        });
    }
    let mut host = Vec::new();
    if !all_finite(&x0, &mut host) {
        let index = host.iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(Error::NonFiniteInitialState {
            index,
            value: host.get(index).map_or(f64::NAN, |&v| v.into()),
        });
    }
    // Every part of a split batch takes part in every shared norm, so none may be empty.
    if grouped && x0.shape().num_elements() == 0 && times.len() > 1 {
        return Err(Error::InvalidOption {
            name: "batch_group",
            value: 0.0,
            reason: "this process's part of the split batch is empty; every process needs rows",
        });
    }
    let mut store = StateStore::new(opts.checkpoints, keep);
    if store.start(&x0, known).is_none() {
        if let CheckpointPolicy::Budget(budget) = opts.checkpoints {
            return Err(Error::CheckpointBudgetTooSmall {
                budget,
                slot_bytes: StateStore::<S, E, D>::slot_bytes(&x0),
            });
        }
    }
    Ok(Begin {
        dir,
        x0,
        land,
        targets,
        span,
        constant,
        store,
    })
}

/// Integrates from `times[0]` through every output time, keeping in the state store what
/// `keep` says the gradient pass reads. Adaptive steps are proposed by `controller`. With a
/// `coupling`, the steps are those of the reversible scheme on the tableau, landing on every
/// output time.
pub(crate) fn integrate<R, S, E, D, F>(
    f: &F,
    x0: &Tensor<S, E, D>,
    times: &[E],
    opts: &SolveOptions,
    controller: &mut dyn StepSizeController,
    keep: Keep,
    coupling: Option<f64>,
) -> Result<Record<S, E, D>, Error>
where
    R: RungeKutta,
    S: StateShape,
    E: Real,
    D: Backend<E>,
    F: VectorField<S, E, D> + ?Sized,
{
    // A batch split across processes chooses adaptive steps together; everything that could
    // fail in one part before the first shared norm is agreed on first.
    let group = match opts.stepping {
        Stepping::Adaptive { .. } => opts.batch_group.as_ref(),
        _ => None,
    };
    let begin = begin(
        x0,
        times,
        opts,
        controller,
        keep,
        (coupling, group.is_some()),
    );
    if let Some(group) = group {
        group.agree(begin.as_ref().map(|_| ()).map_err(Clone::clone))?;
    }
    let Begin {
        dir,
        x0,
        land,
        targets,
        span,
        constant,
        mut store,
    } = begin?;
    let x0 = &x0;
    let t0 = times[0];
    let mut stats = ForwardStats::default();
    let mut outs = Outputs::new(times, dir, x0);
    // An empty state (an empty batch, a zero-sized shape) has nothing to integrate: every output
    // is the empty state, and the field is not evaluated (layers need not handle zero rows). A
    // single output time is the initial state.
    if x0.shape().num_elements() == 0 || times.len() == 1 {
        outs.all_initial();
        return Ok(Record {
            outputs: outs.values,
            out_at: outs.at,
            grid: Grid::new(t0).into(),
            store,
            reversible: coupling.map(|c| (c, x0.clone())),
            rows: None,
            end: None,
            stats,
        });
    }

    let f0 = eval_checked(f, t0, x0)?;
    stats.nfe += 1;
    // Adaptive steps need the method's embedded pair, and start from Hairer's first step
    // (one more evaluation) unless given one.
    let adaptive = match opts.stepping {
        Stepping::Adaptive { rtol, atol } => {
            let embedded = match (R::B_ERR, R::EMBEDDED_ORDER) {
                (Some(_), Some(q)) => q,
                _ => return Err(Error::NotAdaptive { solver: R::NAME }),
            };
            let norm = ErrorNorm::new((rtol, atol), group.cloned());
            let h0 = match opts.first_step {
                Some(h) => h,
                None => {
                    stats.nfe += 1;
                    let order = R::ORDER.min(embedded);
                    initial_step(f, t0, x0, &f0, order, &norm, span)
                }
            };
            Some((norm, embedded, h0))
        }
        _ => None,
    };
    let mut grid = Grid::new(t0);
    let mut forward = Loop {
        f,
        x: x0.clone(),
        t: t0,
        k1: Some(f0),
        grid: &mut grid,
        store: &mut store,
        outs: &mut outs,
        stats: &mut stats,
        // Buffers reused by every step of this solve: stage states and error estimate; stage
        // derivatives recorded when outputs are interpolated inside steps.
        ws: Workspace::new(),
    };
    forward.ws.keep_stages(keep == Keep::Stages);
    forward.ws.record_derivatives(!land && times.len() > 2);
    let mut pair = coupling.map(|c| ReversiblePair::new(c, x0));
    match (adaptive, constant) {
        (Some((norm, embedded, h0)), _) => {
            let limits = Limits {
                max_steps: opts.max_steps,
                min_step: opts.min_step,
            };
            let mut control = Adaptive::new(controller, limits, dir, embedded + 1, h0, Some(norm));
            forward.drive::<R, _>(&mut control, pair.as_mut(), targets)?;
        }
        (None, Some(mut control)) => {
            for &run in control.runs() {
                forward.grid.run(run);
            }
            forward.drive::<R, _>(&mut control, pair.as_mut(), targets)?;
        }
        (None, None) => return Err(Error::internal("fixed steps without a grid")),
    }
    drop(forward);
    let reversible = pair.map(ReversiblePair::finish);
    stats.checkpoint_bytes = store.bytes()
        + if keep.replays_grid() { grid.bytes() } else { 0 }
        + reversible
            .as_ref()
            .map_or(0, |(_, z)| StateStore::<S, E, D>::state_bytes(z));
    Ok(Record {
        outputs: outs.values,
        out_at: outs.at,
        grid: grid.into(),
        store,
        reversible,
        rows: None,
        end: None,
        stats,
    })
}

/// The state of the forward loop.
struct Loop<'a, 'o, S: Shape, E: Real, D: Backend<E>, F: ?Sized> {
    f: &'a F,
    x: Tensor<S, E, D>,
    t: E,
    /// `f(t, x)` when already known (the first evaluation, FSAL, a rejected step's).
    k1: Option<Tensor<S, E, D>>,
    grid: &'a mut Grid<E>,
    store: &'a mut StateStore<S, E, D>,
    outs: &'a mut Outputs<'o, S, E, D>,
    stats: &'a mut ForwardStats,
    ws: Workspace<S, E, D>,
}

impl<S, E, D, F> Loop<'_, '_, S, E, D, F>
where
    S: StateShape,
    E: Real,
    D: Backend<E>,
    F: VectorField<S, E, D> + ?Sized,
{
    /// Steps through `targets` in turn with the reversible scheme's steps when given `pair`,
    /// else the tableau's own.
    fn drive<R: RungeKutta, C: StepControl<E>>(
        &mut self,
        control: &mut C,
        pair: Option<&mut ReversiblePair<S, E, D>>,
        targets: &[E],
    ) -> Result<(), Error> {
        match pair {
            Some(pair) => self.run::<R, _, _>(control, pair, targets),
            None => self.run::<R, _, _>(control, &mut Plain, targets),
        }
    }

    /// Steps through `targets` in turn with `scheme`'s steps, as `control` proposes and judges.
    fn run<R: RungeKutta, C: StepControl<E>, Sc: Scheme<S, E, D>>(
        &mut self,
        control: &mut C,
        scheme: &mut Sc,
        targets: &[E],
    ) -> Result<(), Error> {
        for &target in targets {
            while let Some(attempt) = control.attempt(self.t, target)? {
                let (t, h) = (self.t, attempt.h);
                let k1 = self.k1.take();
                let span = (t, h, attempt.end);
                let step = scheme.step::<R, F>(self.f, span, &self.x, k1, &mut self.ws);
                let ks = self.ws.take_derivatives();
                self.stats.nfe += step.evals;
                if !control.judge(t, &attempt, (&self.x, &step.y, step.err.as_ref()))? {
                    self.ws.discard_kept();
                    self.k1 = Some(step.k1);
                    continue;
                }
                // The one accept path.
                scheme.accept();
                self.store.push(&self.x, self.ws.take_kept());
                self.grid.accept(t, h, attempt.end);
                let n = self.grid.len() - 1;
                self.k1 = if R::FSAL { step.k_last } else { None };
                let handed = self.outs.after_step::<R, _>(
                    self.f,
                    (t, h, attempt.end, n),
                    (&self.x, &step.y),
                    ks,
                    self.stats,
                );
                if self.k1.is_none() {
                    self.k1 = handed;
                }
                self.x = step.y;
                self.t = attempt.end;
            }
        }
        (self.stats.accepted, self.stats.rejected) = control.counts();
        Ok(())
    }
}
