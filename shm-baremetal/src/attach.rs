//! Who is on each side of the window, and since when: session numbers, the
//! attach handshake, and telling a reset peer from a live one.
//!
//! ```
//! # use std::time::Duration;
//! # use shm_baremetal::{CoreId, Endpoint, SpinWait, Window};
//! # use shm_core::Layout;
//! # struct Std;
//! # impl embedded_hal::delay::DelayNs for Std {
//! #     fn delay_ns(&mut self, ns: u32) { std::thread::sleep(Duration::from_nanos(ns.into())) }
//! # }
//! # let memory: &'static _ = Box::leak(Box::new(shm_core::mock::MockRegion::new(4096)));
//! # // SAFETY: a leaked heap buffer, only used through this crate.
//! # let window = unsafe { Window::new(memory.region().as_ptr(), memory.len()) }.unwrap();
//! // Both images declare the same channels.
//! let layout = || Layout::new().queue("log", 1024).unwrap();
//! let opener = std::thread::spawn(move || {
//!     // Core 1: publishes its session, waits for core 0's, opens.
//!     let me = Endpoint::new(window, CoreId::CORE1, CoreId::CORE0);
//!     let wait = SpinWait::<spin::relax::Spin, _>::new(me.session(), Std);
//!     let link = me.open(&layout(), &wait, Duration::from_secs(5)).unwrap();
//!     assert_eq!(link.peer_session(), 1);
//! });
//! // Core 0: meets core 1 (new sessions on both sides), creates the segment.
//! let me = Endpoint::new(window, CoreId::CORE0, CoreId::CORE1);
//! let wait = SpinWait::<spin::relax::Spin, _>::new(me.session(), Std);
//! let link = me.create(&layout(), &wait, Duration::from_secs(5)).unwrap();
//! assert!(link.check().is_ok());
//! opener.join().unwrap();
//! ```
//!
//! # The attach block
//!
//! The last 64 bytes of the window, outside the segment: one 16-byte *lane*
//! per core, each written only by its own core, read by the others. Its
//! bytes are tabled, with the segment's, in [`shm_core::format::attach`].
//!
//! # Ids and liveness
//!
//! The id a core records in the segment's role words ([`Wait::self_id`]) is
//! `(core + 1) << 24 | session` ([`CoreId::id`]). Every attach starts a new
//! session (the lane's old number plus one), so ids of an earlier attach, or
//! of a life before a reset, differ from the current one. [`Session::is_alive`] says an id is
//! alive only if its session is the current session of its core: a core
//! that reset can take back its own roles, and the survivor's waits stop as
//! soon as the peer publishes a new session.
//!
//! # The handshake
//!
//! 1. A core starts a session: `ack = 0`, `linked = 0`, then `session += 1`
//!    (Release), then wakes the peer.
//! 2. It waits for the peer's lane to name a session `p`, and acknowledges
//!    it: `ack = p` (Release), and wakes the peer.
//! 3. It is linked once the peer's `ack` equals its own session while the
//!    peer's `session` is still `p`; it records `linked = p`. If the peer
//!    starts yet another session meanwhile, it goes back to 2.
//! 4. The creator then (re)creates the segment ([`Segment::create`] records
//!    its session in the header); the opener waits for a READY segment whose
//!    header names the creator's session `p`, and opens it.
//!
//! Both sides must act in the same handshake, so stale RAM (a lane or a READY
//! segment left by a core that is not running) never passes for a live peer:
//! a dead core acknowledges nothing, and the wait runs out
//! ([`AttachError::Timeout`]). A core acknowledges only from its own
//! `create`/`open`, so the creator never re-creates the segment under a peer
//! that still uses the previous one.
//!
//! After the handshake, a change of the peer's `session` away from `linked`
//! means the peer reset or re-attached: [`Link::check`] and every
//! channel call of the link report [`PeerReset`], and the wait
//! strategies end blocking calls early. Both sides then attach again
//! (the creator re-creates the segment, so no state of the old session
//! survives), without a reboot of the board.
//!
//! # Design
//!
//! Why not in the segment: shm-core's format has no room for it and must
//! stay readable by Linux peers; and [`Segment::create`] zeroes the segment,
//! which would erase the very numbers that detect a reset. Why lanes with
//! one writer each: no word is written by two cores, so the handshake needs
//! no compare-and-swap and runs on thumbv6m.
//!
//! [`Wait::self_id`]: shm_core::Wait::self_id
//! [`Segment::create`]: shm_core::Segment::create

