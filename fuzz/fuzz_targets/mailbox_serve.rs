//! A valid mailbox whose control words and slots are then overwritten with
//! arbitrary bytes: serving, reclaiming and calling only ever return errors.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shm_core::format::AREAS_OFFSET;
use shm_core::mock::{MockRegion, ThreadWait};
use shm_core::{Layout, Segment};

fuzz_target!(|data: &[u8]| {
    let layout = Layout::new().mailbox("m", 3, 64).unwrap();
    let memory = MockRegion::new(layout.size());
    let segment = Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let area = AREAS_OFFSET..layout.size();
    for (i, chunk) in data.chunks(4).take(area.len() / 4).enumerate() {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        memory.write_u32(area.start + i * 4, u32::from_ne_bytes(word));
    }
    let client = segment.client("m", ThreadWait::new(2)).unwrap();
    let server = segment.server("m", ThreadWait::new(3));
    if let Ok(server) = &server {
        for _ in 0..4 {
            match server.try_recv() {
                Ok(request) => {
                    // The copying calls: no reference to bytes the (hostile)
                    // client may write.
                    assert!(request.len() <= 64);
                    let mut local = [0u8; 64];
                    let n = request.read_into(&mut local);
                    local[..n].make_ascii_uppercase();
                    let _ = request.respond_with(&local[..n]);
                }
                Err(_) => break,
            }
        }
        server.reclaim();
    }
    for _ in 0..3 {
        let Ok(mut slot) = client.try_claim() else { break };
        slot.write(b"hi");
        if let Ok(pending) = slot.send(2) {
            if let Ok(server) = &server {
                if let Ok(request) = server.try_recv() {
                    let _ = request.respond(2);
                }
            }
            if let Ok(response) = pending.wait_timeout(Duration::ZERO) {
                assert!(response.len() <= 64);
                assert!(response.read_into(&mut [0u8; 64]) <= 64);
            }
        }
    }
});
