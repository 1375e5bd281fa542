//! Roles held in one word of the segment: a queue's producer and consumer,
//! a mailbox's server.
//!
//! The word holds the holder's id ([`Wait::self_id`]), 0 when free, or
//! [`CLOSED`] when its last holder closed the channel (free as well). A side
//! [`claim`]s a free role, or one whose holder [`Wait::is_alive`] says is
//! dead, and [`release`]s it when its handle drops. A handle that closes
//! its channel does so before it lets the role go, and only while it still
//! holds it (see the `Drop` impls of `Producer`, `Consumer` and `Server`).
//!
//! # Design
//!
//! Who holds a role is decided in the one word: on targets with
//! compare-and-swap the claim is a CAS from the holder seen to this side's
//! id, and the release a CAS from this side's id to 0, so a side that was
//! taken for dead and replaced never frees its successor's claim. thumbv6m
//! has no CAS: there the claim is a plain store, and two sides claiming one
//! role at the same instant are not told apart; on such targets roles are
//! fixed per core. Both paths are built for host tests.

use crate::sync::{AtomicU32, Ordering};
use crate::wait::Wait;

/// A role word whose last holder closed its channel: free to claim, and
/// never a peer to judge. (No side has this id: ids are PIDs or core
/// numbers.)
pub const CLOSED: u32 = u32::MAX;

/// Whether a role word value names a holder (not free, not closed).
pub(crate) const fn held(holder: u32) -> bool {
    holder != 0 && holder != CLOSED
}

/// Claims the role in `word` for `me`: 0 (free) or a dead holder's id
/// becomes `me`. Refuses with the holder's id when it is alive, or is `me`
/// (another handle of this same process or core session holds it, and two
/// producers would write the same ring bytes; a process restarted under its
/// predecessor's PID meets this as well, and `shmctl rm` or re-creating the
/// segment clears it).
pub(crate) fn claim<W: Wait>(word: &AtomicU32, wait: &W, me: u32) -> Result<(), u32> {
    claim_from(word, wait, me).map(|_| ())
}

/// [`claim`], returning what the word held before: 0 or [`CLOSED`] for a
/// free role, else the dead holder's id (a takeover).
pub(crate) fn claim_from<W: Wait>(word: &AtomicU32, wait: &W, me: u32) -> Result<u32, u32> {
    let holder = claimable(word, wait, me)?;
    #[cfg(shm_cas)]
    {
        // A dead holder's role may have been let go (to 0) or closed by it
        // between our look and our CAS: still free, look once more rather
        // than report a free role as busy.
        match take_by_cas(word, holder, me) {
            Err(now) if !held(now) => {
                let holder = claimable(word, wait, me)?;
                take_by_cas(word, holder, me).map(|()| holder)
            }
            taken => taken.map(|()| holder),
        }
    }
    #[cfg(not(shm_cas))]
    {
        take_by_store(word, holder, me).map(|()| holder)
    }
}

/// The holder `word` names if `me` may take the role over from it (0 when
/// free); the holder as the error when not.
fn claimable<W: Wait>(word: &AtomicU32, wait: &W, me: u32) -> Result<u32, u32> {
    // SYNC POINT: Acquire pairs with the Release in `release` of the
    // previous holder: its writes are visible.
    let holder = word.load(Ordering::Acquire);
    if held(holder) && (holder == me || wait.is_alive(holder)) {
        return Err(holder);
    }
    if held(holder) {
        crate::event::event!("taking over a role from dead holder {} (as {})", holder, me);
    }
    Ok(holder)
}

/// Lets the role in `word` go if `me` still holds it.
pub(crate) fn release(word: &AtomicU32, me: u32) {
    #[cfg(shm_cas)]
    release_by_cas(word, me);
    #[cfg(not(shm_cas))]
    release_by_store(word, me);
}

/// Whether the holder recorded in `word` is dead (`false` when none is).
pub(crate) fn holder_died<W: Wait>(word: &AtomicU32, wait: &W) -> bool {
    let holder = word.load(Ordering::Relaxed);
    held(holder) && !wait.is_alive(holder)
}

/// Closes the role in `word` if `me` still holds it: its value becomes
/// [`CLOSED`] (free to claim). Whether it did: a side that was taken for
/// dead and replaced closes nothing, since the one word decides.
#[cfg(shm_cas)]
pub(crate) fn close(word: &AtomicU32, me: u32) -> bool {
    // SYNC POINT: Release pairs with the Acquire load (and CAS) in `claim`
    // of the next holder, and with the Acquire load of the word by a client
    // that then reports the close.
    word.compare_exchange(me, CLOSED, Ordering::Release, Ordering::Relaxed).is_ok()
}