use core::fmt;
use core::time::Duration;

use shm_core::{AtomicU32, Layout, Segment, Wait};

use crate::cache::{Cache, NoCache};
use crate::error::{AttachError, PeerReset};
use crate::fmt::debug;
use crate::sync::Ordering;
use crate::window::Window;
use shm_core::format;
use shm_core::format::attach::{MAX_CORES, SESSION_MASK};

/// One core's words in the attach block (see the module docs).
#[repr(C)]
#[derive(Debug)]
pub struct Lane {
    session: AtomicU32,
    ack: AtomicU32,
    changes: AtomicU32,
    linked: AtomicU32,
}

/// The attach block: a lane per core.
#[repr(C)]
#[derive(Debug)]
pub struct AttachBlock {
    lanes: [Lane; MAX_CORES],
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Lane>() == format::attach::LANE_SIZE);
    assert!(offset_of!(Lane, session) == format::attach::SESSION);
    assert!(offset_of!(Lane, ack) == format::attach::ACK);
    assert!(offset_of!(Lane, changes) == format::attach::CHANGES);
    assert!(offset_of!(Lane, linked) == format::attach::LINKED);
    assert!(size_of::<AttachBlock>() == format::attach::BLOCK_SIZE);
};

/// A snapshot of one lane, for inspection and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LaneState {
    /// The core's current session (0: never attached).
    pub session: u32,
    /// The peer session it accepted.
    pub ack: u32,
    /// The peer session it is linked with (0: not linked).
    pub linked: u32,
}

impl Default for AttachBlock {
    fn default() -> Self {
        Self::new()
    }
}

impl Lane {
    const fn new() -> Self {
        Self {
            session: AtomicU32::new(0),
            ack: AtomicU32::new(0),
            changes: AtomicU32::new(0),
            linked: AtomicU32::new(0),
        }
    }
}

impl AttachBlock {
    /// A zeroed block, for a `static` both cores see (one image on both
    /// cores, as on RP2040) or for tests. In a [`Window`] it is
    /// [`Window::attach_block`].
    pub const fn new() -> Self {
        Self { lanes: [Lane::new(), Lane::new(), Lane::new(), Lane::new()] }
    }

    fn lane(&self, core: CoreId) -> &Lane {
        &self.lanes[core.index()]
    }

    /// What `core`'s lane says now.
    pub fn lane_state(&self, core: CoreId) -> LaneState {
        let l = self.lane(core);
        LaneState {
            session: l.session.load(Ordering::Relaxed),
            ack: l.ack.load(Ordering::Relaxed),
            linked: l.linked.load(Ordering::Relaxed),
        }
    }
}

/// Tells waiters on `lane.changes` that the lane changed. One writer per
/// lane, so a load and a store do (no read-modify-write: thumbv6m has none).
fn publish(lane: &Lane) {
    let next = lane.changes.load(Ordering::Relaxed).wrapping_add(1);
    // SYNC POINT: Release pairs with the Acquire load of `changes` in
    // `handshake`: the lane update before it is visible to whoever sees it.
    lane.changes.store(next, Ordering::Release);
}

/// A core number, `0..MAX_CORES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CoreId(u8);

impl CoreId {
    /// Core 0.
    pub const CORE0: CoreId = CoreId(0);
    /// Core 1.
    pub const CORE1: CoreId = CoreId(1);

    /// Core `n`, if the attach block has a lane for it.
    pub const fn new(n: u8) -> Option<CoreId> {
        if (n as usize) < MAX_CORES {
            Some(CoreId(n))
        } else {
            None
        }
    }

    /// The core number.
    pub const fn number(self) -> u8 {
        self.0
    }

    fn index(self) -> usize {
        self.0 as usize
    }

    /// The id this core records in the segment for `session`.
    pub const fn id(self, session: u32) -> u32 {
        (self.0 as u32 + 1) << format::attach::CORE_SHIFT | (session & SESSION_MASK)
    }

    /// The core and session an id stands for, if it is one of ours.
    pub const fn decode(id: u32) -> Option<(CoreId, u32)> {
        let top = id >> format::attach::CORE_SHIFT;
        if top == 0 || top as usize > MAX_CORES {
            return None;
        }
        Some((CoreId(top as u8 - 1), id & SESSION_MASK))
    }
}

impl fmt::Display for CoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "core {}", self.0)
    }
}

/// The session after `s`: 24 bits, never 0. Stale RAM only changes the
/// starting point; what matters is that the number changes.
pub(crate) const fn next_session(s: u32) -> u32 {
    let n = s.wrapping_add(1) & SESSION_MASK;
    if n == 0 {
        1
    } else {
        n
    }
}

