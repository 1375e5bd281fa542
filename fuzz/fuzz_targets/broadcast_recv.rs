//! A valid broadcast channel (overwrite policy, two subscribers, messages
//! published) whose control words, subscriber lines and ring are then
//! overwritten with arbitrary bytes: the subscribers and the publisher only
//! ever return errors or intact-looking messages, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shm_core::broadcast::Policy;
use shm_core::format::AREAS_OFFSET;
use shm_core::mock::{MockRegion, ThreadWait};
use shm_core::{Layout, Segment};

const CAPACITY: u32 = 256;

fuzz_target!(|data: &[u8]| {
    let policy = if data.first().is_some_and(|b| b & 1 == 1) { Policy::Overwrite } else { Policy::Block };
    let layout = Layout::new().broadcast("b", CAPACITY, 2, policy).unwrap();
    let memory = MockRegion::new(layout.size());
    let segment = Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let mut a = segment.subscriber("b", ThreadWait::new(2)).unwrap();
    let mut b = segment.subscriber("b", ThreadWait::new(3)).unwrap();
    {
        let mut tx = segment.publisher("b", ThreadWait::new(4)).unwrap();
        for n in 0..3u8 {
            let _ = tx.try_publish(&[n; 40]);
        }
    }
    // Everything after the table: what a hostile peer controls.
    let area = AREAS_OFFSET..layout.size();
    for (i, chunk) in data.chunks(4).skip(1).take(area.len() / 4).enumerate() {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        memory.write_u32(area.start + i * 4, u32::from_ne_bytes(word));
    }
    let max = shm_core::broadcast::max_message(CAPACITY) as usize;
    let mut buf = [0u8; CAPACITY as usize];
    for sub in [&mut a, &mut b] {
        for _ in 0..16 {
            match sub.try_recv(&mut buf) {
                Ok(n) => assert!(n <= max),
                Err(_) => break,
            }
        }
        if let Ok(msg) = sub.try_read() {
            let mut copy = [0u8; CAPACITY as usize];
            assert!(msg.read_into(&mut copy) <= max);
            let _ = msg.finish();
        }
    }
    if let Ok(mut tx) = segment.publisher("b", ThreadWait::new(5)) {
        for len in [0, 1, 17, max] {
            let _ = tx.try_publish(&[0xa5; CAPACITY as usize][..len]);
        }
    };
});
