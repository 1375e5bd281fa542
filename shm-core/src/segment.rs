//! Creating and opening a segment: the handshake and the validation.
//!
//! ```
//! use core::time::Duration;
//! use shm_core::format::header;
//! use shm_core::mock::{MockRegion, ThreadWait};
//! use shm_core::{Layout, Segment, OpenError};
//!
//! let layout = Layout::new().queue("q", 256).unwrap();
//! let memory = MockRegion::new(layout.size());
//! let created = Segment::create(memory.region(), &layout, 7, 0).unwrap();
//! let opened = Segment::open(memory.region(), &ThreadWait::new(8), Duration::from_millis(10)).unwrap();
//! assert_eq!(opened.channels(), created.channels());
//!
//! memory.write_u32(header::MAGIC_LO, 0xdead_beef); // a hostile peer scribbles on the magic
//! let err = Segment::open(memory.region(), &ThreadWait::new(8), Duration::ZERO).unwrap_err();
//! assert_eq!(err, OpenError::BadMagic);
//! ```
//!
//! # Design
//!
//! The creator stores its id, then the magic, then INITIALIZING (so a file
//! is recognisably ours from its first visible state on, and a foreign file
//! never is by chance), writes every word, then publishes READY
//! with a Release store; an opener polls (within its budget) for READY with
//! an Acquire load, then checks everything it will later rely on, in this
//! order: magic, endianness, major version, recorded size against the region,
//! channel count, each table entry (kind, name, offset, parameters, size,
//! no overlap), and last the layout hash. The checked geometry is copied into
//! the `Segment`; channel handles only ever use that copy, never the table
//! again.

use core::time::Duration;

use crate::broadcast::{BroadcastView, Publisher, Subscriber};
use crate::error::{ChannelName, ClaimError, CreateError, OpenError};
use crate::format::header::{self, flags, state, Header};
use crate::format::queue::QueueControl;
use crate::format::semaphore::SemaphoreWords;
use crate::format::table::{
    channel_size, ChannelInfo, ChannelKind, ChannelParams, ChannelTable, Descriptor, ENTRY_SIZE, NAME_BYTES,
};
use crate::format::{self, align_line, AREAS_OFFSET, MAX_CHANNELS, TABLE_OFFSET};
use crate::layout::Layout;
use crate::queue::{Consumer, Producer, QueueView};
use crate::region::Region;
use crate::sync::{fence, spin_hint, AtomicU32, Ordering};
use crate::wait::Wait;
use crate::Corruption;

#[cfg(shm_cas)]
use crate::format::mailbox::MailboxControl;
#[cfg(shm_cas)]
use crate::mailbox::{Client, MailboxView, Server};
#[cfg(shm_cas)]
use crate::semaphore::CountingSemaphore;

/// What the header says, for inspection tools (read once, not validated
/// beyond what [`Segment::open`] checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SegmentInfo {
    /// Format version (major, minor).
    pub version: (u16, u16),
    /// Total size in bytes.
    pub size: u32,
    /// The state word now.
    pub state: u32,
    /// The generation this handle opened.
    pub generation: u32,
    /// Creator id (PID on Linux).
    pub creator: u32,
    /// Creator's session id.
    pub session: u32,
    /// When the creator started (adapter-defined; 0 if not recorded).
    pub creator_start: u32,
    /// Where the segment's ids are meaningful (adapter-defined; 0 if not
    /// recorded).
    pub creator_domain: u32,
    /// The layout hash.
    pub layout_hash: u64,
}

/// Who creates a segment, as recorded in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Creator {
    /// The creator's id (a PID, a core number); not 0.
    pub id: u32,
    /// Tells a restarted creator from its previous life.
    pub session: u32,
    /// When the creator started, adapter-defined; 0 if unknown. With it a
    /// recycled id is told from the creator.
    pub start: u32,
    /// Where the segment's ids are meaningful (on Linux, a PID namespace),
    /// adapter-defined; 0 if unknown.
    pub domain: u32,
}

