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
