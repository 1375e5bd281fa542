//! `--busy`: a busy loop on every CPU while the rows run, so that no CPU is
//! idle and every hand-over competes with a process that never sleeps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::Error;
use crate::procs;

/// The busy loops; dropping them stops and joins them.
pub struct BusyLoops {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl BusyLoops {
    /// Starts one spinning thread pinned to each of `cpus`.
    pub fn start(cpus: &[usize]) -> Result<Self, Error> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut loops = Self { stop: stop.clone(), threads: Vec::new() };
        for &cpu in cpus {
            let stop = stop.clone();
            let (pinned_tx, pinned_rx) = std::sync::mpsc::channel();
            loops.threads.push(std::thread::spawn(move || {
                let pinned = procs::pin(cpu);
                let ok = pinned.is_ok();
                let _ = pinned_tx.send(pinned);
                while ok && !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            }));
            pinned_rx.recv().map_err(|_| Error::Usage(format!("the busy loop for CPU {cpu} did not start")))??;
        }
        Ok(loops)
    }
}

impl Drop for BusyLoops {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