/// What the first words of a region say, before any validation: enough to
/// tell whose it is and whether its creator finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Peek {
    /// The magic number is this library's. A creator writes it before
    /// anything else is visible (after only the `creator` word), so a
    /// segment whose creator died half-way still carries it, and a file
    /// without it is never one of ours, whatever its other bytes say.
    pub ours: bool,
    /// The `state` word.
    pub state: u32,
    /// The `creator` word (meaningful when `ours`: a creator stores it
    /// before the magic, so whoever sees the magic sees it too; 0 means no
    /// creator is recorded).
    pub creator: u32,
    /// The `creator_start` word (format 1.1; 0 if not recorded), written
    /// before the magic like `creator`.
    pub creator_start: u32,
    /// The `creator_domain` word (format 1.1; 0 if not recorded), written
    /// before the magic like `creator`.
    pub creator_domain: u32,
}

impl Peek {
    /// Reads the identity words from a copy of a header (as `pread` gives
    /// it: no mapping, so a file truncated meanwhile cannot fault).
    ///
    /// ```
    /// use shm_core::format::header::{self, state};
    /// use shm_core::Peek;
    ///
    /// // A foreign file whose state word happens to read INITIALIZING.
    /// let mut bytes = [0u8; header::SIZE];
    /// bytes[header::STATE..][..4].copy_from_slice(&state::INITIALIZING.to_ne_bytes());
    /// assert!(!Peek::from_header(&bytes).ours);
    /// ```
    pub fn from_header(bytes: &[u8; header::SIZE]) -> Self {
        let word = |offset| header::word(bytes, offset);
        Self {
            ours: word(header::MAGIC_LO) == format::MAGIC_LO && word(header::MAGIC_HI) == format::MAGIC_HI,
            state: word(header::STATE),
            creator: word(header::CREATOR),
            creator_start: word(header::CREATOR_START),
            creator_domain: word(header::CREATOR_DOMAIN),
        }
    }
}

/// Reads the identity words of `region` without validating anything.
/// `None` if the region is smaller than a header.
pub fn peek(region: &Region<'_>) -> Option<Peek> {
    if region.len() < header::SIZE {
        return None;
    }
    let h = header(region);
    // SYNC POINT: Acquire pairs with the creator's Release stores of the
    // magic in `create` (after which its `creator` store is visible).
    let magic = h.magic_lo.load(Ordering::Acquire) == format::MAGIC_LO
        && h.magic_hi.load(Ordering::Acquire) == format::MAGIC_HI;
    // SYNC POINT: Acquire pairs with the Release store of READY in `create`.
    let st = h.state.load(Ordering::Acquire);
    let load = |w: &AtomicU32| w.load(Ordering::Relaxed);
    Some(Peek {
        ours: magic,
        state: st,
        creator: load(&h.creator),
        creator_start: load(&h.creator_start),
        creator_domain: load(&h.creator_domain),
    })
}

/// An initialized, validated segment over a [`Region`].
#[derive(Debug)]
pub struct Segment<'r> {
    region: Region<'r>,
    generation: u32,
    geometry: Geometry,
}

/// What [`validate`] checked at open (or `create` wrote): the geometry
/// channel handles use, never the table in the segment again.
#[derive(Debug)]
struct Geometry {
    /// The segment's size in bytes.
    size: u32,
    /// The layout hash.
    layout_hash: u64,
    channels: ChannelTable,
}

impl<'r> Segment<'r> {
    fn header(&self) -> &Header {
        header(&self.region)
    }

    /// Initializes `region` as a segment of `layout` and publishes it READY.
    ///
    /// `creator` is recorded for liveness checks (a PID, a core number);
    /// `session` tells a restarted creator from its previous life. The
    /// generation word is bumped, so handles to a previous incarnation of
    /// the same memory see that it was re-initialized.
    pub fn create(region: Region<'r>, layout: &Layout, creator: u32, session: u32) -> Result<Self, CreateError> {
        Self::create_as(region, layout, &Creator { id: creator, session, start: 0, domain: 0 })
    }

