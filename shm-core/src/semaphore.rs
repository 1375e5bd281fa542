//! A counting semaphore whose state lives in the segment.
//!
//! ```
//! use core::time::Duration;
//! use shm_core::mock::{MockRegion, ThreadWait};
//! use shm_core::{Layout, Segment, Semaphore};
//!
//! let layout = Layout::new().semaphore("free", 1).unwrap();
//! let region = MockRegion::new(layout.size());
//! let segment = Segment::create(region.region(), &layout, 1, 0).unwrap();
//! let sem = segment.semaphore("free", ThreadWait::new(1)).unwrap();
//!
//! sem.wait_timeout(Duration::from_millis(10)).unwrap(); // takes the one unit
//! assert!(!sem.try_wait().unwrap());                    // none left
//! sem.post().unwrap();
//! assert!(sem.try_wait().unwrap());
//! ```
//!
//! # Design
//!
//! Two words: `count` and `waiters` (tabled in [`crate::format::semaphore`]).
//! `post` increments `count` (Release) and wakes one sleeper only if
//! `waiters` says there is one, so a post to a spinning peer costs no system
//! call. Waiters spin a bounded number of times, then announce themselves and
//! park on `count` (see [`crate::wait`]). A waiter that dies leaves `waiters`
//! too high, which costs a spare wake-up, nothing more. The count never
//! exceeds [`MAX_COUNT`](crate::format::semaphore::MAX_COUNT); a larger value
//! is reported as corruption.

use core::time::Duration;

use crate::error::HasErrorKind;
use crate::format::semaphore::SemaphoreWords;
use crate::sync::{AtomicU32, Ordering};

/// A counting semaphore.
///
/// `post` adds one; `wait` takes one, blocking while the count is zero.
/// Implemented in the segment by [`CountingSemaphore`] (over any [`Wait`](crate::Wait)
/// strategy) and in shm-posix by a POSIX named semaphore; one conformance
/// suite (`shm_core::conformance`, feature `mock`) checks every implementation.
pub trait Semaphore {
    /// The error type; its [`HasErrorKind::kind`] is
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) for timeouts.
    type Error: HasErrorKind;

    /// Adds one to the count, waking a waiter if one sleeps.
    fn post(&self) -> Result<(), Self::Error>;

    /// Takes one if the count is positive; `Ok(false)` if it is zero.
    fn try_wait(&self) -> Result<bool, Self::Error>;

    /// Takes one, blocking at most `timeout` while the count is zero.
    fn wait_timeout(&self, timeout: Duration) -> Result<(), Self::Error>;

    /// Takes one, blocking as long as it takes.
    fn wait(&self) -> Result<(), Self::Error>;
}

impl<S: Semaphore + ?Sized> Semaphore for &S {
    type Error = S::Error;
    fn post(&self) -> Result<(), Self::Error> {
        (**self).post()
    }
    fn try_wait(&self) -> Result<bool, Self::Error> {
        (**self).try_wait()
    }
    fn wait_timeout(&self, timeout: Duration) -> Result<(), Self::Error> {
        (**self).wait_timeout(timeout)
    }
    fn wait(&self) -> Result<(), Self::Error> {
        (**self).wait()
    }
}

impl SemaphoreWords {
    /// Words with the given initial count, for tests and model checking
    /// (in a segment they are placed by [`crate::Segment::create`]).
    pub fn new(initial: u32) -> Self {
        Self { count: AtomicU32::new(initial), waiters: AtomicU32::new(0) }
    }

    /// The current count (a snapshot, for inspection tools).
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// Sleepers announced (a snapshot, for inspection tools).
    pub fn waiters(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed)
    }
}

#[cfg(shm_cas)]
pub use counting::CountingSemaphore;

#[cfg(shm_cas)]
mod counting {
    use super::*;
    use crate::error::SemaphoreError;
    use crate::format::semaphore::MAX_COUNT;
    use crate::wait::{notify, wait_for, Announce, SpinBudget, Wait};

