//! Data-parallel training over MPI (feature `mpi`).
//!
//! Every process (rank) holds the same model and solves its own shard of the batch; after each
//! rank's gradient pass, [`DataParallel::all_reduce`] sums the parameter gradients over the
//! ranks in one all-reduce (every parameter cotangent flattened into one buffer), so every rank
//! applies the same optimiser update and the models stay identical. One training step:
//!
//! ```no_run
//! # use neural_ode_runtime::dfdx::prelude::*;
//! # use neural_ode_runtime::distributed::{mpi, Contribution, DataParallel};
//! # use neural_ode_runtime::SolveOptions;
//! # fn step<M: TensorCollection<f64, Cpu>>(model: &mut M, grads: &mut Gradients<f64, Cpu>) {
//! let universe = mpi::initialize().expect("MPI initialised once");
//! let dp = DataParallel::new(&universe.world());
//! dp.broadcast_params(model).unwrap(); // rank 0's initial parameters everywhere
//! let shard = dp.shard(512); // this rank's rows of a batch of 512
//! let opts = dp.options(SolveOptions::adaptive(1e-6, 1e-8)); // adaptive steps chosen together
//! // ... solve the rows `shard.rows`, loss = (mean over the shard) * shard.weight(), backward()
//! let loss = 0.0;
//! match dp.all_reduce(model, grads, Contribution::loss(loss)) {
//!     Ok(reduced) => { /* optimiser update; reduced.loss is the whole batch's loss */ }
//!     Err(failure) => { /* no rank updates: skip the batch everywhere */ }
//! }
//! # }
//! ```
//!
//! **What makes the sum the whole batch's gradient.** The loss of each shard must be its part
//! of the whole batch's loss: for a mean over the batch, the shard's mean times
//! [`Shard::weight`] (its rows over the batch's). With fixed steps the shards' solves are then
//! those of the whole batch row by row. Adaptive steps judge each step by an error norm over the
//! whole state; [`DataParallel::options`] puts the ranks in one
//! [`BatchGroup`], so that norm is summed over the ranks (three
//! numbers per step attempt) and every rank takes the whole batch's steps. The gradient then
//! equals the one-process gradient of the whole batch up to rounding (the order of the sums
//! over rows differs).
//!
//! **Failures.** A rank whose gradient pass failed (with
//! [`GradientFailure::Report`](crate::GradientFailure::Report), seen through
//! [`Contribution::with_report`]) or whose gradient is not finite still takes part in the
//! all-reduce; every rank then learns which ranks failed and gets the same [`StepFailure`], so no
//! rank updates alone and none waits for another.
//!
//! MPI is used from the thread that created the [`DataParallel`] only (MPI initialised with
//! `Threading::Single` or above); the helper works on a duplicate of the communicator it is
//! given, so its messages never mix with the caller's.

use std::fmt;
use std::thread::{self, ThreadId};

use dfdx::nn::NumParams;
use dfdx::prelude::*;
use dfdx::tensor_ops::Device;

/// The MPI bindings (rsmpi) this module is built against.
pub use mpi;

use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use crate::backend::Backend;
use crate::error::Error;
use crate::group::{BatchGroup, GroupSum};
use crate::options::SolveOptions;
use crate::real::Real;
use crate::stats::{BackwardReport, BackwardStats};

/// A data-parallel training helper over an MPI communicator: shards, parameter broadcast, the
/// gradient all-reduce and the agreement on failures.
pub struct DataParallel {
    comm: SimpleCommunicator,
    rank: usize,
    size: usize,
    group: BatchGroup,
}