/// This core's identity in a window and its peer: what the wait strategies
/// need for [`Wait::self_id`] and [`Wait::is_alive`]. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Session<'w> {
    block: &'w AttachBlock,
    me: CoreId,
    peer: CoreId,
}

impl<'w> Session<'w> {
    /// The identity of core `me`, linked (or to be linked) with `peer`, in
    /// `block`.
    pub fn new(block: &'w AttachBlock, me: CoreId, peer: CoreId) -> Self {
        Self { block, me, peer }
    }

    /// This core.
    pub fn core(&self) -> CoreId {
        self.me
    }

    /// The peer core.
    pub fn peer(&self) -> CoreId {
        self.peer
    }

    /// This core's current session (0 before its first attach).
    pub fn number(&self) -> u32 {
        self.block.lane(self.me).session.load(Ordering::Relaxed)
    }

    /// The id this core records in role words now ([`Wait::self_id`]).
    pub fn id(&self) -> u32 {
        self.me.id(self.number())
    }

    /// Whether `id` belongs to a live attachment: for ids of this crate's
    /// format, whether its session is its core's current one. Ids of other
    /// formats are assumed alive.
    pub fn is_alive(&self, id: u32) -> bool {
        match CoreId::decode(id) {
            Some((core, session)) => self.block.lane(core).session.load(Ordering::Relaxed) == session,
            None => true,
        }
    }

    /// The peer's reset or re-attach since this core linked with it, if any.
    /// `None` while not linked.
    pub fn peer_reset(&self) -> Option<PeerReset> {
        let linked = self.block.lane(self.me).linked.load(Ordering::Relaxed);
        if linked == 0 {
            return None;
        }
        let now = self.block.lane(self.peer).session.load(Ordering::Relaxed);
        (now != linked).then_some(PeerReset { peer: self.peer.number().into(), linked, now })
    }

    /// Starts a new session of this core: clears its acknowledgement, then
    /// publishes the new number. Returns it.
    pub(crate) fn begin(&self) -> u32 {
        let lane = self.block.lane(self.me);
        lane.linked.store(0, Ordering::Relaxed);
        lane.ack.store(0, Ordering::Relaxed);
        let session = next_session(lane.session.load(Ordering::Relaxed));
        // SYNC POINT: Release pairs with the Acquire loads of `session` in
        // the peer's `handshake`: the cleared `ack` is seen with it.
        lane.session.store(session, Ordering::Release);
        publish(lane);
        session
    }

    /// Runs the handshake (see the module docs) for this core's current
    /// session; returns the peer's session.
    fn handshake<W: Wait>(&self, wait: &W, timeout: Duration) -> Result<u32, AttachError> {
        let (mine_lane, peer_lane) = (self.block.lane(self.me), self.block.lane(self.peer));
        let mine = mine_lane.session.load(Ordering::Relaxed);
        wait.wake(&mine_lane.changes, u32::MAX);
        let mut deadline = wait.deadline(Some(timeout));
        loop {
            // SYNC POINT: Acquire pairs with the Release in `publish`.
            let seen = peer_lane.changes.load(Ordering::Acquire);
            // SYNC POINT: Acquire pairs with the Release store in `begin`.
            let peer = peer_lane.session.load(Ordering::Acquire);
            if peer != 0 {
                if mine_lane.ack.load(Ordering::Relaxed) != peer {
                    // SYNC POINT: Release pairs with the peer's Acquire load
                    // of our `ack` below: what we did before acknowledging
                    // (dropping the previous link's channel ends) happened
                    // before the peer, seeing the ack, goes on.
                    mine_lane.ack.store(peer, Ordering::Release);
                    publish(mine_lane);
                    wait.wake(&mine_lane.changes, u32::MAX);
                }
                // SYNC POINT: Acquire pairs with the Release store of `ack`
                // above, on the peer's side.
                let acked = peer_lane.ack.load(Ordering::Acquire);
                if acked == mine && peer_lane.session.load(Ordering::Relaxed) == peer {
                    mine_lane.linked.store(peer, Ordering::Relaxed);
                    debug!("shm: {} session {} linked with {} session {}", self.me, mine, self.peer, peer);
                    return Ok(peer);
                }
            }
            if wait.expired(&mut deadline) {
                return Err(AttachError::Timeout { peer: self.peer });
            }
            wait.park(&peer_lane.changes, seen, &mut deadline);
        }
    }
}