    /// As [`create`](Self::create), recording the creator's full identity
    /// (see [`Creator`]).
    pub fn create_as(region: Region<'r>, layout: &Layout, creator: &Creator) -> Result<Self, CreateError> {
        let (session, needed) = (creator.session, layout.size());
        if region.len() < needed.max(header::SIZE) {
            return Err(CreateError::RegionTooSmall { needed, actual: region.len() });
        }
        let h = header(&region);
        // The creator first, then the magic, then INITIALIZING: a creator
        // that dies mid-way is identifiable (magic) and blamable (creator),
        // and a file without the magic is never taken for one of ours (see
        // `Peek::ours`). The magic is the same constant in every life of a
        // region, so re-writing it over a READY segment changes nothing an
        // opener could see.
        h.creator.store(creator.id, Ordering::Relaxed);
        h.creator_start.store(creator.start, Ordering::Relaxed);
        h.creator_domain.store(creator.domain, Ordering::Relaxed);
        // SYNC POINT: Release pairs with the Acquire loads of the magic in
        // `peek`: whoever sees the magic sees `creator` too.
        h.magic_lo.store(format::MAGIC_LO, Ordering::Release);
        h.magic_hi.store(format::MAGIC_HI, Ordering::Release);
        h.state.store(state::INITIALIZING, Ordering::Relaxed);
        // SYNC POINT: pairs with the Acquire fence in `open`: a reader that
        // sees any of the writes below also sees INITIALIZING on its re-check.
        fence(Ordering::Release);
        let generation = h.generation.load(Ordering::Relaxed).wrapping_add(1);
        for off in (header::SIZE..needed).step_by(4) {
            // SAFETY: `off + 4 <= needed <= region.len()`, 4-aligned.
            unsafe { region.at::<AtomicU32>(off) }.store(0, Ordering::Relaxed);
        }
        let channels = *layout.table();
        for (i, c) in channels.as_slice().iter().enumerate() {
            write_descriptor(descriptor(&region, i), c);
            if let ChannelParams::Semaphore { initial_count } = c.params() {
                // SAFETY: the area lies inside `needed` bytes (Layout computed
                // it) and starts on a 64-byte line.
                unsafe { region.at::<SemaphoreWords>(c.offset as usize) }.count.store(initial_count, Ordering::Relaxed);
            }
        }
        crate::crash::point("segment.initializing");
        let hash = layout.hash();
        let store = |w: &AtomicU32, v| w.store(v, Ordering::Relaxed);
        store(&h.version, format::VERSION);
        store(&h.endian, format::ENDIAN_MARK);
        store(&h.layout_hash_lo, hash as u32);
        store(&h.layout_hash_hi, (hash >> 32) as u32);
        store(&h.total_size, needed as u32);
        store(&h.channel_count, channels.as_slice().len() as u32);
        store(&h.generation, generation);
        store(&h.session, session);
        store(&h.flags, LOCAL_FLAGS);
        for r in &h.reserved {
            store(r, 0);
        }
        // SYNC POINT: Release pairs with the Acquire load of `state` in
        // `open`: everything above is visible to whoever sees READY.
        h.state.store(state::READY, Ordering::Release);
        Ok(Self { region, generation, geometry: Geometry { size: needed as u32, layout_hash: hash, channels } })
    }

    /// Opens the segment in `region`, polling at most `timeout` for its
    /// creator to publish READY, then validating it (see the module docs).
    pub fn open<W: Wait>(region: Region<'r>, wait: &W, timeout: Duration) -> Result<Self, OpenError> {
        if region.len() < header::SIZE {
            return Err(OpenError::TooSmall { len: region.len() });
        }
        let h = header(&region);
        let mut deadline = wait.deadline(Some(timeout));
        loop {
            // SYNC POINT: Acquire pairs with the Release store of READY in
            // `create`.
            match h.state.load(Ordering::Acquire) {
                state::READY => break,
                state::POISONED => return Err(OpenError::Poisoned),
                state::EMPTY | state::INITIALIZING => {
                    if wait.expired(&mut deadline) {
                        return Err(OpenError::NotReady);
                    }
                    spin_hint();
                }
                _ => {
                    check_identity(h)?;
                    return Err(OpenError::Corrupted(Corruption::header("state")));
                }
            }
        }
        let generation = h.generation.load(Ordering::Relaxed);
        let checked = validate(&region, h);
        // SYNC POINT: pairs with the Release fence in `create`: if a
        // re-initialization started while we read, the re-check sees it, and
        // whatever we found (good or bad) was a segment being rewritten.
        fence(Ordering::Acquire);
        if h.state.load(Ordering::Relaxed) != state::READY || h.generation.load(Ordering::Relaxed) != generation {
            return Err(OpenError::NotReady);
        }
        Ok(Self { region, generation, geometry: checked? })
    }

    /// As [`open`](Self::open), and the segment must have `layout`'s
    /// geometry ([`OpenError::LayoutMismatch`] otherwise).
    pub fn open_expecting<W: Wait>(
        region: Region<'r>,
        layout: &Layout,
        wait: &W,
        timeout: Duration,
    ) -> Result<Self, OpenError> {
        let seg = Self::open(region, wait, timeout)?;
        let found = seg.info().layout_hash;
        if found != layout.hash() {
            return Err(OpenError::LayoutMismatch { expected: layout.hash(), found });
        }
        Ok(seg)
    }