impl DataParallel {
    /// A helper over every process of `comm` (usually `universe.world()`), working on its own
    /// duplicate of `comm`. Collective: every rank of `comm` calls it.
    pub fn new<C: Communicator>(comm: &C) -> Self {
        let rank = comm.rank() as usize;
        let size = comm.size() as usize;
        let group = BatchGroup::new(MpiSum {
            comm: comm.duplicate(),
            thread: thread::current().id(),
        });
        DataParallel {
            comm: comm.duplicate(),
            rank,
            size,
            group,
        }
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this is rank 0 (the rank that logs).
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// This rank's rows of a batch of `batch` rows: contiguous, in rank order, the first
    /// `batch % size` ranks one row more than the others. A rank gets no rows when the batch
    /// has fewer rows than there are ranks (an adaptive solve over the group then fails with a
    /// clear error on every rank).
    pub fn shard(&self, batch: usize) -> Shard {
        let (base, extra) = (batch / self.size, batch % self.size);
        let start = self.rank * base + self.rank.min(extra);
        let len = base + usize::from(self.rank < extra);
        Shard {
            rows: start..start + len,
            batch,
        }
    }

    /// The ranks as a [`BatchGroup`]: adaptive solves with it choose their steps together.
    pub fn batch_group(&self) -> BatchGroup {
        self.group.clone()
    }

    /// `opts` for this rank's shard: with [`DataParallel::batch_group`], so adaptive steps are
    /// those of the whole batch.
    pub fn options(&self, opts: SolveOptions) -> SolveOptions {
        opts.with_batch_group(self.batch_group())
    }

    /// Copies rank 0's tensors (parameters and any other tensor of the model) to every rank.
    /// Collective.
    pub fn broadcast_params<M, E, D>(&self, model: &mut M) -> Result<(), Error>
    where
        M: TensorCollection<E, D>,
        E: Real + Equivalence,
        D: Device<E>,
    {
        let mut op = Broadcast { comm: &self.comm };
        M::iter_tensors(&mut RecursiveWalker {
            m: model,
            f: &mut op,
        })
        .map_err(Error::device)?;
        Ok(())
    }

    /// Sums `model`'s parameter gradients in `grads` over the ranks in one all-reduce, with
    /// every rank's `local` loss and outcome. On success every rank's `grads` holds the sum
    /// (the same bits on every rank) and the summed loss is returned. If any rank failed its
    /// gradient pass or has a non-finite parameter gradient, every rank returns the same
    /// [`StepFailure`] and `grads` is left as it was: skip the update everywhere. Collective.
    pub fn all_reduce<M, E, D>(
        &self,
        model: &M,
        grads: &mut Gradients<E, D>,
        local: Contribution,
    ) -> Result<Reduced, StepFailure>
    where
        M: TensorCollection<E, D>,
        E: Real + Equivalence,
        D: Backend<E>,
    {
        // One all-reduce of [every parameter cotangent, loss, failed, non-finite]. Its length
        // comes from the model, not from what this rank could read, so a rank that failed to
        // read its gradients still sends a buffer of the agreed length (zeros): the collective
        // stays in step.
        let params = model.num_trainable_params();
        let mut flat = Vec::with_capacity(params + 3);
        let mut why = local.failure;
        match gather(model, grads, &mut flat) {
            Err(e) => {
                why.get_or_insert_with(|| e.to_string());
            }
            Ok(()) if flat.len() != params => {
                why.get_or_insert_with(|| {
                    format!(
                        "read {} gradient values for {params} parameters",
                        flat.len()
                    )
                });
            }
            Ok(()) => {}
        }
        if why.is_some() {
            flat.clear();
        }
        flat.resize(params, E::zero());
        let non_finite = why.is_none() && !flat.iter().all(|v| v.is_finite());
        flat.push(E::from_f64_lossy(local.loss));
        flat.push(E::from_f64_lossy(if why.is_some() { 1.0 } else { 0.0 }));
        flat.push(E::from_f64_lossy(if non_finite { 1.0 } else { 0.0 }));
        let mut sum = vec![E::zero(); flat.len()];
        self.comm
            .all_reduce_into(&flat[..], &mut sum[..], SystemOperation::sum());
        let flags = |v: E| Into::<f64>::into(v) != 0.0;
        let (failed, not_finite) = (flags(sum[params + 1]), flags(sum[params + 2]));
        if failed || not_finite || why.is_some() {
            return Err(self.failure(why, non_finite));
        }
        let loss: f64 = sum[params].into();
        scatter(model, grads, &sum[..params]).map_err(|e| StepFailure {
            failed: vec![self.rank],
            non_finite: Vec::new(),
            local: Some(format!(
                "writing the summed gradient failed on this rank after the all-reduce (the \
                 ranks' models may now differ): {e}"
            )),
        })?;
        Ok(Reduced { loss })
    }

    /// Which ranks failed, learned by every rank (an all-gather of one code per rank, only on
    /// this path).
    fn failure(&self, why: Option<String>, non_finite: bool) -> StepFailure {
        let code: u8 = match (&why, non_finite) {
            (Some(_), _) => 1,
            (None, true) => 2,
            (None, false) => 0,
        };
        let mut codes = vec![0u8; self.size];
        self.comm.all_gather_into(&code, &mut codes[..]);
        let ranks = |c: u8| {
            codes
                .iter()
                .enumerate()
                .filter(|&(_, &v)| v == c)
                .map(|(r, _)| r)
                .collect()
        };
        StepFailure {
            failed: ranks(1),
            non_finite: ranks(2),
            local: why,
        }
    }

    /// The ranks' gradient-pass statistics combined for logging: counts summed, peaks and the
    /// reconstruction error the largest over the ranks, `non_finite_at` the latest time any
    /// rank reported. Every rank gets the result. Collective.
    pub fn reduce_stats(&self, stats: &BackwardStats) -> BackwardStats {
        let counts = [
            stats.nfe_vjp,
            stats.nfe_rebuild,
            stats.steps,
            stats.rejected,
            stats.recomputed_steps,
        ]
        .map(|c| c as u64);
        let mut summed = [0u64; 5];
        self.comm
            .all_reduce_into(&counts[..], &mut summed[..], SystemOperation::sum());
        // `None` travels as -∞ (and comes back as `None` only if no rank had a value).
        let some = |v: Option<f64>| v.unwrap_or(f64::NEG_INFINITY);
        let peaks = [
            some(stats.non_finite_at),
            some(stats.reconstruction_error),
            some(stats.peak_bytes.map(|b| b as f64)),
            some(stats.solve_peak_bytes.map(|b| b as f64)),
        ];
        let mut largest = [0.0f64; 4];
        self.comm
            .all_reduce_into(&peaks[..], &mut largest[..], SystemOperation::max());
        let back = |v: f64| (v != f64::NEG_INFINITY).then_some(v);
        BackwardStats {
            nfe_vjp: summed[0] as usize,
            nfe_rebuild: summed[1] as usize,
            steps: summed[2] as usize,
            rejected: summed[3] as usize,
            recomputed_steps: summed[4] as usize,
            non_finite_at: back(largest[0]),
            reconstruction_error: back(largest[1]),
            peak_bytes: back(largest[2]).map(|b| b as usize),
            solve_peak_bytes: back(largest[3]).map(|b| b as usize),
        }
    }

    /// The largest of the ranks' `value`s (for example peak memory), on every rank. Collective.
    pub fn max(&self, value: f64) -> f64 {
        let mut out = 0.0;
        self.comm
            .all_reduce_into(&value, &mut out, SystemOperation::max());
        out
    }

    /// The sum of the ranks' `value`s (for example samples processed), on every rank.
    /// Collective.
    pub fn sum(&self, value: f64) -> f64 {
        let mut out = 0.0;
        self.comm
            .all_reduce_into(&value, &mut out, SystemOperation::sum());
        out
    }
}

/// One rank's rows of a batch ([`DataParallel::shard`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// The rows, as indices into the whole batch.
    pub rows: std::ops::Range<usize>,
    /// The whole batch's rows.
    pub batch: usize,
}

