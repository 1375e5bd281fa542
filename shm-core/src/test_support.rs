//! What the unit tests share: the mock segment most of them use and its
//! offsets, opening it, and the deadlines they wait with.

use core::time::Duration;

use crate::error::{ChannelName, ClaimError, OpenError, Role};
use crate::format::mailbox::slot_offset;
use crate::format::queue as qu;
use crate::format::AREAS_OFFSET;
use crate::mock::{MockRegion, ThreadWait};
use crate::{Layout, Segment};

pub(crate) const SHORT: Duration = Duration::from_millis(20);
pub(crate) const LONG: Duration = Duration::from_secs(20);

/// A queue "q" (channel 0, 1024-byte ring) and a mailbox "m" (channel 1,
/// 2 slots of 64 bytes).
pub(crate) fn layout() -> Layout {
    Layout::new().queue("q", 1024).unwrap().mailbox("m", 2, 64).unwrap()
}

pub(crate) const Q: usize = AREAS_OFFSET; // queue area
pub(crate) const RING: usize = Q + qu::RING;
pub(crate) const M: usize = RING + 1024; // mailbox area
pub(crate) const SLOT0: usize = M + slot_offset(0, 64);
pub(crate) const SLOT1: usize = M + slot_offset(1, 64);

pub(crate) fn busy(channel: &str, role: Role, holder: u32) -> ClaimError {
    ClaimError::Busy { channel: ChannelName::new(channel), role, holder }
}

/// A segment of [`layout`], created.
pub(crate) fn fresh() -> MockRegion {
    let memory = MockRegion::new(layout().size());
    Segment::create(memory.region(), &layout(), 1, 0).unwrap();
    memory
}

pub(crate) fn open(memory: &MockRegion) -> Result<Segment<'_>, OpenError> {
    Segment::open(memory.region(), &ThreadWait::new(9), Duration::ZERO)
}

/// [`ThreadWait`] that runs `on_wake` each time it is asked to wake a
/// sleeper: a hook into the middle of a protocol step (a close's scan
/// wakes each client it fails).
pub(crate) struct OnWake<F: Fn()> {
    pub(crate) inner: ThreadWait,
    pub(crate) on_wake: F,
}

impl<F: Fn()> crate::Wait for OnWake<F> {
    type Deadline = crate::wait::HostDeadline;
    fn deadline(&self, timeout: Option<Duration>) -> Self::Deadline {
        self.inner.deadline(timeout)
    }
    fn expired(&self, deadline: &mut Self::Deadline) -> bool {
        self.inner.expired(deadline)
    }
    fn park(&self, word: &crate::AtomicU32, expected: u32, deadline: &mut Self::Deadline) {
        self.inner.park(word, expected, deadline)
    }
    fn wake(&self, word: &crate::AtomicU32, count: u32) {
        (self.on_wake)();
        self.inner.wake(word, count)
    }
    fn spin_limit(&self) -> u32 {
        self.inner.spin_limit()
    }
    fn self_id(&self) -> u32 {
        self.inner.self_id()
    }
    fn is_alive(&self, id: u32) -> bool {
        self.inner.is_alive(id)
    }
}