/// Moves `word` from `holder` (as seen by `claim`) to `me`; fails with what
/// it holds now when another side claimed it in between.
#[cfg(shm_cas)]
fn take_by_cas(word: &AtomicU32, holder: u32, me: u32) -> Result<(), u32> {
    // SYNC POINT: Acquire pairs with the Release in `release` of the
    // previous holder, so its last writes are visible.
    crate::sync::cas(word, holder, me, Ordering::Acquire).map(|_| ())
}

/// Stores `me` into `word`: no compare-and-swap here, so two sides racing
/// for one role at the same instant are not detected (`holder`, what
/// `claim` saw, cannot be checked again).
#[cfg(any(test, not(shm_cas)))]
fn take_by_store(word: &AtomicU32, _holder: u32, me: u32) -> Result<(), u32> {
    word.store(me, Ordering::Relaxed);
    Ok(())
}

#[cfg(shm_cas)]
fn release_by_cas(word: &AtomicU32, me: u32) {
    // SYNC POINT: Release pairs with the Acquire load (and CAS) in `claim`
    // of the next holder.
    let _ = word.compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed);
}

#[cfg(any(test, not(shm_cas)))]
fn release_by_store(word: &AtomicU32, me: u32) {
    if word.load(Ordering::Relaxed) == me {
        // SYNC POINT: Release pairs with the Acquire load in `claim` of the
        // next holder.
        word.store(0, Ordering::Release);
    }
}

#[cfg(all(test, not(shm_loom)))]
mod tests {
    use super::*;
    use crate::mock::{Graveyard, ThreadWait};

    type Take = fn(&AtomicU32, u32, u32) -> Result<(), u32>;
    type Release = fn(&AtomicU32, u32);
    /// Both ways to take and let go of a role, so the no-CAS path (thumbv6m)
    /// is tested on the host too.
    const PATHS: [(&str, Take, Release); 2] =
        [("cas", take_by_cas, release_by_cas), ("store", take_by_store, release_by_store)];

    /// `claim`, with the take of `path`.
    fn claim_with(path: Take, word: &AtomicU32, wait: &ThreadWait, me: u32) -> Result<(), u32> {
        path(word, claimable(word, wait, me)?, me)
    }

    #[test]
    fn a_free_role_is_claimed() {
        let word = AtomicU32::new(0);
        assert_eq!(claim(&word, &ThreadWait::new(7), 7), Ok(()));
        assert_eq!(word.load(Ordering::Relaxed), 7);
        for (path, take, _) in PATHS {
            let word = AtomicU32::new(0);
            assert_eq!(claim_with(take, &word, &ThreadWait::new(7), 7), Ok(()), "{path}");
            assert_eq!(word.load(Ordering::Relaxed), 7, "{path}");
        }
    }

    #[test]
    fn a_dead_holders_role_is_taken_over() {
        let graveyard = Graveyard::new();
        graveyard.bury(3);
        let wait = ThreadWait::with_graveyard(7, &graveyard);
        let word = AtomicU32::new(3);
        assert_eq!(claim(&word, &wait, 7), Ok(()));
        assert_eq!(word.load(Ordering::Relaxed), 7);
        for (path, take, _) in PATHS {
            let word = AtomicU32::new(3);
            assert_eq!(claim_with(take, &word, &wait, 7), Ok(()), "{path}");
            assert_eq!(word.load(Ordering::Relaxed), 7, "{path}");
        }
    }

    #[test]
    fn a_live_holder_and_this_side_itself_are_refused() {
        let wait = ThreadWait::new(7);
        let word = AtomicU32::new(3);
        assert_eq!(claim(&word, &wait, 7), Err(3), "a live holder");
        assert_eq!(word.load(Ordering::Relaxed), 3);
        let word = AtomicU32::new(7);
        assert_eq!(claim(&word, &wait, 7), Err(7), "another handle of this side");
        assert_eq!(word.load(Ordering::Relaxed), 7);
    }

    #[test]
    fn a_claim_raced_by_another_side_fails_with_the_cas() {
        // `claim` saw 3 (dead); another side took the role before the CAS.
        let word = AtomicU32::new(5);
        assert_eq!(take_by_cas(&word, 3, 7), Err(5));
        assert_eq!(word.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn release_lets_go_only_of_a_role_still_ours() {
        let word = AtomicU32::new(7);
        release(&word, 7);
        assert_eq!(word.load(Ordering::Relaxed), 0);
        let word = AtomicU32::new(9);
        release(&word, 7);
        assert_eq!(word.load(Ordering::Relaxed), 9, "taken over meanwhile: left to the new holder");
        for (path, _, release) in PATHS {
            let word = AtomicU32::new(7);
            release(&word, 7);
            assert_eq!(word.load(Ordering::Relaxed), 0, "{path}");
            let word = AtomicU32::new(9);
            release(&word, 7);
            assert_eq!(word.load(Ordering::Relaxed), 9, "{path}");
        }
    }
}