impl Shard {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the shard has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// This shard's share of the batch, `len / batch`: a mean over the shard times this is its
    /// part of the mean over the whole batch.
    pub fn weight(&self) -> f64 {
        if self.batch == 0 {
            0.0
        } else {
            self.len() as f64 / self.batch as f64
        }
    }

    /// The shard's rows of `data`, a batch laid out row after row with `row_len` values each.
    ///
    /// # Panics
    /// If `data` does not hold `batch × row_len` values.
    pub fn select<'a, T>(&self, data: &'a [T], row_len: usize) -> &'a [T] {
        assert_eq!(
            data.len(),
            self.batch * row_len,
            "the batch's data must hold batch × row_len values"
        );
        &data[self.rows.start * row_len..self.rows.end * row_len]
    }
}

/// What one rank brings to [`DataParallel::all_reduce`] besides its gradients.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contribution {
    loss: f64,
    failure: Option<String>,
}

impl Contribution {
    /// This rank's part of the loss (summed over the ranks into [`Reduced::loss`]).
    pub fn loss(loss: f64) -> Self {
        Contribution {
            loss,
            failure: None,
        }
    }

    /// Marks this rank failed if the gradient pass behind `report` failed (under
    /// `GradientFailure::Report`) or has not run.
    pub fn with_report(mut self, report: &BackwardReport) -> Self {
        if let Err(e) = report.stats() {
            self.failure.get_or_insert_with(|| e.to_string());
        }
        self
    }

    /// Marks this rank failed, for a reason of the caller's own (a solve that returned an error,
    /// a loss that is not finite).
    pub fn failed(mut self, why: impl fmt::Display) -> Self {
        self.failure.get_or_insert_with(|| why.to_string());
        self
    }
}

/// A successful all-reduce.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reduced {
    /// The sum of the ranks' losses (in the gradients' dtype): the whole batch's loss when each
    /// rank's is its part of it.
    pub loss: f64,
}

