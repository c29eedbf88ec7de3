//! Output times per sample: a `(rows, len)` array, checked once.

use crate::error::Error;
use crate::real::Real;

/// Output times per sample: row `i` holds the times of sample `i` (row `i` of the batch), its
/// first time the sample's initial time. Every row has the same number of times; a shorter
/// sequence is padded by repeating its last time ([`SampleTimes::ragged`] does it), and a padded
/// output equals the sample's last one. Each row is monotonic in its own direction of
/// integration (forward or backward; repeated times allowed) and finite.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleTimes<E> {
    rows: usize,
    len: usize,
    times: Vec<E>,
    observed: Vec<usize>,
}

impl<E: Real> SampleTimes<E> {
    /// `rows` rows of `times.len() / rows` times each, row after row.
    pub fn new(rows: usize, times: Vec<E>) -> Result<Self, Error> {
        if rows == 0 || times.is_empty() || !times.len().is_multiple_of(rows) {
            return Err(Error::InvalidOption {
                name: "sample times",
                value: times.len() as f64,
                reason: "expected rows × times entries, at least one time per row",
            });
        }
        let len = times.len() / rows;
        let mut observed = vec![len; rows];
        for (i, row) in times.chunks(len).enumerate() {
            check_row(row).map_err(|error| Error::InSample {
                row: i,
                error: Box::new(error),
            })?;
            // Trailing repeats of the last time are padding.
            let last = row[len - 1];
            observed[i] = len - row.iter().rev().take_while(|&&t| t == last).count() + 1;
        }
        Ok(SampleTimes {
            rows,
            len,
            times,
            observed,
        })
    }

    /// The same times for each of `rows` rows.
    pub fn shared(rows: usize, times: &[E]) -> Result<Self, Error> {
        Self::new(rows, times.repeat(rows))
    }

    /// One row per sequence, of any lengths (at least one time each): shorter rows are padded
    /// to the longest by repeating their last time. [`SampleTimes::observed`] gives each row's
    /// own length back, to mask a loss.
    pub fn ragged<R: AsRef<[E]>>(sequences: &[R]) -> Result<Self, Error> {
        let len = sequences
            .iter()
            .map(|s| s.as_ref().len())
            .max()
            .unwrap_or(0);
        let mut times = Vec::with_capacity(len * sequences.len());
        for (i, s) in sequences.iter().enumerate() {
            let s = s.as_ref();
            let last = *s.last().ok_or_else(|| Error::InSample {
                row: i,
                error: Box::new(Error::EmptyTimes),
            })?;
            times.extend_from_slice(s);
            times.resize(times.len() + len - s.len(), last);
        }
        let mut out = Self::new(sequences.len(), times)?;
        for (i, s) in sequences.iter().enumerate() {
            out.observed[i] = s.as_ref().len();
        }
        Ok(out)
    }

    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of times per row (padding included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no times (never: a row has at least its initial time).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The times of row `i`.
    ///
    /// # Panics
    /// If `i` is not a row.
    pub fn row(&self, i: usize) -> &[E] {
        &self.times[i * self.len..(i + 1) * self.len]
    }

    /// How many of row `i`'s times are its own, not padding: the length given to
    /// [`SampleTimes::ragged`], else up to the first of the trailing repeats of its last time.
    pub fn observed(&self, i: usize) -> usize {
        self.observed[i]
    }
}

/// A row's times: finite and monotonic in the direction of its first change.
fn check_row<E: Real>(row: &[E]) -> Result<(), Error> {
    for (index, t) in row.iter().enumerate() {
        if !t.is_finite() {
            return Err(Error::NonFiniteTime {
                index,
                value: (*t).into(),
            });
        }
    }
    let dir =
        row.windows(2)
            .find(|w| w[0] != w[1])
            .map_or(1.0, |w| if w[1] < w[0] { -1.0 } else { 1.0 });
    for (index, w) in row.windows(2).enumerate() {
        let (previous, value): (f64, f64) = (w[0].into(), w[1].into());
        if (value - previous) * dir < 0.0 {
            return Err(Error::TimesNotMonotonic {
                index: index + 1,
                previous,
                value,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_checked_and_padding_is_counted() {
        let t =
            SampleTimes::ragged(&[vec![0.0, 0.5, 1.0], vec![0.0, 2.0], vec![1.0, 0.0]]).unwrap();
        assert_eq!((t.rows(), t.len()), (3, 3));
        assert_eq!(t.row(1), &[0.0, 2.0, 2.0]);
        assert_eq!(t.row(2), &[1.0, 0.0, 0.0]);
        assert_eq!((0..3).map(|i| t.observed(i)).collect::<Vec<_>>(), [3, 2, 2]);
        let padded = SampleTimes::new(2, vec![0.0, 1.0, 1.0, 0.0, 0.5, 0.7]).unwrap();
        assert_eq!((padded.observed(0), padded.observed(1)), (2, 3));
        let err = SampleTimes::new(2, vec![0.0, 1.0, 2.0, 1.0, 0.5, 2.0]).unwrap_err();
        assert!(matches!(
            err,
            Error::InSample { row: 1, ref error } if matches!(**error, Error::TimesNotMonotonic { index: 2, .. })
        ));
        assert!(SampleTimes::new(2, vec![0.0, 1.0, f64::NAN, 1.0]).is_err());
        assert!(SampleTimes::new(2, vec![0.0, 1.0, 2.0]).is_err());
        assert!(SampleTimes::<f64>::ragged(&[vec![0.0], vec![]]).is_err());
    }
}
