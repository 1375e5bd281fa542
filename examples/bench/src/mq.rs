//! POSIX message queues (`mq_open`), the one alternative rustix lacks; the
//! only module of the benchmark that calls `libc`.

use std::ffi::CString;
use std::io;
use std::time::Duration;

/// An open message queue descriptor, closed on drop (never unlinked: the
/// orchestrator removes names, see [`unlink`]).
#[derive(Debug)]
pub struct MessageQueue {
    mqd: libc::mqd_t,
    msg_size: usize,
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

fn check(op: &str, rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{op}: {e}")));
    }
    Ok(rc)
}

impl MessageQueue {
    /// `mq_open(name, O_CREAT|O_EXCL|O_RDWR, 0600, {maxmsg, msgsize})`.
    pub fn create(name: &str, max_messages: usize, msg_size: usize) -> io::Result<Self> {
        let cname = c_name(name)?;
        // SAFETY: `mq_attr` is a plain C struct for which all-zero is valid.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        let too_large = |_| io::Error::new(io::ErrorKind::InvalidInput, "mq_open: queue dimensions out of range");
        attr.mq_maxmsg = max_messages.try_into().map_err(too_large)?;
        attr.mq_msgsize = msg_size.try_into().map_err(too_large)?;
        // SAFETY: `cname` is NUL-terminated and outlives the call; with
        // O_CREAT, mq_open reads a mode_t and a `*mut mq_attr` from its
        // variadic arguments, and `attr` is a valid attribute struct.
        let mqd = unsafe {
            libc::mq_open(
                cname.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC,
                0o600 as libc::mode_t,
                &mut attr as *mut libc::mq_attr,
            )
        };
        check("mq_open", mqd)?;
        Ok(Self { mqd, msg_size })
    }

    /// `mq_open(name, O_RDWR)` of an existing queue.
    pub fn open(name: &str) -> io::Result<Self> {
        let cname = c_name(name)?;
        // SAFETY: `cname` is NUL-terminated and outlives the call; without
        // O_CREAT no variadic argument is read.
        let mqd = unsafe { libc::mq_open(cname.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        check("mq_open", mqd)?;
        // SAFETY: as in `create`.
        let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
        // SAFETY: `mqd` is an open descriptor and `attr` a valid out-pointer.
        check("mq_getattr", unsafe { libc::mq_getattr(mqd, &mut attr) })?;
        Ok(Self { mqd, msg_size: attr.mq_msgsize as usize })
    }

    /// Sends `msg` (blocking while the queue is full).
    pub fn send(&self, msg: &[u8]) -> io::Result<()> {
        loop {
            // SAFETY: `msg` is valid for reads of `msg.len()` bytes during
            // the call; `self.mqd` stays open until drop.
            let rc = unsafe { libc::mq_send(self.mqd, msg.as_ptr().cast(), msg.len(), 0) };
            match check("mq_send", rc) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other.map(drop),
            }
        }
    }

    /// Receives one message into `buf` (at least the queue's message size),
    /// waiting at most `timeout`; returns its length.
    pub fn receive(&self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if buf.len() < self.msg_size {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "mq_receive: buffer smaller than mq_msgsize"));
        }
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
        // Saturating: a timeout of `Duration::MAX` waits "forever", never
        // wraps into the past.
        let nanos = u64::try_from(now.tv_nsec).unwrap_or(0) + u64::from(timeout.subsec_nanos());
        let secs = u64::try_from(now.tv_sec)
            .unwrap_or(0)
            .saturating_add(timeout.as_secs())
            .saturating_add(nanos / 1_000_000_000);
        let abs = libc::timespec {
            tv_sec: secs.try_into().unwrap_or(libc::time_t::MAX),
            tv_nsec: (nanos % 1_000_000_000).try_into().unwrap_or(0),
        };
        loop {
            // SAFETY: `buf` is valid for writes of `buf.len()` bytes, which
            // is at least mq_msgsize as mq_timedreceive requires; `abs` is a
            // valid timespec; `self.mqd` stays open until drop.
            let rc = unsafe {
                libc::mq_timedreceive(self.mqd, buf.as_mut_ptr().cast(), buf.len(), std::ptr::null_mut(), &abs)
            };
            if rc >= 0 {
                return Ok(rc as usize);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::TimedOut => {
                    return Err(io::Error::new(e.kind(), format!("mq_timedreceive: nothing within {timeout:?}")))
                }
                _ => return Err(io::Error::new(e.kind(), format!("mq_timedreceive: {e}"))),
            }
        }
    }
}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        // SAFETY: `self.mqd` came from a successful mq_open and is closed
        // exactly once, here.
        unsafe { libc::mq_close(self.mqd) };
    }
}

/// `mq_unlink(name)`; a missing name is not an error.
pub fn unlink(name: &str) -> io::Result<()> {
    let cname = c_name(name)?;
    // SAFETY: `cname` is NUL-terminated and outlives the call.
    match check("mq_unlink", unsafe { libc::mq_unlink(cname.as_ptr()) }) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.map(drop),
    }
}
