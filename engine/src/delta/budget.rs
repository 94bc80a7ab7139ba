//! The one memory gate of static deltas: a [`Budget`] of memory that decompressing and
//! applying parts (async, in MiB units) and storing a part's objects (blocking worker
//! threads, in bytes) take shares of and give back, the sizes these budgets have, and a
//! [`Gauge`] of how many decoders hold shares at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::PullError;

/// Memory, in MiB, that decoding and applying parts may hold at once (beyond a few MiB
/// of buffers), by default: the xz dictionaries of the parts decoding (each decoder is
/// charged the dictionary its part's header names, or its payload when that is smaller),
/// the parts being applied ([`APPLY_MIB`] each) and the read sources their objects are
/// being made from, each object's charged while it is stored. A holder larger than the
/// budget runs alone. [`ENV_MEMORY_BUDGET`] changes it.
///
/// At 38, one 32 MiB decoder of ostree's default chunks runs beside the parts being
/// applied, whose objects' read sources take up to the 4 MiB left (bspatching the
/// files of a Debian update takes a few hundred kB at a time). With the pages of the
/// binary and libraries a pull maps (about 20 MB) and its runtime, the peak RSS of the
/// large benchmark fixture's update stays within 64 MB (61-62 MB; at 40, 61-67 MB).
pub const MEMORY_BUDGET_MIB: u64 = 38;

/// Environment variable that sets the delta memory budget in MiB (at least 16, at most
/// 65536). Each xz stream of an ostree delta part is a single block, decoded by one
/// thread with a dictionary as large as the part (32 MiB for ostree's default chunks):
/// a budget of 96 lets two decompress at once on two cores, for about 45 MB more peak
/// memory; more than 38 lets more of the objects of the parts being applied meanwhile
/// hold their read sources.
pub const ENV_MEMORY_BUDGET: &str = "CFSYNC_DELTA_MEMORY_MIB";

/// The delta memory budget in MiB: [`ENV_MEMORY_BUDGET`] when set to a number, else
/// [`MEMORY_BUDGET_MIB`].
pub fn memory_budget_mib() -> u64 {
    budget_from(std::env::var(ENV_MEMORY_BUDGET).ok().as_deref())
}

/// The budget a value of [`ENV_MEMORY_BUDGET`] asks for (the default when it is unset
/// or not a number), within 16..=65536 MiB.
fn budget_from(value: Option<&str>) -> u64 {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(MEMORY_BUDGET_MIB, |m| m.clamp(16, 65536))
}

/// What applying a part holds beside its objects' read sources (which each object's
/// worker takes from the budget while it stores it): its tables, operations and object
/// list (a few kB per hundred objects in ostree's deltas; at most
/// [`super::MAX_TABLES_AND_OPS`] and [`super::MAX_SEGMENTS`] runs from a hostile one)
/// and its workers' buffers; the payload itself stays in its file.
pub const APPLY_MIB: u64 = 1;

/// One MiB.
pub(crate) const MIB: u64 = 1024 * 1024;

/// The unit the delta memory budget is counted in: an object's read sources are often
/// a few kB, and are charged in these.
pub(crate) const UNIT: u64 = 64 * 1024;

/// A memory budget counted in units of `unit` bytes: holders take their share (rounded
/// up to whole units, at most the whole budget less its reserve: a larger holder runs
/// alone; nothing for zero bytes) and give it back by dropping the [`Share`]. Shares are
/// granted in the order they are asked for.
///
/// The reserve is what holders that wait for others while they hold may keep at most
/// together (parts being applied wait for their objects' shares): since no share asks
/// for more than the rest, every share is granted once the holders that wait for
/// nothing (decoders, objects being stored) give theirs back.
#[derive(Debug)]
pub(crate) struct Budget {
    units: Arc<Semaphore>,
    /// Units in the whole budget.
    total: u64,
    /// Units no single share may take.
    reserve: u64,
    /// Bytes per unit.
    unit: u64,
}

/// A share of a [`Budget`], given back when dropped.
pub(crate) type Share = OwnedSemaphorePermit;

impl Budget {
    /// A budget of `total` units of `unit` bytes each.
    pub(crate) fn new(total: u64, unit: u64) -> Self {
        let total = total.clamp(1, u64::from(u32::MAX));
        Self {
            units: Arc::new(Semaphore::new(
                usize::try_from(total).unwrap_or(Semaphore::MAX_PERMITS),
            )),
            total,
            reserve: 0,
            unit: unit.max(1),
        }
    }

    /// The delta memory budget: `mib` MiB counted in [`UNIT`]s, `reserve` bytes of it
    /// kept for the holders that wait while they hold (see [`Budget`]).
    pub(crate) fn of_mib(mib: u64, reserve: u64) -> Self {
        let mut b = Self::new(mib.saturating_mul(MIB / UNIT), UNIT);
        b.reserve = reserve.div_ceil(b.unit).min(b.total.saturating_sub(1));
        b
    }

