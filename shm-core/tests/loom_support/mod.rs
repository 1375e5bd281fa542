//! What the loom models share: a futex modelled with loom's mutex and
//! condition variable (checking the word and going to sleep is atomic with
//! respect to a wake, as with `FUTEX_WAIT`, so a lost wake-up leaves a thread
//! asleep forever, which loom reports as a deadlock), whose peers can die
//! while a model runs; heap stand-ins for a mailbox slot and a queue ring;
//! and the model runner that prints how many interleavings it explored.
#![allow(dead_code)] // each model file uses part of it

use std::ptr::NonNull;

use loom::sync::atomic::{AtomicU32 as LAtomicU32, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use shm_core::format::mailbox::{MailboxControl, SlotControl};
use shm_core::format::queue::QueueControl;
use shm_core::mailbox::MailboxView;
use shm_core::queue::QueueView;
use shm_core::{AtomicU32, Wait};

/// A futex model; a peer's id can be declared dead at any point.
///
/// Its waits spin `SHM_LOOM_SPINS` times before parking (0 when unset): 0
/// models every wait going straight to its announce and park; a few spins
/// (each a loom yield) add the spin phase's looks, and the change of a
/// word between them and the announce, to what the model explores.
#[derive(Clone)]
pub struct DyingWait {
    pub id: u32,
    spins: u32,
    /// Bit `id` set: that id is dead.
    dead: Arc<LAtomicU32>,
    sleep: Arc<(Mutex<()>, Condvar)>,
}

impl DyingWait {
    /// The side with id `id` (below 32), every peer alive.
    pub fn new(id: u32) -> Self {
        let spins = std::env::var("SHM_LOOM_SPINS").ok().and_then(|n| n.parse().ok()).unwrap_or(0);
        Self { id, spins, dead: Arc::new(LAtomicU32::new(0)), sleep: Arc::new((Mutex::new(()), Condvar::new())) }
    }

    /// Two sides, ids 1 and 2, of one futex model.
    pub fn pair() -> (Self, Self) {
        let a = Self::new(1);
        let b = a.sibling(2);
        (a, b)
    }

    /// Another side of the same model, with id `id`.
    pub fn sibling(&self, id: u32) -> Self {
        Self { id, ..self.clone() }
    }

    /// This side dies (its peers' `is_alive` says so from now on).
    pub fn die(&self) {
        self.dead.fetch_or(1 << self.id, Ordering::SeqCst);
    }

    /// Declares id `id` dead.
    pub fn bury(&self, id: u32) {
        self.dead.fetch_or(1 << id, Ordering::SeqCst);
    }
}

impl Wait for DyingWait {
    type Deadline = ();
    fn deadline(&self, _: Option<core::time::Duration>) {}
    fn expired(&self, _: &mut ()) -> bool {
        false
    }
    fn park(&self, word: &AtomicU32, expected: u32, _: &mut ()) {
        let guard = self.sleep.0.lock().unwrap();
        if word.load(Ordering::SeqCst) == expected {
            drop(self.sleep.1.wait(guard).unwrap());
        }
    }
    fn wake(&self, _: &AtomicU32, _: u32) {
        let _guard = self.sleep.0.lock().unwrap();
        self.sleep.1.notify_all();
    }
    fn spin_limit(&self) -> u32 {
        self.spins
    }
    fn self_id(&self) -> u32 {
        self.id
    }
    fn is_alive(&self, id: u32) -> bool {
        id >= 32 || self.dead.load(Ordering::SeqCst) & (1 << id) == 0
    }
}

/// One mailbox slot on the heap: its control line, then 8 payload bytes.
#[repr(C)]
pub struct LoomSlot {
    pub ctl: SlotControl,
    pub payload: [u8; 8],
}

/// The slots of a model's mailbox.
pub struct Slots(pub Vec<LoomSlot>);

/// A view of a one-slot mailbox over `ctl` and `slots`.
pub fn view_of<'a>(ctl: &'a MailboxControl, slots: &'a Slots) -> MailboxView<'a> {
    let stride = std::mem::size_of::<LoomSlot>();
    let payload = std::mem::offset_of!(LoomSlot, payload);
    let ptr = NonNull::new(slots.0.as_ptr() as *mut u8).unwrap();
    // SAFETY: one LoomSlot (control words, then 8 payload bytes) at `ptr`,
    // borrowed for `'a`; touched only through the mailbox protocol.
    unsafe { MailboxView::new(ctl, ptr, stride, payload, 1, 8, 0) }
}

/// Heap memory standing in for a queue's ring (8-aligned).
pub struct Ring(pub Box<[u64]>);

/// A view of a 64-byte queue over `ctl` and `ring`.
pub fn qview<'a>(ctl: &'a QueueControl, ring: &'a Ring) -> QueueView<'a> {
    let ptr = NonNull::new(ring.0.as_ptr() as *mut u8).unwrap();
    // SAFETY: 64 bytes, 8-aligned, borrowed for `'a`; touched only through
    // the queue protocol.
    unsafe { QueueView::new(ctl, ptr, 64, 0) }
}

/// Runs `f` under loom (preemption bound 2 unless `LOOM_MAX_PREEMPTIONS`
/// says otherwise) and prints how many interleavings it explored.
pub fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = runs.clone();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    println!("loom model {name}: {} iterations explored", runs.load(std::sync::atomic::Ordering::Relaxed));
}