    /// The channels, as validated at open.
    pub fn channels(&self) -> &[ChannelInfo] {
        self.geometry.channels.as_slice()
    }

    /// Offsets from the segment base of every word a waiter of any channel
    /// may sleep on ([`ChannelInfo::wait_words`]), for adapters that keep a
    /// kernel object per word.
    pub fn wait_words(&self) -> impl Iterator<Item = usize> + '_ {
        self.channels().iter().flat_map(ChannelInfo::wait_words)
    }

    /// The region this segment lives in.
    pub fn region(&self) -> &Region<'r> {
        &self.region
    }

    /// The header's fields.
    pub fn info(&self) -> SegmentInfo {
        let h = self.header();
        let load = |w: &AtomicU32| w.load(Ordering::Relaxed);
        SegmentInfo {
            version: format::split_version(load(&h.version)),
            size: self.geometry.size,
            state: load(&h.state),
            generation: self.generation,
            creator: load(&h.creator),
            session: load(&h.session),
            creator_start: load(&h.creator_start),
            creator_domain: load(&h.creator_domain),
            layout_hash: self.geometry.layout_hash,
        }
    }

    /// Whether the segment is still READY and has not been re-initialized
    /// since this handle was made.
    ///
    /// A `true` answer also vouches for the header fields written after
    /// INITIALIZING that were read before the call ([`info`](Self::info):
    /// `session`, `version`, `generation`, the size, count and layout hash):
    /// they belong to the generation this handle opened, not to a
    /// re-creation that began after [`open`]'s own check (which an opener
    /// that looks at `info` after opening must rule out: `info` then
    /// `is_current`). It does not vouch for `creator`, `creator_start` and
    /// `creator_domain`, which a re-creation writes before INITIALIZING:
    /// match on `session` too, as shm-baremetal's attach does.
    ///
    /// [`open`]: Self::open
    pub fn is_current(&self) -> bool {
        let h = self.header();
        // SYNC POINT: pairs with the Release fence after INITIALIZING in
        // `create`: if a field read before this call came from a
        // re-creation, the loads below see INITIALIZING or its new
        // generation.
        fence(Ordering::Acquire);
        // SYNC POINT: Acquire pairs with the Release store of READY (in
        // `create`) or POISONED (in `poison`).
        h.state.load(Ordering::Acquire) == state::READY && h.generation.load(Ordering::Relaxed) == self.generation
    }

    /// The generation this handle opened (bumped by every re-creation).
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Marks the segment unusable; later opens fail with
    /// [`OpenError::Poisoned`].
    pub fn poison(&self) {
        // SYNC POINT: Release pairs with the Acquire load of `state` in `open`.
        self.header().state.store(state::POISONED, Ordering::Release);
    }

    #[doc(hidden)]
    /// The channel named `name` of kind `kind`, with its table index.
    pub fn find(&self, name: &str, kind: ChannelKind) -> Result<(u8, &ChannelInfo), ClaimError> {
        let found = self.geometry.channels.find(name.as_bytes());
        let (i, c) = found.ok_or_else(|| ClaimError::NotFound { channel: ChannelName::new(name) })?;
        if c.kind != kind {
            return Err(ClaimError::WrongKind { channel: ChannelName::new(name), expected: kind, found: c.kind });
        }
        Ok((i as u8, c))
    }

    #[doc(hidden)]
    /// The queue named `name`.
    pub fn queue_view(&self, name: &str) -> Result<QueueView<'_>, ClaimError> {
        let (i, c) = self.find(name, ChannelKind::Queue)?;
        let ChannelParams::Queue { capacity } = c.params() else {
            return Err(ClaimError::WrongKind {
                channel: ChannelName::new(name),
                expected: ChannelKind::Queue,
                found: c.kind,
            });
        };
        let ring = c.offset as usize + format::queue::RING;
        // SAFETY: `open`/`create` checked the area (`queue::RING` + capacity
        // bytes at a 64-aligned offset) lies inside the segment, which lies
        // inside the region; the capacity is a checked power of two.
        Ok(unsafe {
            let ctl = self.region.at::<QueueControl>(c.offset as usize);
            QueueView::new(ctl, self.region.ptr(ring), capacity, i)
        })
    }

    #[doc(hidden)]
    /// The broadcast channel named `name`.
    pub fn broadcast_view(&self, name: &str) -> Result<BroadcastView<'_>, ClaimError> {
        use crate::format::broadcast::{ring_offset, BroadcastControl, SubscriberControl, SUBSCRIBERS};
        let (i, c) = self.find(name, ChannelKind::Broadcast)?;
        let ChannelParams::Broadcast { capacity, subscribers, policy } = c.params() else {
            return Err(ClaimError::WrongKind {
                channel: ChannelName::new(name),
                expected: ChannelKind::Broadcast,
                found: c.kind,
            });
        };
        let base = c.offset as usize;
        // SAFETY: `open`/`create` checked the area (`ring_offset(subscribers)`
        // + capacity bytes at a 64-aligned offset) lies inside the segment,
        // which lies inside the region; `subscribers` (1 to 64) and the
        // capacity (a power of two) were checked by `ChannelParams`; the
        // subscriber lines are 64-byte structs of atomics.
        Ok(unsafe {
            let ctl = self.region.at::<BroadcastControl>(base);
            let first = self.region.ptr(base + SUBSCRIBERS).cast::<SubscriberControl>();
            let subs = core::slice::from_raw_parts(first.as_ptr(), subscribers as usize);
            BroadcastView::new(ctl, subs, self.region.ptr(base + ring_offset(subscribers)), capacity, policy, i)
        })
    }

    /// Claims the publisher role of broadcast channel `name`.
    pub fn publisher<W: Wait>(&self, name: &str, wait: W) -> Result<Publisher<'_, W>, ClaimError> {
        Publisher::claim(self.broadcast_view(name)?, wait).map_err(|e| e.in_channel(name))
    }

    /// Joins broadcast channel `name` as a subscriber, at its newest
    /// message.
    pub fn subscriber<W: Wait>(&self, name: &str, wait: W) -> Result<Subscriber<'_, W>, ClaimError> {
        Subscriber::join(self.broadcast_view(name)?, wait).map_err(|e| e.in_channel(name))
    }

    /// Claims the producer role of queue `name`.
    pub fn producer<W: Wait>(&self, name: &str, wait: W) -> Result<Producer<'_, W>, ClaimError> {
        Producer::claim(self.queue_view(name)?, wait).map_err(|e| e.in_channel(name))
    }

    /// Claims the consumer role of queue `name`.
    pub fn consumer<W: Wait>(&self, name: &str, wait: W) -> Result<Consumer<'_, W>, ClaimError> {
        Consumer::claim(self.queue_view(name)?, wait).map_err(|e| e.in_channel(name))
    }

    #[doc(hidden)]
    /// The mailbox named `name`.
    #[cfg(shm_cas)]
    pub fn mailbox_view(&self, name: &str) -> Result<MailboxView<'_>, ClaimError> {
        self.slots_view(name, ChannelKind::Mailbox)
    }

    #[doc(hidden)]
    /// Where direct mailbox `name`'s words and slots are.
    #[cfg(shm_cas)]
    pub fn direct_view(&self, name: &str) -> Result<MailboxView<'_>, ClaimError> {
        self.slots_view(name, ChannelKind::Direct)
    }

    /// Claims the server role of direct mailbox `name` (see
    /// [`crate::direct`]).
    #[cfg(shm_cas)]
    pub fn direct_server<W: Wait>(&self, name: &str, wait: W) -> Result<crate::direct::Server<'_, W>, ClaimError> {
        crate::direct::Server::claim(self.direct_view(name)?, wait).map_err(|e| e.in_channel(name))
    }

    /// Connects to direct mailbox `name` as a client, taking one of its
    /// slots; [`ClaimError::Busy`] when every slot has a client (see
    /// [`crate::direct`]).
    #[cfg(shm_cas)]
    pub fn direct_client<W: Wait>(&self, name: &str, wait: W) -> Result<crate::direct::Client<'_, W>, ClaimError> {
        crate::direct::Client::connect(self.direct_view(name)?, wait).map_err(|e| e.in_channel(name))
    }

    /// [`direct_client`](Self::direct_client), waiting at most `timeout`
    /// for a slot to come free.
    #[cfg(shm_cas)]
    pub fn direct_client_timeout<W: Wait>(
        &self,
        name: &str,
        wait: W,
        timeout: core::time::Duration,
    ) -> Result<crate::direct::Client<'_, W>, ClaimError> {
        crate::direct::Client::connect_timeout(self.direct_view(name)?, wait, timeout).map_err(|e| e.in_channel(name))
    }

    /// The area of a mailbox-shaped channel (a mailbox or a direct mailbox).
    #[cfg(shm_cas)]
    fn slots_view(&self, name: &str, kind: ChannelKind) -> Result<MailboxView<'_>, ClaimError> {
        use crate::format::mailbox::{slot_stride, SLOTS, SLOT_PAYLOAD};
        let (i, c) = self.find(name, kind)?;
        let (ChannelParams::Mailbox { slots, slot_size } | ChannelParams::Direct { slots, slot_size }) = c.params()
        else {
            return Err(ClaimError::WrongKind { channel: ChannelName::new(name), expected: kind, found: c.kind });
        };
        let stride = slot_stride(slot_size) as usize;
        // SAFETY: `open`/`create` checked the area (`mailbox::SLOTS` + slots
        // * stride bytes at a 64-aligned offset) lies inside the segment.
        unsafe {
            let ctl = self.region.at::<MailboxControl>(c.offset as usize);
            let first = self.region.ptr(c.offset as usize + SLOTS);
            Ok(MailboxView::new(ctl, first, stride, SLOT_PAYLOAD, slots, slot_size, i))
        }
    }

    /// Claims the server role of mailbox `name`.
    #[cfg(shm_cas)]
    pub fn server<W: Wait>(&self, name: &str, wait: W) -> Result<Server<'_, W>, ClaimError> {
        Server::claim(self.mailbox_view(name)?, wait).map_err(|e| e.in_channel(name))
    }

    /// A client of mailbox `name`.
    #[cfg(shm_cas)]
    pub fn client<W: Wait>(&self, name: &str, wait: W) -> Result<Client<'_, W>, ClaimError> {
        Ok(Client::new(self.mailbox_view(name)?, wait))
    }

    #[doc(hidden)]
    /// The words of semaphore `name`.
    #[cfg(shm_cas)]
    pub fn semaphore_words(&self, name: &str) -> Result<&SemaphoreWords, ClaimError> {
        let (_, c) = self.find(name, ChannelKind::Semaphore)?;
        // SAFETY: the 64-byte area at a checked offset lies in the segment.
        Ok(unsafe { self.region.at::<SemaphoreWords>(c.offset as usize) })
    }

    /// Semaphore `name`, blocking through `wait`.
    #[cfg(shm_cas)]
    pub fn semaphore<W: Wait>(&self, name: &str, wait: W) -> Result<CountingSemaphore<'_, W>, ClaimError> {
        Ok(CountingSemaphore::new(self.semaphore_words(name)?, wait))
    }
}

