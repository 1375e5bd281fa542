//! Opening a segment from arbitrary bytes, then using whatever channels it
//! declares: errors are fine, panics, hangs and out-of-bounds access are not.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use shm_core::mock::{MockRegion, ThreadWait};
use shm_core::{ChannelKind, Segment, Semaphore};

fuzz_target!(|data: &[u8]| {
    let memory = MockRegion::new(data.len());
    for (i, chunk) in data.chunks(4).enumerate() {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        memory.write_u32(i * 4, u32::from_ne_bytes(word));
    }
    let Ok(segment) = Segment::open(memory.region(), &ThreadWait::new(1), Duration::ZERO) else {
        return;
    };
    for channel in segment.channels() {
        let name = String::from_utf8_lossy(channel.name()).into_owned();
        match channel.kind {
            ChannelKind::Queue => {
                if let Ok(mut rx) = segment.consumer(&name, ThreadWait::new(2)) {
                    for _ in 0..8 {
                        let Ok(message) = rx.try_read() else { break };
                        std::hint::black_box(message.iter().map(|&b| b as u64).sum::<u64>());
                    }
                }
                if let Ok(mut tx) = segment.producer(&name, ThreadWait::new(3)) {
                    let _ = tx.try_send(b"probe");
                }
            }
            ChannelKind::Mailbox => {
                if let Ok(server) = segment.server(&name, ThreadWait::new(4)) {
                    if let Ok(request) = server.try_recv() {
                        let n = request.len();
                        let _ = request.respond(n);
                    }
                    server.reclaim();
                }
                let client = segment.client(&name, ThreadWait::new(5)).expect("a client always attaches");
                if let Ok(slot) = client.try_claim() {
                    if let Ok(pending) = slot.send(1) {
                        let _ = pending.wait_timeout(Duration::ZERO);
                    }
                };
            }
            ChannelKind::Direct => {
                if let Ok(mut server) = segment.direct_server(&name, ThreadWait::new(4)) {
                    if let Ok(request) = server.try_recv() {
                        let n = request.len();
                        let _ = request.respond(n);
                    }
                    server.reclaim();
                }
                if let Ok(mut client) = segment.direct_client(&name, ThreadWait::new(5)) {
                    let _ = client.call_timeout(b"x", &mut [0u8; 64], Duration::ZERO);
                }
            }
            ChannelKind::Broadcast => {
                if let Ok(mut rx) = segment.subscriber(&name, ThreadWait::new(7)) {
                    let mut buf = [0u8; 256];
                    for _ in 0..8 {
                        if rx.try_recv(&mut buf).is_err() {
                            break;
                        }
                    }
                }
                if let Ok(mut tx) = segment.publisher(&name, ThreadWait::new(8)) {
                    let _ = tx.try_publish(b"probe");
                }
            }
            ChannelKind::Semaphore => {
                if let Ok(sem) = segment.semaphore(&name, ThreadWait::new(6)) {
                    let _ = sem.try_wait();
                    let _ = sem.post();
                }
            }
        }
    }
});
