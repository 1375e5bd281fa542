//! The builder that declares a segment's channels. The bytes it lays out
//! are described in [`crate::format`].
//!
//! ```
//! use shm_core::Layout;
//!
//! let layout = Layout::new()
//!     .mailbox("rpc", 4, 256).unwrap()   // 4 slots of 256 bytes
//!     .queue("events", 4096).unwrap()    // a 4 KiB byte ring
//!     .semaphore("ready", 0).unwrap();
//! assert_eq!(layout.size() % 64, 0);
//! ```

use crate::error::LayoutError;
use crate::format::table::{channel_size, ChannelInfo, ChannelParams, ChannelTable};
use crate::format::{align_line, AREAS_OFFSET, CACHE_LINE, MAX_CHANNELS, MAX_NAME};

/// A segment's declared channels: what a creator builds and an opener may
/// expect. Computes the exact size the segment needs.
///
/// Channels are laid out in declaration order; two programs that declare the
/// same channels in the same order get the same [`Layout::hash`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    channels: ChannelTable,
    end: u64,
}

impl Default for Layout {
    fn default() -> Self {
        Self::new()
    }
}

impl Layout {
    /// A layout with no channels.
    pub const fn new() -> Self {
        Self { channels: ChannelTable::new(), end: AREAS_OFFSET as u64 }
    }

    /// Adds a request/response mailbox of `slots` slots, each carrying up to
    /// `slot_size` bytes of request or response.
    pub fn mailbox(self, name: &str, slots: u32, slot_size: u32) -> Result<Self, LayoutError> {
        self.push(name, ChannelParams::Mailbox { slots, slot_size })
    }

    /// Adds a single-producer single-consumer queue over a ring of
    /// `capacity` bytes (a power of two from 64 to 1 GiB). Its largest
    /// message is [`crate::queue::max_message`]`(capacity)`.
    pub fn queue(self, name: &str, capacity: u32) -> Result<Self, LayoutError> {
        self.push(name, ChannelParams::Queue { capacity })
    }

    /// Adds a direct mailbox: up to `slots` clients connected at once (1
    /// to 64), each keeping its own slot of `slot_size` payload bytes (1 to
    /// 2^28), for the shortest round trip (see [`crate::direct`]). Needs
    /// format 2.2 on every side.
    ///
    /// ```
    /// use shm_core::Layout;
    ///
    /// let layout = Layout::new().direct("rpc", 4, 256).unwrap();
    /// assert!(Layout::new().direct("rpc", 65, 256).is_err());
    /// ```
    pub fn direct(self, name: &str, slots: u32, slot_size: u32) -> Result<Self, LayoutError> {
        self.push(name, ChannelParams::Direct { slots, slot_size })
    }

    /// Adds a broadcast channel: one publisher, up to `subscribers` (1 to
    /// 64) subscribers, over a ring of `capacity` bytes (a power of two
    /// from 64 to 1 GiB; the largest message is
    /// [`crate::broadcast::max_message`]`(capacity)`), with `policy` for a
    /// subscriber a ring behind. Needs format 2.1 on every side.
    ///
    /// ```
    /// use shm_core::{broadcast::Policy, Layout};
    ///
    /// let layout = Layout::new().broadcast("prices", 1 << 16, 8, Policy::Overwrite).unwrap();
    /// assert!(Layout::new().broadcast("x", 1024, 65, Policy::Block).is_err());
    /// # let _ = layout;
    /// ```
    pub fn broadcast(
        self,
        name: &str,
        capacity: u32,
        subscribers: u32,
        policy: crate::broadcast::Policy,
    ) -> Result<Self, LayoutError> {
        self.push(name, ChannelParams::Broadcast { capacity, subscribers, policy })
    }

    /// Adds a counting semaphore starting at `initial`.
    pub fn semaphore(self, name: &str, initial: u32) -> Result<Self, LayoutError> {
        self.push(name, ChannelParams::Semaphore { initial_count: initial })
    }

