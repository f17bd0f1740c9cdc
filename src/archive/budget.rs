//! The memory budget that entry decoders and archive opens share, and the cap on any one
//! decoder's dictionary or window.
//!
//! Compressed formats say in their headers how much memory the decoder must allocate (an
//! LZMA dictionary, a zstd window): up to 4 GiB for a few hundred bytes of input. Two limits
//! keep that bounded:
//!
//! - `zip.max_decoder_memory` caps one decoder's dictionary or window; an entry asking for
//!   more is refused (501) before its decoder allocates anything.
//! - `zip.memory_budget` is the total that decoders and archive opens may hold at once. Each
//!   takes a [`Reservation`] of its estimate before it allocates and holds it as long as the
//!   memory lives (a decoder: the whole response body). When the budget is spent the
//!   request is refused at once with 503 + `Retry-After`; nothing ever waits for memory, so
//!   a burst of bombs cannot queue up work either.
//!
//! Invariant: the estimate a decoder reserves is also the limit its own decoder is built
//! with (liblzma's memlimit, zstd's `WindowLogMax`), so a later header in the same stream
//! cannot make it use more than it reserved.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::Metrics;

/// The budget is counted in KiB so that a `u32` permit count covers up to 4 TiB.
const UNIT: u64 = 1024;

/// The `rejected_total{limit=...}` label of a refusal.
pub const REJECTED_LABEL: &str = "memory_budget";

/// The budget was spent: answer 503 and let the client retry.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("memory budget spent: {wanted} bytes wanted")]
pub struct BudgetSpent {
    pub wanted: u64,
}

pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    total_units: u32,
    /// `zip.max_decoder_memory`: the largest dictionary or window one decoder may use.
    pub decoder_cap: u64,
    metrics: Arc<Metrics>,
}

/// Memory held against the budget; returned when dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    pub bytes: u64,
}

impl MemoryBudget {
    pub fn new(total: u64, decoder_cap: u64, metrics: Arc<Metrics>) -> Self {
        let total_units = u32::try_from(total / UNIT).unwrap_or(u32::MAX).max(1);
        Self {
            permits: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            decoder_cap,
            metrics,
        }
    }

    /// Reserve `bytes` now, or refuse at once (counted in `rejected_total`). A reservation
    /// larger than the whole budget is clamped to it: it runs only when nothing else holds
    /// any, instead of being refused forever with a 503 that invites retries.
    pub fn try_reserve(&self, bytes: u64) -> Result<Reservation, BudgetSpent> {
        let units = u32::try_from(bytes.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_units);
        match Arc::clone(&self.permits).try_acquire_many_owned(units) {
            Ok(permit) => Ok(Reservation {
                _permit: permit,
                bytes,
            }),
            Err(_) => {
                self.metrics
                    .rejected
                    .with_label_values(&[REJECTED_LABEL])
                    .inc();
                Err(BudgetSpent { wanted: bytes })
            }
        }
    }

    /// Bytes of the budget not reserved now (metrics, tests).
    pub fn available(&self) -> u64 {
        self.permits.available_permits() as u64 * UNIT
    }
}

/// Sizes in messages: `4 GiB`, `1.5 MiB`, `900 KiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, name) in UNITS {
        if bytes >= size {
            let tenths = (bytes as u128 * 10 + size as u128 / 2) / size as u128;
            return if tenths.is_multiple_of(10) {
                format!("{} {name}", tenths / 10)
            } else {
                format!("{}.{} {name}", tenths / 10, tenths % 10)
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(u32::MAX as u64), "4 GiB");
        assert_eq!(human(64 << 20), "64 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
        assert_eq!(human(900_000), "878.9 KiB");
        assert_eq!(human(12), "12 bytes");
    }

    #[test]
    fn a_spent_budget_refuses_at_once_and_is_returned_on_drop() {
        let metrics = Arc::new(Metrics::new());
        let budget = MemoryBudget::new(10 << 20, 8 << 20, Arc::clone(&metrics));
        let first = budget.try_reserve(6 << 20).expect("fits");
        assert!(budget.try_reserve(6 << 20).is_err(), "over the budget");
        assert_eq!(
            metrics.rejected.with_label_values(&[REJECTED_LABEL]).get(),
            1
        );
        drop(first);
        assert_eq!(budget.available(), 10 << 20);
        // Larger than the whole budget: runs alone instead of never.
        let huge = budget.try_reserve(1 << 40).expect("clamped to the budget");
        assert!(budget.try_reserve(1).is_err());
        drop(huge);
        assert!(budget.try_reserve(1).is_ok());
    }
}
