//! Typed messages between two processes: `typed-pipeline` starts a sensor
//! process (a mailbox server answering calibration requests, and a producer
//! streaming samples) and acts as its client and consumer. Requests,
//! responses and samples are `#[repr(C)]` structs, checked field by field;
//! the stream ends with a clean close (the producer drops, the consumer
//! receives every sample, then `Closed`), and nothing is left in /dev/shm.
//!
//! `typed-pipeline sensor --name N` runs the sensor role alone.

use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shm_core::typed::{TypedClient, TypedConsumer, TypedProducer, TypedServer};
use shm_core::{Layout, RecvError, ServeError};
use shm_posix::{FutexWait, Segment};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// A calibration request: which sensor, and a raw reading.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, Clone, Copy, PartialEq)]
#[repr(C)]
struct Calibrate {
    sensor: u32,
    /// 1: a reading to calibrate; 2: stop serving.
    op: u32,
    raw: u64,
}

/// The answer: the calibrated value and the request's sequence number.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, Clone, Copy, PartialEq)]
#[repr(C)]
struct Calibrated {
    value: u64,
    seq: u64,
}

/// One sample of the stream, with a checksum of its other fields.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, Clone, Copy, PartialEq)]
#[repr(C)]
struct Sample {
    seq: u64,
    sensor: u32,
    _pad: u32,
    value: f64,
    check: u64,
}

const CALLS: u64 = 10_000;
const SAMPLES: u64 = 100_000;
const TIMEOUT: Duration = Duration::from_secs(10);

fn calibrate(sensor: u32, raw: u64) -> u64 {
    raw.wrapping_mul(3).wrapping_add(u64::from(sensor))
}

fn sample(seq: u64) -> Sample {
    let value = seq as f64 * 0.5;
    let sensor = (seq % 7) as u32;
    Sample { seq, sensor, _pad: 0, value, check: seq ^ value.to_bits() ^ u64::from(sensor) }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => run(),
        ["sensor", "--name", name] => sensor(name),
        _ => Err("usage: typed-pipeline [sensor --name NAME]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("typed-pipeline: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The sensor process: serves calibration requests on one thread and
/// streams samples on another, then closes the stream by dropping the
/// producer.
fn sensor(name: &str) -> Result<()> {
    let layout = Layout::new().mailbox("calibrate", 4, 64)?.queue("samples", 64 * 1024)?;
    let segment = Segment::create(name, &layout)?;
    let server = TypedServer::<Calibrate, Calibrated, _>::new(segment.server("calibrate", FutexWait::new())?)?;
    let mut tx = TypedProducer::<Sample, _>::new(segment.producer("samples", FutexWait::new())?)?;
    std::thread::scope(|s| {
        let stream = s.spawn(move || -> Result<(), shm_core::SendError> {
            for seq in 0..SAMPLES {
                // Built in place in the ring: no copy.
                let mut grant = tx.grant_timeout(TIMEOUT)?;
                *grant = sample(seq);
                grant.commit();
            }
            Ok(()) // `tx` drops here: the consumer gets `Closed` after the last sample
        });
        let mut seq = 0;
        loop {
            let request = match server.recv_timeout(TIMEOUT) {
                Ok(request) => request,
                Err(ServeError::Timeout) => return Err("no request within the timeout".into()),
                Err(e) => return Err(e.into()),
            };
            let ask = request.get();
            if ask.op == 2 {
                request.respond(&Calibrated { value: 0, seq })?;
                break;
            }
            request.respond(&Calibrated { value: calibrate(ask.sensor, ask.raw), seq })?;
            seq += 1;
        }
        stream.join().map_err(|_| "the stream thread panicked")??;
        Ok(())
    })
}

/// Starts the sensor process, calls it and consumes its stream, checking
/// every message.
fn run() -> Result<()> {
    let name = format!("/shm-typed-{}", std::process::id());
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe).args(["sensor", "--name", &name]).spawn()?;
    let outcome = client_and_consumer(&name);
    let status = child.wait()?;
    let _ = shm_posix::remove(&name); // in case the sensor failed half-way
    outcome?;
    if !status.success() {
        return Err(format!("the sensor process failed ({status})").into());
    }
    if std::path::Path::new(&format!("/dev/shm{name}")).exists() {
        return Err("the segment was left in /dev/shm".into());
    }
    Ok(())
}

fn client_and_consumer(name: &str) -> Result<()> {
    let segment = Arc::new(Segment::open_live(name, TIMEOUT)?);
    let client = TypedClient::<Calibrate, Calibrated, _>::new(segment.client("calibrate", FutexWait::new())?)?;
    let mut rx = TypedConsumer::<Sample, _>::new(segment.consumer("samples", FutexWait::new())?)?;
    let started = Instant::now();
    std::thread::scope(|s| {
        let consumer = s.spawn(move || -> Result<u64> {
            let mut next = 0u64;
            loop {
                match rx.read_timeout(TIMEOUT) {
                    // Read in place, then checked field by field.
                    Ok(got) => {
                        if *got != sample(next) {
                            return Err(format!("sample {next}: got {:?}", *got).into());
                        }
                        next += 1;
                    }
                    Err(RecvError::Closed) => return Ok(next),
                    Err(e) => return Err(format!("after {next} samples: {e}").into()),
                }
            }
        });
        for i in 0..CALLS {
            let ask = Calibrate { sensor: (i % 5) as u32, op: 1, raw: i * 11 };
            let answer = client.call_timeout(&ask, TIMEOUT)?;
            if answer != (Calibrated { value: calibrate(ask.sensor, ask.raw), seq: i }) {
                return Err(format!("call {i}: got {answer:?}").into());
            }
        }
        client.call_timeout(&Calibrate { sensor: 0, op: 2, raw: 0 }, TIMEOUT)?;
        let received = consumer.join().map_err(|_| "the consumer thread panicked")??;
        if received != SAMPLES {
            return Err(format!("the stream closed after {received} samples, not {SAMPLES}").into());
        }
        println!(
            "{CALLS} typed calls and {SAMPLES} typed samples in {:.2?}, every one checked; the stream ended with a clean close",
            started.elapsed()
        );
        Ok(())
    })
}