    fn push(mut self, name: &str, params: ChannelParams) -> Result<Self, LayoutError> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_NAME || bytes.contains(&0) {
            return Err(LayoutError::BadName { len: bytes.len() });
        }
        if self.channels.is_full() {
            return Err(LayoutError::TooManyChannels { max: MAX_CHANNELS });
        }
        if self.channels.find(bytes).is_some() {
            return Err(LayoutError::DuplicateName);
        }
        let params = ChannelParams::from_words(params.kind(), params.words()).map_err(|(_, e)| e)?;
        let size = channel_size(&params);
        let end = self.end + align_line(size);
        if end > u32::MAX as u64 - CACHE_LINE as u64 {
            return Err(LayoutError::TooLarge);
        }
        let mut stored = [0u8; 32];
        stored[..bytes.len()].copy_from_slice(bytes);
        self.channels.push(ChannelInfo::new(params, self.end as u32, size as u32, stored))?;
        self.end = end;
        Ok(self)
    }

    /// The declared channels, in table order.
    pub fn channels(&self) -> impl Iterator<Item = &ChannelInfo> {
        self.channels.as_slice().iter()
    }

    /// Exact bytes the segment needs (a multiple of 64).
    pub fn size(&self) -> usize {
        self.end as usize
    }

    /// The layout hash a segment of this layout records.
    pub fn hash(&self) -> u64 {
        self.channels.hash(self.end as u32)
    }

    /// The declared channels, as a segment of this layout records them.
    pub(crate) fn table(&self) -> &ChannelTable {
        &self.channels
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::table::ChannelKind;

    #[test]
    fn declaring_channels_computes_offsets_and_size() {
        let l = Layout::new().queue("q", 1024).unwrap().mailbox("m", 2, 100).unwrap();
        let c: [&ChannelInfo; 2] = [l.channels().next().unwrap(), l.channels().nth(1).unwrap()];
        assert_eq!(c[0].offset as usize, AREAS_OFFSET);
        assert_eq!(c[0].size as usize, crate::format::queue::RING + 1024);
        assert_eq!(c[1].offset as u64, AREAS_OFFSET as u64 + align_line(c[0].size as u64));
        assert_eq!(c[1].size as u64, channel_size(&ChannelParams::Mailbox { slots: 2, slot_size: 100 }));
        assert_eq!(c[1].params(), ChannelParams::Mailbox { slots: 2, slot_size: 100 });
        assert_eq!(c[1].kind, ChannelKind::Mailbox);
        assert_eq!(l.size() as u64, c[1].offset as u64 + align_line(c[1].size as u64));
    }

    #[test]
    fn bad_declarations_are_refused_with_the_reason() {
        assert_eq!(Layout::new().queue("", 64), Err(LayoutError::BadName { len: 0 }));
        assert_eq!(Layout::new().queue(&"x".repeat(32), 64), Err(LayoutError::BadName { len: 32 }));
        assert!(Layout::new().queue(&"x".repeat(31), 64).is_ok());
        assert_eq!(Layout::new().queue("a\0b", 64), Err(LayoutError::BadName { len: 3 }));
        assert_eq!(Layout::new().queue("q", 0), Err(LayoutError::BadCapacity { given: 0, min: 64, max: 1 << 30 }));
        assert_eq!(Layout::new().queue("q", 100), Err(LayoutError::BadCapacity { given: 100, min: 64, max: 1 << 30 }));
        assert_eq!(
            Layout::new().queue("q", 1 << 31),
            Err(LayoutError::BadCapacity { given: 1 << 31, min: 64, max: 1 << 30 })
        );
        assert_eq!(Layout::new().mailbox("m", 0, 8), Err(LayoutError::BadCapacity { given: 0, min: 1, max: 64 }));
        assert_eq!(Layout::new().mailbox("m", 65, 8), Err(LayoutError::BadCapacity { given: 65, min: 1, max: 64 }));
        assert_eq!(Layout::new().mailbox("m", 1, 0), Err(LayoutError::BadCapacity { given: 0, min: 1, max: 1 << 28 }));
        assert_eq!(Layout::new().queue("q", 64).unwrap().semaphore("q", 0), Err(LayoutError::DuplicateName));
        let mut l = Layout::new();
        for i in 0..MAX_CHANNELS {
            l = l.semaphore(&format!("s{i}"), 0).unwrap();
        }
        assert_eq!(l.semaphore("one-more", 0), Err(LayoutError::TooManyChannels { max: 16 }));
        let big = Layout::new().queue("a", 1 << 30).unwrap().queue("b", 1 << 30).unwrap().queue("c", 1 << 30).unwrap();
        assert_eq!(big.queue("d", 1 << 30), Err(LayoutError::TooLarge));
    }

    #[test]
    fn hash_depends_on_geometry_and_names() {
        let a = Layout::new().queue("q", 1024).unwrap();
        let b = Layout::new().queue("q", 2048).unwrap();
        let c = Layout::new().queue("r", 1024).unwrap();
        assert_ne!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
        assert_eq!(a.hash(), Layout::new().queue("q", 1024).unwrap().hash());
    }
}
