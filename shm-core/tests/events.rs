//! Feature `log`: slow-path recoveries are logged (target `shm`), so an
//! operator sees a dead peer's slot reclaimed or a role taken over.
#![cfg(not(shm_loom))]

use std::sync::Mutex;

use shm_core::mock::{Graveyard, MockRegion, ThreadWait};
use shm_core::{Layout, Segment};

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if record.target() == "shm" {
            LINES.lock().unwrap().push(format!("{} {}", record.level(), record.args()));
        }
    }
    fn flush(&self) {}
}

#[test]
fn reclaims_and_takeovers_are_logged() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let layout = Layout::new().mailbox("m", 2, 64).unwrap();
    let memory = MockRegion::new(layout.size());
    let seg = Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let graveyard = Graveyard::new();
    let dead = ThreadWait::with_graveyard(7, &graveyard);
    let client = seg.client("m", &dead).unwrap();
    // The client dies holding a slot.
    std::mem::forget(client.try_claim().unwrap());
    // A server (id 8) died holding the role: its id is left in the role word.
    let area = seg.channels()[0].offset as usize;
    memory.write_u32(area + shm_core::format::mailbox::SERVER, 8);
    graveyard.bury(7);
    graveyard.bury(8);
    let server = seg.server("m", ThreadWait::with_graveyard(9, &graveyard)).unwrap();
    assert_eq!(server.reclaim(), 1);
    let lines = LINES.lock().unwrap().clone();
    assert!(lines.iter().any(|l| l.starts_with("WARN taking over a role from dead holder 8")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("reclaimed 1 slot(s) of dead clients")), "{lines:?}");
}