/// One core's end of a window: which core it is, which core it talks to,
/// and the cache hooks for the shared bytes. Attaches as creator
/// ([`create`](Self::create)) or opener ([`open`](Self::open)), again after
/// each [`PeerReset`].
#[derive(Debug, Clone)]
pub struct Endpoint<C: Cache = NoCache> {
    window: Window,
    me: CoreId,
    peer: CoreId,
    cache: C,
}

impl Endpoint<NoCache> {
    /// Core `me`'s end of `window`, talking to `peer`, without a data cache.
    pub fn new(window: Window, me: CoreId, peer: CoreId) -> Self {
        Self::with_cache(window, me, peer, NoCache)
    }
}

impl<C: Cache + Clone> Endpoint<C> {
    /// As [`Endpoint::new`], maintaining the data cache through `cache`
    /// (see [`crate::cache`]).
    pub fn with_cache(window: Window, me: CoreId, peer: CoreId, cache: C) -> Self {
        assert!(me != peer, "a core cannot be its own peer");
        Self { window, me, peer, cache }
    }

    /// The identity the wait strategies of this core take.
    pub fn session(&self) -> Session<'static> {
        Session::new(self.window.attach_block(), self.me, self.peer)
    }

    /// The window.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// Creator: starts a new session, waits at most `timeout` for the peer
    /// to complete the handshake, then (re)creates the segment of `layout` in
    /// the window, READY.
    ///
    /// The segment is created only once the peer acknowledged this session,
    /// which it does from its own [`open`](Self::open): a peer still holding
    /// channel ends of an earlier segment is never pulled out from under.
    pub fn create<W: Wait>(&self, layout: &Layout, wait: &W, timeout: Duration) -> Result<Link<C>, AttachError> {
        let session = self.session();
        let number = session.begin();
        let peer = session.handshake(wait, timeout)?;
        let segment = Segment::create(self.window.segment_region(), layout, self.me.id(number), number)
            .map_err(AttachError::Create)?;
        // What `create` wrote goes to memory; the opener invalidates its
        // copy before it reads the segment.
        self.cache.clean(self.window.base(), layout.size());
        debug!("shm: {} created the segment in session {}", self.me, number);
        Ok(Link { endpoint: self.clone(), segment, session: number, peer_session: peer })
    }

    /// Opener: starts a new session, waits at most `timeout` for the creator
    /// to complete the handshake, then for the segment it creates: READY,
    /// of `layout`'s geometry, and naming the creator's current session
    /// (a segment left from an earlier session is waited out).
    pub fn open<W: Wait>(&self, layout: &Layout, wait: &W, timeout: Duration) -> Result<Link<C>, AttachError> {
        let session = self.session();
        let number = session.begin();
        let peer = session.handshake(wait, timeout)?;
        let segment = self.open_created_by(peer, layout, wait, timeout)?;
        Ok(Link { endpoint: self.clone(), segment, session: number, peer_session: peer })
    }

    /// Opens the segment once the peer's session `peer` created it.
    fn open_created_by<W: Wait>(
        &self,
        peer: u32,
        layout: &Layout,
        wait: &W,
        timeout: Duration,
    ) -> Result<Segment<'static>, AttachError> {
        let mut deadline = wait.deadline(Some(timeout));
        loop {
            // Our cache may hold lines of a previous segment in this window.
            self.cache.invalidate(self.window.base(), self.window.segment_len());
            // One look per turn: this loop's deadline bounds the whole wait.
            let stale = match Segment::open_expecting(self.window.segment_region(), layout, wait, Duration::ZERO) {
                Ok(segment) => {
                    let info = segment.info();
                    // `info` is read after `open` checked the segment: the
                    // creator may have begun re-creating it since (its new
                    // session already in the header, the old generation
                    // opened). Only a segment still current vouches for it.
                    if info.session == peer && info.creator == self.peer.id(peer) && segment.is_current() {
                        return Ok(segment);
                    }
                    AttachError::Stale { creator: info.creator, session: info.session }
                }
                // The creator is still writing, this is an earlier segment of
                // another geometry, or RAM from before a reset not yet
                // overwritten (garbage until the creator starts): wait for
                // the new segment until the deadline, then report what was
                // last seen.
                Err(e) => AttachError::Open(e),
            };
            if wait.expired(&mut deadline) {
                return Err(stale);
            }
        }
    }
}

