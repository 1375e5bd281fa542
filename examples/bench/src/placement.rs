//! Where the processes of a row run: each on a CPU of its own (the
//! default), all on one CPU (`--same-cpu`), or wherever the scheduler puts
//! them (`--no-pin`, or too few CPUs).
//!
//! ```text
//! let p = Placement::new(Mode::Distinct, procs::allowed_cpus());
//! let cpus = p.assign(3); // server and two clients: Pinned([0, 1, 2]) on 3+ CPUs
//! ```
//!
//! # Design
//!
//! Placement changes the numbers more than any protocol detail: on CPUs of
//! their own two processes hand a message over in a few cache-line
//! transfers, on one CPU every hand-over is a context switch, and a side
//! that spins only delays the peer it waits for. So every row says where
//! it ran, and a row that wanted CPUs of its own but could not have them
//! says so instead of quietly sharing. A child inherits its parent's
//! affinity, so an unpinned peer is given the whole set explicitly.

use serde::Serialize;

/// What the command line asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Each process on a CPU of its own, where there are enough.
    Distinct,
    /// Every process of a row on the same CPU (`--same-cpu`).
    SameCpu,
    /// No pinning (`--no-pin`).
    Unpinned,
}

/// The CPUs of the processes of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cpus {
    /// Process `i` pinned to CPU `cpus[i]` (a CPU may repeat: `--same-cpu`).
    Pinned(Vec<usize>),
    /// Not pinned: every process may run on any CPU of the run; `why` says
    /// why not pinned.
    Unpinned {
        /// Why these processes are not pinned.
        why: String,
    },
}

/// The placement of a run: the mode and the CPUs this process may use.
#[derive(Debug, Clone)]
pub struct Placement {
    /// What was asked for.
    pub mode: Mode,
    /// The CPUs the run may use, as found at start-up.
    pub cpus: Vec<usize>,
}

impl Placement {
    /// A placement of `mode` over `cpus`.
    pub fn new(mode: Mode, cpus: Vec<usize>) -> Self {
        Self { mode, cpus }
    }

    /// CPUs for `n` processes: with [`Mode::Distinct`] the first `n` CPUs
    /// when there are that many, otherwise unpinned with the reason.
    pub fn assign(&self, n: usize) -> Cpus {
        let have = self.cpus.len();
        match self.mode {
            Mode::SameCpu if have > 0 => Cpus::Pinned(vec![self.cpus[0]; n]),
            Mode::Distinct if have >= n => Cpus::Pinned(self.cpus[..n].to_vec()),
            Mode::Distinct => Cpus::Unpinned { why: format!("{n} processes need {n} CPUs, this machine has {have}") },
            _ => Cpus::Unpinned { why: "--no-pin".into() },
        }
    }

    /// Whether `n` processes placed by [`assign`](Self::assign) share a CPU
    /// (more processes than CPUs to run them): there a spinning side only
    /// delays the peer it waits for, so the benchmark's own spinning
    /// strategies yield instead.
    pub fn shares_cpu(&self, n: usize) -> bool {
        match self.assign(n) {
            Cpus::Pinned(cpus) => {
                let mut distinct = cpus.clone();
                distinct.sort_unstable();
                distinct.dedup();
                distinct.len() < cpus.len()
            }
            Cpus::Unpinned { .. } => n > self.cpus.len(),
        }
    }

    /// One line for the report's header.
    pub fn describe(&self, n: usize) -> String {
        match self.assign(n) {
            Cpus::Pinned(cpus) if self.mode == Mode::SameCpu => {
                format!("all processes on CPU {} (--same-cpu)", cpus[0])
            }
            Cpus::Pinned(cpus) => format!("client/receiver on CPU {}, peer on CPU {}", cpus[1], cpus[0]),
            Cpus::Unpinned { why } => format!("not pinned ({why})"),
        }
    }
}

impl Cpus {
    /// The affinity to hand process `i`: its CPU when pinned, else all of
    /// `all` (a child inherits its parent's affinity, which may be one CPU).
    pub fn of(&self, i: usize, all: &[usize]) -> Vec<usize> {
        match self {
            Cpus::Pinned(cpus) => vec![cpus[i]],
            Cpus::Unpinned { .. } => all.to_vec(),
        }
    }

    /// Whether the processes are pinned.
    pub fn is_pinned(&self) -> bool {
        matches!(self, Cpus::Pinned(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_pins_while_cpus_last_then_says_why_not() {
        let p = Placement::new(Mode::Distinct, vec![0, 1]);
        assert_eq!(p.assign(2), Cpus::Pinned(vec![0, 1]));
        assert!(!p.shares_cpu(2));
        match p.assign(3) {
            Cpus::Unpinned { why } => assert!(why.contains("3 CPUs"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(p.shares_cpu(3));
    }

    #[test]
    fn same_cpu_pins_everyone_to_the_first_and_shares() {
        let p = Placement::new(Mode::SameCpu, vec![2, 3]);
        assert_eq!(p.assign(3), Cpus::Pinned(vec![2, 2, 2]));
        assert!(p.shares_cpu(2));
        assert!(!p.shares_cpu(1));
    }

    #[test]
    fn unpinned_hands_every_cpu_to_each_process() {
        let p = Placement::new(Mode::Unpinned, vec![0, 1]);
        assert_eq!(p.assign(2).of(1, &p.cpus), vec![0, 1]);
        assert!(!p.shares_cpu(2));
    }
}
