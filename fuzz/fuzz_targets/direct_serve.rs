//! A valid direct mailbox whose control words and slots are then
//! overwritten with arbitrary bytes: connecting, serving, reclaiming,
//! calling and leaving only ever return errors (no panic, no hang).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shm_core::format::AREAS_OFFSET;
use shm_core::mock::{MockRegion, ThreadWait};
use shm_core::{Layout, Segment};

fuzz_target!(|data: &[u8]| {
    let layout = Layout::new().direct("d", 3, 64).unwrap();
    let memory = MockRegion::new(layout.size());
    let segment = Segment::create(memory.region(), &layout, 1, 0).unwrap();
    let area = AREAS_OFFSET..layout.size();
    for (i, chunk) in data.chunks(4).take(area.len() / 4).enumerate() {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        memory.write_u32(area.start + i * 4, u32::from_ne_bytes(word));
    }
    let mut server = segment.direct_server("d", ThreadWait::new(3));
    let serve = |server: &mut Result<shm_core::direct::Server<'_, ThreadWait>, _>| {
        if let Ok(server) = server {
            for _ in 0..4 {
                match server.try_recv() {
                    Ok(request) => {
                        // The copying calls: no reference to bytes the
                        // (hostile) client may write.
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
    };
    serve(&mut server);
    let mut clients: Vec<_> = (0..2).filter_map(|i| segment.direct_client("d", ThreadWait::new(4 + i)).ok()).collect();
    for round in 0..3 {
        for client in &mut clients {
            let mut out = [0u8; 64];
            if let Ok(n) = client.call_timeout(b"hi", &mut out, Duration::ZERO) {
                assert!(n <= 64);
            }
        }
        serve(&mut server);
        if round == 1 {
            // One leaves with whatever it has posted.
            clients.pop();
        }
    }
    drop(clients);
    drop(server);
});