fn header<'a>(region: &'a Region<'_>) -> &'a Header {
    // SAFETY: callers checked `region.len() >= header::SIZE`; offset 0 of a
    // 64-aligned region is aligned; `Header` is all atomics.
    unsafe { region.at::<Header>(0) }
}

fn descriptor<'a>(region: &'a Region<'_>, i: usize) -> &'a Descriptor {
    // SAFETY: callers checked `i < MAX_CHANNELS` and that the region holds
    // at least AREAS_OFFSET bytes (the whole table); `Descriptor` is all
    // atomics and 4-aligned offsets are aligned for it.
    unsafe { region.at::<Descriptor>(TABLE_OFFSET + i * ENTRY_SIZE) }
}

/// Checks a READY header and table (see the module docs for the order);
/// returns the geometry they describe.
/// This build's `flags` bits: [`flags::LOCKED_ATOMICS`] where control words
/// are emulated under a lock.
const LOCAL_FLAGS: u32 = if crate::sync::LOCKED { flags::LOCKED_ATOMICS } else { 0 };

fn validate(region: &Region<'_>, h: &Header) -> Result<Geometry, OpenError> {
    check_identity(h)?;
    let load = |w: &AtomicU32| w.load(Ordering::Relaxed);
    let segment_locked = load(&h.flags) & flags::LOCKED_ATOMICS != 0;
    if segment_locked != (LOCAL_FLAGS & flags::LOCKED_ATOMICS != 0) {
        return Err(OpenError::AtomicsMismatch { segment_locked });
    }
    let size = load(&h.total_size);
    if size as usize > region.len() || (size as usize) < AREAS_OFFSET {
        return Err(OpenError::SizeMismatch { recorded: size as u64, actual: region.len() as u64 });
    }
    let count = load(&h.channel_count) as usize;
    if count > MAX_CHANNELS {
        return Err(OpenError::Corrupted(Corruption::header("channel_count")));
    }
    let hash = load(&h.layout_hash_lo) as u64 | (load(&h.layout_hash_hi) as u64) << 32;
    let mut channels = ChannelTable::new();
    let mut end = AREAS_OFFSET as u64;
    for i in 0..count {
        let c = read_descriptor(descriptor(region, i), i as u8, end, size, format::split_version(load(&h.version)).1)?;
        // `read_descriptor` checked the padding after each name is zero:
        // names without it compare as the whole entries do.
        if channels.find(c.name()).is_some() {
            return Err(OpenError::Corrupted(Corruption::channel(i as u8, "name")));
        }
        end = c.offset as u64 + align_line(c.size as u64);
        // Never full: `count <= MAX_CHANNELS` was checked above.
        channels.push(c).map_err(|_| OpenError::Corrupted(Corruption::header("channel_count")))?;
    }
    if channels.hash(size) != hash {
        return Err(OpenError::Corrupted(Corruption::header("layout_hash")));
    }
    Ok(Geometry { size, layout_hash: hash, channels })
}

