//! Who a process is: more than its PID.
//!
//! A PID is recycled once its process is reaped, and means nothing outside
//! its PID namespace. A segment's header therefore records the creator's PID,
//! its start time and its PID namespace (format 1.1, `creator_start` and
//! `creator_domain`), and this module judges a creator by all three:
//!
//! - same namespace, PID alive, same start time: the creator lives;
//! - PID gone, a zombie, or alive with another start time (recycled): dead;
//! - another namespace: nobody here can tell, so nothing is ever declared
//!   dead on that evidence, and [`Segment::open`](crate::Segment::open)
//!   refuses such a segment ([`OpenError::ForeignNamespace`](crate::OpenError::ForeignNamespace)):
//!   every id in it (roles, slot owners) would be judged in the wrong
//!   namespace.
//!
//! Role holders and mailbox slot owners are recorded by PID alone (one
//! 32-bit word decides ownership). A recycled PID there reads as alive: the
//! error is on the side of waiting (a dead holder's slot or role is freed
//! only once the recycled PID's process exits), never on the side of freeing
//! something a live process holds.

use std::sync::OnceLock;

use shm_core::{Creator, Peek};

use crate::futex::pid_alive;

/// What a process can tell about a segment's creator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The creator runs (same PID, same start time).
    Alive,
    /// The creator is gone (its PID is free, a zombie, or recycled).
    Dead,
    /// The creator is in another PID namespace: unknowable from here.
    Unknown,
}

/// The start time of process `pid` as the header records it: clock ticks
/// after boot (field 22 of `/proc/PID/stat`), low 32 bits, bit 0 set so that
/// it is never 0 ("not recorded"). `None` if the process does not exist.
pub fn process_start(pid: u32) -> Option<u32> {
    let mut buf = [0u8; 512];
    let stat = crate::futex::read_stat(pid, &mut buf)?;
    // "pid (comm) state ppid ...": fields counted after the last ')', where
    // the state is field 3; the start time is field 22.
    let after = stat.iter().rposition(|&b| b == b')')? + 1;
    let field = stat[after..].split(|&b| b == b' ').filter(|f| !f.is_empty()).nth(22 - 3)?;
    let ticks: u64 = std::str::from_utf8(field).ok()?.parse().ok()?;
    Some(ticks as u32 | 1)
}

/// This process's PID namespace (the inode of `/proc/self/ns/pid`, low 32
/// bits); `None` where `/proc` does not tell.
pub fn pid_namespace() -> Option<u32> {
    static NS: OnceLock<Option<u32>> = OnceLock::new();
    *NS.get_or_init(|| rustix::fs::stat("/proc/self/ns/pid").ok().map(|st| st.st_ino as u32))
}

/// This process as a segment's creator.
pub(crate) fn this_creator(session: u32) -> Creator {
    let id = std::process::id();
    Creator { id, session, start: process_start(id).unwrap_or(0), domain: pid_namespace().unwrap_or(0) }
}

/// Whether a segment recorded in another PID namespace than ours (unknown
/// counts as ours: format 1.0 segments record none).
pub(crate) fn foreign_namespace(peek: &Peek) -> bool {
    // A recorded domain we cannot compare with (no `/proc` here) is not
    // known to be ours: nothing is judged on that evidence either.
    peek.creator_domain != 0 && pid_namespace().is_none_or(|ours| ours != peek.creator_domain)
}

/// Judges the creator recorded in `peek` (see the module docs). A creator
/// of 0 (none recorded) is `Unknown`.
pub fn creator_liveness(peek: &Peek) -> Liveness {
    judge(peek, pid_alive, process_start)
}

/// [`creator_liveness`] with the process lookups passed in (for tests).
fn judge(peek: &Peek, alive: impl Fn(u32) -> bool, start: impl Fn(u32) -> Option<u32>) -> Liveness {
    if peek.creator == 0 || foreign_namespace(peek) {
        return Liveness::Unknown;
    }
    if !alive(peek.creator) {
        return Liveness::Dead;
    }
    match (peek.creator_start, start(peek.creator)) {
        (0, _) => Liveness::Alive,                          // format 1.0: the PID is all we have
        (want, Some(now)) if want != now => Liveness::Dead, // recycled
        (_, Some(_)) => Liveness::Alive,
        // No start time: it exited since the look above, or `/proc` does
        // not tell (not mounted, `hidepid`). Only the former is evidence.
        (_, None) if alive(peek.creator) => Liveness::Unknown,
        (_, None) => Liveness::Dead,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peek(creator: u32, start: u32, domain: u32) -> Peek {
        use shm_core::format::header;
        let mut bytes = [0u8; header::SIZE];
        for (offset, value) in
            [(header::CREATOR, creator), (header::CREATOR_START, start), (header::CREATOR_DOMAIN, domain)]
        {
            bytes[offset..][..4].copy_from_slice(&value.to_ne_bytes());
        }
        Peek::from_header(&bytes)
    }

    #[test]
    fn this_process_is_alive_by_pid_start_time_and_namespace() {
        let me = this_creator(1);
        assert_ne!(me.start, 0, "/proc/self/stat has a start time");
        assert_ne!(me.domain, 0, "/proc/self/ns/pid has an inode");
        assert_eq!(creator_liveness(&peek(me.id, me.start, me.domain)), Liveness::Alive);
        assert_eq!(creator_liveness(&peek(me.id, 0, 0)), Liveness::Alive, "format 1.0: PID only");
    }

    /// A live PID with another start time is a recycled PID: the creator
    /// that recorded it is gone.
    #[test]
    fn a_recycled_pid_is_a_dead_creator() {
        let me = this_creator(1);
        let earlier = me.start.wrapping_sub(2) | 1;
        assert_eq!(creator_liveness(&peek(me.id, earlier, me.domain)), Liveness::Dead);
    }

    /// Nothing is judged from another PID namespace, not even a PID that
    /// exists here.
    #[test]
    fn another_namespace_is_never_judged() {
        let me = this_creator(1);
        let other = me.domain.wrapping_add(1).max(1);
        assert_eq!(creator_liveness(&peek(me.id, me.start, other)), Liveness::Unknown);
        assert_eq!(creator_liveness(&peek(u32::MAX - 5, 1, other)), Liveness::Unknown);
        assert!(foreign_namespace(&peek(me.id, me.start, other)));
        assert!(!foreign_namespace(&peek(me.id, me.start, 0)));
    }

    /// A live PID whose start time `/proc` does not give (no `/proc`,
    /// `hidepid`) cannot be judged: never declared dead on that evidence.
    #[test]
    fn a_live_pid_without_a_start_time_is_unknown_not_dead() {
        let me = this_creator(1);
        let p = peek(me.id, me.start, me.domain);
        assert_eq!(judge(&p, |_| true, |_| None), Liveness::Unknown);
        assert_eq!(judge(&p, |_| false, |_| None), Liveness::Dead);
        // Exited between the two looks: dead.
        let looks = std::cell::Cell::new(0);
        let alive_once = |_| looks.replace(looks.get() + 1) == 0;
        assert_eq!(judge(&p, alive_once, |_| None), Liveness::Dead);
    }

    #[test]
    fn a_child_that_exited_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = process_start(pid);
        child.wait().unwrap();
        let domain = pid_namespace().unwrap();
        assert_eq!(creator_liveness(&peek(pid, start.unwrap_or(1), domain)), Liveness::Dead);
    }
}