/// An attached segment: both cores completed the handshake. Hands out the
/// channel ends (shm-core's, over a [`LinkWait`], so that they report
/// [`PeerReset`] and call the cache hooks).
pub struct Link<C: Cache = NoCache> {
    endpoint: Endpoint<C>,
    segment: Segment<'static>,
    session: u32,
    peer_session: u32,
}

impl<C: Cache> Link<C> {
    /// The segment.
    pub fn segment(&self) -> &Segment<'static> {
        &self.segment
    }

    /// This core's session in this link.
    pub fn session(&self) -> u32 {
        self.session
    }

    /// The peer's session in this link.
    pub fn peer_session(&self) -> u32 {
        self.peer_session
    }

    /// This core.
    pub fn core(&self) -> CoreId {
        self.endpoint.me
    }

    /// The peer core.
    pub fn peer(&self) -> CoreId {
        self.endpoint.peer
    }

    /// The cache hooks.
    pub fn cache(&self) -> &C {
        &self.endpoint.cache
    }

    /// `Err` if the peer reset or re-attached since the handshake, or if the
    /// segment was re-created under this link; then attach again.
    pub fn check(&self) -> Result<(), PeerReset> {
        let block = self.endpoint.window.attach_block();
        let now = block.lane(self.endpoint.peer).session.load(Ordering::Relaxed);
        if now != self.peer_session || !self.segment.is_current() {
            crate::fmt::warning!("shm: {} session changed: was {}, now {}", self.endpoint.peer, self.peer_session, now);
            return Err(PeerReset { peer: self.endpoint.peer.number().into(), linked: self.peer_session, now });
        }
        Ok(())
    }

    /// Maps a claim error: a reset peer explains it better than whatever
    /// the claim saw (a busy role, a garbled word).
    pub(crate) fn explain<E: From<PeerReset>>(&self, e: E) -> E {
        match self.check() {
            Err(reset) => reset.into(),
            Ok(()) => e,
        }
    }

    /// `wait`, made to serve this link's channel ends: see [`LinkWait`].
    pub(crate) fn wait<W: Wait>(&self, wait: W) -> LinkWait<'_, W, C> {
        LinkWait { wait, link: self }
    }
}

/// The wait strategy of a channel end made by a [`Link`]: `W`, plus the
/// link's hooks. shm-core's channels call them at their hook points
/// ([`Wait::check`], [`Wait::clean`], [`Wait::invalidate`]):
///
/// - `check` is [`Link::check`]: a reset peer ends every call, blocked or
///   not, with the channel error's `PeerReset` variant;
/// - `clean` and `invalidate` go to the link's [`Cache`] (see
///   [`crate::cache`] for where they run).
///
/// Everything else is `W`'s.
pub struct LinkWait<'l, W, C: Cache = NoCache> {
    wait: W,
    link: &'l Link<C>,
}

impl<W: Wait, C: Cache> LinkWait<'_, W, C> {
    /// The strategy inside.
    pub fn inner(&self) -> &W {
        &self.wait
    }
}

impl<W: Wait, C: Cache> Wait for LinkWait<'_, W, C> {
    type Deadline = W::Deadline;
    fn deadline(&self, timeout: Option<Duration>) -> Self::Deadline {
        self.wait.deadline(timeout)
    }
    fn expired(&self, deadline: &mut Self::Deadline) -> bool {
        self.wait.expired(deadline)
    }
    fn park(&self, word: &AtomicU32, expected: u32, deadline: &mut Self::Deadline) {
        self.wait.park(word, expected, deadline)
    }
    fn wake(&self, word: &AtomicU32, count: u32) {
        self.wait.wake(word, count)
    }
    fn spin_limit(&self) -> u32 {
        self.wait.spin_limit()
    }
    fn adaptive_spin(&self) -> bool {
        self.wait.adaptive_spin()
    }
    fn lazy_notify(&self) -> bool {
        self.wait.lazy_notify()
    }
    fn yield_now(&self) -> bool {
        self.wait.yield_now()
    }
    fn barrier_everywhere(&self) -> bool {
        self.wait.barrier_everywhere()
    }
    fn self_id(&self) -> u32 {
        self.wait.self_id()
    }
    fn is_alive(&self, id: u32) -> bool {
        self.wait.is_alive(id)
    }
    fn check(&self) -> Result<(), PeerReset> {
        self.wait.check()?;
        self.link.check()
    }
    fn clean(&self, addr: *const u8, len: usize) {
        self.link.cache().clean(addr, len)
    }
    fn invalidate(&self, addr: *const u8, len: usize) {
        self.link.cache().invalidate(addr, len)
    }
}