fn check_identity(h: &Header) -> Result<(), OpenError> {
    let load = |w: &AtomicU32| w.load(Ordering::Relaxed);
    if load(&h.magic_lo) != format::MAGIC_LO || load(&h.magic_hi) != format::MAGIC_HI {
        return Err(OpenError::BadMagic);
    }
    if load(&h.endian) != format::ENDIAN_MARK {
        return Err(OpenError::EndianMismatch);
    }
    let (major, minor) = format::split_version(load(&h.version));
    if major != format::FORMAT_MAJOR {
        return Err(OpenError::VersionMismatch { major, minor });
    }
    Ok(())
}

fn write_descriptor(d: &Descriptor, c: &ChannelInfo) {
    let store = |w: &AtomicU32, v| w.store(v, Ordering::Relaxed);
    store(&d.kind, c.kind as u32);
    store(&d.offset, c.offset);
    store(&d.size, c.size);
    for (w, v) in d.params.iter().zip(c.params().words()) {
        store(w, v);
    }
    for (w, chunk) in d.name.iter().zip(c.name.chunks_exact(4)) {
        store(w, u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
    }
}

/// Reads and checks table entry `i`; `prev_end` is where the previous area
/// ended, `total` the checked segment size, `minor` the segment's format
/// minor version (a kind this build does not know is a newer minor's, or
/// corruption).
fn read_descriptor(d: &Descriptor, i: u8, prev_end: u64, total: u32, minor: u16) -> Result<ChannelInfo, OpenError> {
    let bad = |word| OpenError::Corrupted(Corruption::channel(i, word));
    let load = |w: &AtomicU32| w.load(Ordering::Relaxed);
    let word = load(&d.kind);
    let kind = ChannelKind::from_word(word).ok_or(if minor > format::FORMAT_MINOR {
        OpenError::UnknownKind { channel: i, kind: word, minor }
    } else {
        bad("kind")
    })?;
    let mut name = [0u8; NAME_BYTES];
    for (chunk, w) in name.chunks_exact_mut(4).zip(&d.name) {
        chunk.copy_from_slice(&load(w).to_ne_bytes());
    }
    let len = name.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
    // Names are made from `&str`: bytes that are not UTF-8 were not written
    // by a creator of this format.
    let utf8 = core::str::from_utf8(&name[..len]).is_ok();
    if len == 0 || len > format::MAX_NAME || name[len..].iter().any(|&b| b != 0) || !utf8 {
        return Err(bad("name"));
    }
    let offset = load(&d.offset);
    if (offset as u64) < prev_end || !(offset as usize).is_multiple_of(format::CACHE_LINE) || offset >= total {
        return Err(bad("offset"));
    }
    let params = ChannelParams::from_words(kind, d.params.each_ref().map(load)).map_err(|(word, _)| bad(word))?;
    let size = load(&d.size);
    if size as u64 != channel_size(&params) || offset as u64 + size as u64 > total as u64 {
        return Err(bad("size"));
    }
    Ok(ChannelInfo::new(params, offset, size, name))
}

#[cfg(all(test, not(shm_loom)))]
mod tests;