/// Why no rank may update: the same on every rank, except [`StepFailure::local`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepFailure {
    /// Ranks whose gradient pass failed.
    pub failed: Vec<usize>,
    /// Ranks with a parameter gradient that is NaN or infinite.
    pub non_finite: Vec<usize>,
    /// This rank's own error, if it failed.
    pub local: Option<String>,
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no rank updates this step:")?;
        if !self.failed.is_empty() {
            write!(f, " the gradient pass failed on ranks {:?};", self.failed)?;
        }
        if !self.non_finite.is_empty() {
            write!(f, " non-finite gradients on ranks {:?};", self.non_finite)?;
        }
        match &self.local {
            Some(why) => write!(f, " here: {why}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for StepFailure {}

/// The MPI sum behind the ranks' [`BatchGroup`].
struct MpiSum {
    comm: SimpleCommunicator,
    thread: ThreadId,
}

// SAFETY: an MPI communicator handle is a process-wide identifier; what MPI forbids (under
// `Threading::Single` or `Funneled`) is calling it from a thread other than the one that
// initialised it, and `sum` checks that it runs on the thread that created the group before
// touching MPI. `Drop` frees the handle only on that thread.
unsafe impl Send for MpiSum {}
// SAFETY: as above; `sum` takes `&self` but makes one blocking MPI call on the creating thread.
unsafe impl Sync for MpiSum {}

impl GroupSum for MpiSum {
    fn sum(&self, values: &mut [f64]) {
        assert_eq!(
            thread::current().id(),
            self.thread,
            "neural_ode::distributed: a solve with the ranks' batch group ran on a thread other \
             than the one that created the DataParallel; MPI is called from that thread only"
        );
        let send = values.to_vec();
        self.comm
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }
}

impl Drop for MpiSum {
    fn drop(&mut self) {
        // Freeing a communicator after MPI_Finalize, or from another thread, is an MPI error:
        // the handle is left to the process's end then.
        if mpi::is_finalized() || thread::current().id() != self.thread {
            let comm = std::mem::replace(&mut self.comm, SimpleCommunicator::self_comm());
            std::mem::forget(comm);
        }
    }
}

/// Appends every trainable tensor's gradient in `grads` (zero where it has none) to `flat`, in
/// the model's visiting order.
fn gather<M, E, D>(model: &M, grads: &mut Gradients<E, D>, flat: &mut Vec<E>) -> Result<(), Error>
where
    M: TensorCollection<E, D>,
    E: Real,
    D: Backend<E>,
{
    let mut op = Gather { grads, flat };
    M::iter_tensors(&mut RecursiveWalker {
        m: model,
        f: &mut op,
    })
    .map_err(Error::device)?;
    Ok(())
}

/// Replaces every trainable tensor's gradient in `grads` by its part of `flat`.
fn scatter<M, E, D>(model: &M, grads: &mut Gradients<E, D>, flat: &[E]) -> Result<(), Error>
where
    M: TensorCollection<E, D>,
    E: Real,
    D: Backend<E>,
{
    model.try_zero_grads(grads).map_err(Error::device)?;
    let mut op = Scatter { grads, flat, at: 0 };
    M::iter_tensors(&mut RecursiveWalker {
        m: model,
        f: &mut op,
    })
    .map_err(Error::device)?;
    Ok(())
}

struct Gather<'a, E: Real, D: Backend<E>> {
    grads: &'a mut Gradients<E, D>,
    flat: &'a mut Vec<E>,
}

impl<E: Real, D: Backend<E>> TensorVisitor<E, D> for Gather<'_, E, D> {
    type Viewer = ViewTensorRef;
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        t: &Tensor<S, E, D>,
    ) -> Result<Option<Tensor<S, E, D>>, D::Err> {
        if opts.do_gradient_update {
            // A parameter the loss did not reach has a zero gradient.
            self.grads.get_or_alloc_mut(t)?;
            self.flat.extend(self.grads.get(t).as_vec());
        }
        Ok(None)
    }
}

struct Scatter<'a, E: Real, D: Backend<E>> {
    grads: &'a mut Gradients<E, D>,
    flat: &'a [E],
    at: usize,
}

impl<E: Real, D: Backend<E>> TensorVisitor<E, D> for Scatter<'_, E, D> {
    type Viewer = ViewTensorRef;
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        t: &Tensor<S, E, D>,
    ) -> Result<Option<Tensor<S, E, D>>, D::Err> {
        if opts.do_gradient_update {
            let len = t.shape().num_elements();
            let part = &self.flat[self.at..self.at + len];
            self.at += len;
            // Added to the gradient `scatter` zeroed: set exactly to the sum.
            let sum = t.device().tensor_from_vec(part.to_vec(), *t.shape());
            D::accumulate(self.grads, t, &sum)?;
        }
        Ok(None)
    }
}

/// Broadcasts every tensor of a model from rank 0.
struct Broadcast<'a> {
    comm: &'a SimpleCommunicator,
}

impl<E: Real + Equivalence, D: Device<E>> TensorVisitor<E, D> for Broadcast<'_> {
    type Viewer = ViewTensorMut;
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        _opts: TensorOptions<S, E, D>,
        t: &mut Tensor<S, E, D>,
    ) -> Result<Option<Tensor<S, E, D>>, D::Err> {
        let mut values = t.as_vec();
        self.comm.process_at_rank(0).broadcast_into(&mut values[..]);
        t.copy_from(&values);
        Ok(None)
    }
}
