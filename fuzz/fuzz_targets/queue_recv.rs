//! A valid queue whose control words and ring are then overwritten with
//! arbitrary bytes: the consumer and producer only ever return errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shm_core::format::AREAS_OFFSET;
use shm_core::mock::{MockRegion, ThreadWait};
use shm_core::{Layout, Segment};

const CAPACITY: u32 = 256;

fuzz_target!(|data: &[u8]| {
    let layout = Layout::new().queue("q", CAPACITY).unwrap();
    let memory = MockRegion::new(layout.size());
    let segment = Segment::create(memory.region(), &layout, 1, 0).unwrap();
    // Control words (128 bytes) then the ring: what a hostile peer controls.
    let area = AREAS_OFFSET..layout.size();
    for (i, chunk) in data.chunks(4).take(area.len() / 4).enumerate() {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        memory.write_u32(area.start + i * 4, u32::from_ne_bytes(word));
    }
    let mut buf = [0u8; CAPACITY as usize];
    if let Ok(mut rx) = segment.consumer("q", ThreadWait::new(2)) {
        for _ in 0..16 {
            match rx.try_recv(&mut buf) {
                Ok(n) => assert!(n <= rx_max()),
                Err(_) => break,
            }
        }
    }
    if let Ok(mut tx) = segment.producer("q", ThreadWait::new(3)) {
        for len in [0, 1, 17, rx_max()] {
            if let Ok(mut grant) = tx.try_grant(len) {
                grant.write(&[0xa5; CAPACITY as usize][..len]);
                grant.commit();
            }
        }
    };
});

fn rx_max() -> usize {
    shm_core::queue::max_message(CAPACITY) as usize
}