    /// Units (rounded up, at most the budget less its reserve) for `bytes` of memory.
    fn units_for(&self, bytes: u64) -> u32 {
        let n = bytes
            .div_ceil(self.unit)
            .min(self.total.saturating_sub(self.reserve));
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Waits for the share of `bytes`.
    pub(crate) async fn take(&self, bytes: u64) -> Result<Share, PullError> {
        Arc::clone(&self.units)
            .acquire_many_owned(self.units_for(bytes))
            .await
            .map_err(|e| PullError::Internal(format!("delta memory budget: {e}")))
    }

    /// Whether a share of `bytes` would be granted now (no one else waiting first).
    pub(crate) fn has_room(&self, bytes: u64) -> bool {
        self.units.available_permits() as u64 >= u64::from(self.units_for(bytes))
    }

    /// Waits for the share of `bytes`, blocking the thread (for plain worker threads).
    pub(crate) fn take_blocking(&self, bytes: u64) -> Result<Share, PullError> {
        futures::executor::block_on(self.take(bytes))
    }
}

/// How many holders of some kind (part decoders) are at work now, and the most there
/// have been at once: what a pull reports, and tests assert, about its concurrency.
#[derive(Debug, Default)]
pub(crate) struct Gauge {
    now: AtomicUsize,
    peak: AtomicUsize,
}

/// One holder counted in a [`Gauge`] until dropped.
#[derive(Debug)]
pub(crate) struct Counted(Arc<Gauge>);

impl Gauge {
    /// Counts one more holder until the returned guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> Counted {
        let now = self.now.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        self.peak.fetch_max(now, Ordering::AcqRel);
        Counted(Arc::clone(self))
    }

    /// The most holders there have been at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_budget_is_read_within_bounds() {
        assert_eq!(budget_from(None), MEMORY_BUDGET_MIB);
        assert_eq!(budget_from(Some("96")), 96);
        assert_eq!(budget_from(Some(" 96\n")), 96);
        assert_eq!(budget_from(Some("1")), 16);
        assert_eq!(budget_from(Some("99999999")), 65536);
        assert_eq!(budget_from(Some("lots")), MEMORY_BUDGET_MIB);
    }

    #[test]
    fn a_share_is_whole_units_and_at_most_the_whole_budget() {
        let mib = |total| Budget::new(total, MIB);
        let table = [
            (mib(48), 0, 0),
            (mib(48), 1, 1),
            (mib(48), 32 * MIB, 32),
            (mib(48), 32 * MIB + 1, 33),
            (mib(48), u64::MAX, 48),
            (mib(96), u64::MAX, 96),
            (Budget::of_mib(40, 0), 1, 1),
            (Budget::of_mib(40, 0), 12 * 1024, 1),
            (Budget::of_mib(40, 0), 32 * MIB, 512),
            (Budget::of_mib(40, 0), u64::MAX, 640),
            (Budget::of_mib(40, 2 * MIB), u64::MAX, 608),
            (Budget::of_mib(40, 2 * MIB + 1), u64::MAX, 607),
        ];
        for (budget, bytes, want) in table {
            assert_eq!(budget.units_for(bytes), want, "{budget:?} {bytes}");
        }
    }

    #[test]
    fn no_share_waits_for_the_reserve() {
        let mut b = Budget::new(10, 1);
        b.reserve = 2;
        // Two parts being applied hold the reserve, waiting for their objects.
        let parts = (b.take_blocking(1).unwrap(), b.take_blocking(1).unwrap());
        // A decoder or object larger than the budget asks for all but the reserve, so
        // it is granted while the parts hold theirs (the whole budget never would be).
        let big = b.take_blocking(100).unwrap();
        assert_eq!(b.units.available_permits(), 0);
        drop(big);
        let small = b.take_blocking(3).unwrap();
        assert_eq!(b.units.available_permits(), 5);
        drop((small, parts));
        assert_eq!(b.units.available_permits(), 10);
    }

    #[test]
    fn shares_wait_for_each_other_and_come_back() {
        let b = Budget::new(4, 1);
        let a = b.take_blocking(3).unwrap();
        assert_eq!(b.units.available_permits(), 1);
        // Larger than the budget: takes all of it, once the rest is back.
        drop(a);
        let all = b.take_blocking(100).unwrap();
        assert_eq!(b.units.available_permits(), 0);
        // Zero bytes take nothing, even from an exhausted budget.
        let none = b.take_blocking(0).unwrap();
        drop((all, none));
        assert_eq!(b.units.available_permits(), 4);
        assert!(b.has_room(4) && b.has_room(100));
        let three = b.take_blocking(3).unwrap();
        assert!(b.has_room(1) && !b.has_room(2));
        drop(three);
    }

    #[test]
    fn a_gauge_keeps_its_peak() {
        let g = Arc::new(Gauge::default());
        let a = g.enter();
        let b = g.enter();
        drop(a);
        let c = g.enter();
        drop((b, c));
        let d = g.enter();
        assert_eq!(g.peak(), 2);
        drop(d);
    }
}