    /// The in-segment counting semaphore, blocking through a [`Wait`] strategy
    /// (a futex in shm-posix: `FutexSemaphore`).
    #[derive(Debug)]
    pub struct CountingSemaphore<'a, W> {
        words: &'a SemaphoreWords,
        wait: W,
        spin: SpinBudget,
    }

    impl<'a, W: Wait> CountingSemaphore<'a, W> {
        /// A semaphore over `words`, blocking through `wait`.
        pub fn new(words: &'a SemaphoreWords, wait: W) -> Self {
            Self { words, wait, spin: SpinBudget::never_yielding() }
        }

        /// The words this semaphore works on.
        pub fn words(&self) -> &'a SemaphoreWords {
            self.words
        }

        /// The wait strategy.
        pub fn strategy(&self) -> &W {
            &self.wait
        }

        /// Takes one unit if any; errors if the count word is out of range.
        fn take(&self, seen: u32) -> Result<bool, SemaphoreError> {
            let mut current = seen;
            for _ in 0..crate::sync::CAS_RETRIES {
                if current > MAX_COUNT {
                    return Err(SemaphoreError::Corrupted);
                }
                if current == 0 {
                    return Ok(false);
                }
                // SYNC POINT: Acquire pairs with the Release CAS in `post`, so
                // what the poster wrote before posting is visible to us.
                match self.words.count.compare_exchange_weak(current, current - 1, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) => return Ok(true),
                    Err(now) => current = now,
                }
            }
            // The word never held still: someone rewrites it without pause.
            Err(SemaphoreError::Corrupted)
        }

        /// Blocks until a unit is taken or `deadline` passes.
        pub(crate) fn wait_deadline(&self, deadline: &mut W::Deadline) -> Result<(), SemaphoreError> {
            let taken = wait_for(
                &self.wait,
                &self.spin,
                &self.words.count,
                &self.words.waiters,
                Announce::Counted,
                None,
                None,
                deadline,
                |seen| match self.take(seen) {
                    Ok(false) => None,
                    other => Some(other),
                },
            );
            match taken {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(SemaphoreError::Timeout),
            }
        }
    }

    impl<W: Wait> Semaphore for CountingSemaphore<'_, W> {
        type Error = SemaphoreError;

        fn post(&self) -> Result<(), SemaphoreError> {
            let mut current = self.words.count.load(Ordering::Relaxed);
            let mut tries = 0;
            loop {
                tries += 1;
                if current > MAX_COUNT || tries > crate::sync::CAS_RETRIES {
                    return Err(SemaphoreError::Corrupted);
                }
                if current == MAX_COUNT {
                    return Err(SemaphoreError::Overflow);
                }
                // SYNC POINT: Release pairs with the Acquire CAS in `take`.
                match self.words.count.compare_exchange_weak(current, current + 1, Ordering::Release, Ordering::Relaxed)
                {
                    Ok(_) => break,
                    Err(now) => current = now,
                }
            }
            notify(&self.wait, &self.words.count, &self.words.waiters, 1);
            Ok(())
        }

        fn try_wait(&self) -> Result<bool, SemaphoreError> {
            self.take(self.words.count.load(Ordering::Relaxed))
        }

        fn wait_timeout(&self, timeout: Duration) -> Result<(), SemaphoreError> {
            let mut deadline = self.wait.deadline(Some(timeout));
            self.wait_deadline(&mut deadline)
        }

        fn wait(&self) -> Result<(), SemaphoreError> {
            let mut deadline = self.wait.deadline(None);
            self.wait_deadline(&mut deadline)
        }
    }
}

#[cfg(all(test, not(shm_loom)))]
mod tests {
    use super::*;
    use crate::conformance;
    use crate::format::semaphore::MAX_COUNT;
    use crate::mock::{MockRegion, ThreadWait};
    use crate::{Layout, Segment, SemaphoreError};

    #[test]
    fn conformance_suite_on_heap_words() {
        let words = SemaphoreWords::new(0);
        conformance::semaphore_basics(&CountingSemaphore::new(&words, ThreadWait::new(1)));
    }

    #[test]
    fn threads_pass_every_unit_exactly_once() {
        let words = SemaphoreWords::new(0);
        let poster = CountingSemaphore::new(&words, ThreadWait::new(1));
        let taker = CountingSemaphore::new(&words, ThreadWait::new(2));
        conformance::semaphore_threads(&poster, &taker);
    }

    #[test]
    fn corrupted_count_is_an_error_not_a_hang() {
        let words = SemaphoreWords::new(MAX_COUNT + 1);
        let sem = CountingSemaphore::new(&words, ThreadWait::new(1));
        assert_eq!(sem.try_wait(), Err(SemaphoreError::Corrupted));
        assert_eq!(sem.post(), Err(SemaphoreError::Corrupted));
        assert_eq!(sem.wait_timeout(Duration::from_millis(1)), Err(SemaphoreError::Corrupted));
    }

    #[test]
    fn post_at_max_reports_overflow() {
        let words = SemaphoreWords::new(MAX_COUNT);
        let sem = CountingSemaphore::new(&words, ThreadWait::new(1));
        assert_eq!(sem.post(), Err(SemaphoreError::Overflow));
        assert_eq!(words.count(), MAX_COUNT);
    }

    #[test]
    fn channel_in_a_segment() {
        let layout = Layout::new().semaphore("s", 0).unwrap();
        let memory = MockRegion::new(layout.size());
        let seg = Segment::create(memory.region(), &layout, 1, 0).unwrap();
        conformance::semaphore_basics(&seg.semaphore("s", ThreadWait::new(1)).unwrap());
        let layout = Layout::new().semaphore("s", 5).unwrap();
        let seg = Segment::create(memory.region(), &layout, 1, 0).unwrap();
        assert_eq!(seg.semaphore_words("s").unwrap().count(), 5);
    }
}
