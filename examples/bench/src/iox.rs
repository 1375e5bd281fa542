//! The iceoryx2 rows (feature `iceoryx2`): request-response and
//! publish-subscribe between the processes of a row, every side
//! polling (no event service, no listener), for comparison with the shm
//! mailbox and queue. Both sides of each method are here.
//!
//! - `iceoryx2-rr`, round trip: the orchestrator's client sends a request
//!   of `size` bytes, the peer's server answers `size` bytes with the first
//!   one flipped.
//! - `iceoryx2-pubsub`, round trip: the orchestrator publishes on `ping`,
//!   the peer answers on `pong`, first byte flipped; one way: the peer
//!   publishes on `ping`, message `i` starting with `i as u8`, once the
//!   orchestrator said on `pong` that it is connected.
//! - `iceoryx2-pubsub`, fan-out (`--fanout`): one publisher process and N
//!   subscriber processes on one lossless service ([`Fanout`]); the
//!   processes are `fanout`'s, this module only makes their ports.
//!
//! # Design
//!
//! Every file iceoryx2 makes for a row lies under the row's name (the
//! `--name` both processes get, `/shm-bench-PID-N`): its shared memory is
//! `/dev/shm/shm-bench-PID-N.…` and its root folder (node and service
//! records) `/dev/shm/shm-bench-PID-N.iceoryx2/`, so the sweep that removes
//! a row's segments removes them too, and a killed run's are swept by the
//! next one. The orchestrator creates the services before it starts the
//! peer, which opens them; a side waits for its peer's port before the
//! first message, since iceoryx2 drops samples that no one subscribes to.

use std::time::{Duration, Instant};

use iceoryx2::port::client::Client;
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::server::Server;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::{publish_subscribe, request_response};

use crate::error::Error;
use crate::roundtrip::{check_response, REQUEST_BYTE};
use crate::strategy::{one_cpu, pid_exists};
use crate::throughput;

/// The request-response service of a row.
type RrService = request_response::PortFactory<ipc::Service, [u8], (), [u8], ()>;
/// A publish-subscribe service of a row.
type Topic = publish_subscribe::PortFactory<ipc::Service, [u8], ()>;
/// A publisher of byte samples.
type BytesPublisher = Publisher<ipc::Service, [u8], ()>;
/// A subscriber to byte samples.
type BytesSubscriber = Subscriber<ipc::Service, [u8], ()>;

/// The topic the orchestrator publishes on (and receives on, one way).
pub const PING: &str = "ping";
/// The topic the peer answers on (one way: where the orchestrator says "start").
pub const PONG: &str = "pong";
/// Samples a subscriber holds: what lets a one-way sender run ahead.
const BUFFER: usize = 64;

/// Whether this side makes the services (the orchestrator, before it
/// starts the peer) or opens them (the peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Create the services.
    Create,
    /// Open the services the other process created.
    Open,
}

/// Calls `try_once` until it returns a value, spinning between calls
/// (yielding when the two processes share a CPU); checks every 2^16 calls
/// that `peer` lives.
fn poll<T>(peer: u32, try_once: impl FnMut() -> Result<Option<T>, Error>) -> Result<T, Error> {
    poll_until(peer, None, try_once)
}

/// [`poll`], giving up after about `limit` if one is given, with an error
/// saying what it was waiting for. The clock is first read at the first
/// liveness check, so a call that succeeds within 2^16 tries never reads
/// it; the limit counts from there.
fn poll_until<T>(
    peer: u32,
    limit: Option<(Duration, &'static str)>,
    mut try_once: impl FnMut() -> Result<Option<T>, Error>,
) -> Result<T, Error> {
    let mut spins = 0u32;
    let mut deadline = None;
    loop {
        if let Some(value) = try_once()? {
            return Ok(value);
        }
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(1 << 16) {
            if !pid_exists(peer) {
                return Err(Error::Peer(format!("peer {peer} died")));
            }
            if let Some((limit, waiting_for)) = limit {
                let now = Instant::now();
                if now >= *deadline.get_or_insert(now + limit) {
                    return Err(Error::Peer(format!("still waiting for {waiting_for} after {limit:?}")));
                }
            }
        }
        if spins > 64 && one_cpu() {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// This process's node for the row `name`, with every file it makes under
/// that name (see the module docs).
fn node(name: &str) -> Result<Node<ipc::Service>, Error> {
    let base = name.trim_start_matches('/');
    let mut config = Config::default();
    config.global.prefix = FileName::new(format!("{base}.").as_bytes()).map_err(Error::shm("iceoryx2 file prefix"))?;
    let root = Path::new(format!("/dev/shm/{base}.iceoryx2/").as_bytes()).map_err(Error::shm("iceoryx2 root"))?;
    config.global.set_root_path(&root);
    NodeBuilder::new()
        .config(&config)
        // Leave SIGINT and SIGTERM to the benchmark.
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<ipc::Service>()
        .map_err(Error::shm("iceoryx2 node"))
}

/// The service `topic` of the row `name`.
fn service_name(name: &str, topic: &str) -> Result<ServiceName, Error> {
    ServiceName::new(&format!("{}/{topic}", name.trim_start_matches('/'))).map_err(Error::shm("iceoryx2 service name"))
}

/// The request-response service of the row `name`.
fn rr_service(node: &Node<ipc::Service>, name: &str, side: Side) -> Result<RrService, Error> {
    let builder = node.service_builder(&service_name(name, "rr")?).request_response::<[u8], [u8]>();
    match side {
        Side::Create => builder.create().map_err(Error::shm("iceoryx2 create request-response service")),
        Side::Open => builder.open().map_err(Error::shm("iceoryx2 open request-response service")),
    }
}

/// The publish-subscribe service `topic` of the row `name`: no sample is
/// ever dropped (a publisher with a full subscriber waits).
fn topic(node: &Node<ipc::Service>, name: &str, topic: &str, side: Side) -> Result<Topic, Error> {
    let builder = node
        .service_builder(&service_name(name, topic)?)
        .publish_subscribe::<[u8]>()
        .enable_safe_overflow(false)
        .subscriber_max_buffer_size(BUFFER);
    match side {
        Side::Create => builder.create().map_err(Error::shm("iceoryx2 create publish-subscribe service")),
        Side::Open => builder.open().map_err(Error::shm("iceoryx2 open publish-subscribe service")),
    }
}

/// The request-response client, on the orchestrator's side.
pub struct RrClient {
    client: Client<ipc::Service, [u8], (), [u8], ()>,
    service: RrService,
    _node: Node<ipc::Service>,
}

impl RrClient {
    /// Creates the row's service and a client for `size`-byte requests.
    pub fn create(name: &str, size: usize) -> Result<Self, Error> {
        let node = node(name)?;
        let service = rr_service(&node, name, Side::Create)?;
        let client =
            service.client_builder().initial_max_slice_len(size).create().map_err(Error::shm("iceoryx2 client"))?;
        Ok(Self { client, service, _node: node })
    }

    /// Waits until the peer's server is there.
    pub fn wait_for_server(&self, peer: u32) -> Result<(), Error> {
        poll(peer, || Ok((self.service.dynamic_config().number_of_servers() > 0).then_some(())))
    }

    /// One round trip: send a request, poll for its response, check it.
    pub fn round_trip(&self, size: usize, peer: u32) -> impl FnMut(u64) -> Result<(), Error> + '_ {
        let request = vec![REQUEST_BYTE; size];
        move |_| {
            let loan = self.client.loan_slice_uninit(size).map_err(Error::shm("iceoryx2 loan request"))?;
            let pending = loan.write_from_slice(&request).send().map_err(Error::shm("iceoryx2 send request"))?;
            let response = poll(peer, || pending.receive().map_err(Error::shm("iceoryx2 receive response")))?;
            check_response(response.payload(), response.payload().len(), size)
        }
    }
}

/// The request-response server, on the peer's side.
pub struct RrServer {
    server: Server<ipc::Service, [u8], (), [u8], ()>,
    _service: RrService,
    _node: Node<ipc::Service>,
}

impl RrServer {
    /// Opens the row's service and makes a server for `size`-byte responses.
    pub fn open(name: &str, size: usize) -> Result<Self, Error> {
        let node = node(name)?;
        let service = rr_service(&node, name, Side::Open)?;
        let server =
            service.server_builder().initial_max_slice_len(size).create().map_err(Error::shm("iceoryx2 server"))?;
        Ok(Self { server, _service: service, _node: node })
    }

    /// Serves one request: poll for it, answer with its bytes, the first flipped.
    pub fn serve(&self, parent: u32) -> impl FnMut(u64) -> Result<(), Error> + '_ {
        move |_| {
            let request = poll(parent, || self.server.receive().map_err(Error::shm("iceoryx2 receive request")))?;
            let len = request.payload().len();
            let loan = request.loan_slice_uninit(len).map_err(Error::shm("iceoryx2 loan response"))?;
            let mut response = loan.write_from_slice(request.payload());
            if let Some(b) = response.payload_mut().first_mut() {
                *b = !*b;
            }
            response.send().map_err(Error::shm("iceoryx2 send response"))
        }
    }
}

/// One side's publish-subscribe ends: a publisher on one topic and a
/// subscriber on another, or just one of them.
pub struct Topics {
    publisher: Option<(BytesPublisher, Topic)>,
    subscriber: Option<(BytesSubscriber, Topic)>,
    _node: Node<ipc::Service>,
}

impl Topics {
    /// Makes or opens (`side`) the row's services `publish` and
    /// `subscribe`, with a publisher of `size`-byte samples on the first
    /// and a subscriber on the second.
    pub fn new(
        name: &str,
        size: usize,
        side: Side,
        publish: Option<&str>,
        subscribe: Option<&str>,
    ) -> Result<Self, Error> {
        let node = node(name)?;
        let subscriber = match subscribe {
            Some(t) => {
                let service = topic(&node, name, t, side)?;
                let port = service.subscriber_builder().buffer_size(BUFFER).create();
                Some((port.map_err(Error::shm("iceoryx2 subscriber"))?, service))
            }
            None => None,
        };
        let publisher = match publish {
            Some(t) => {
                let service = topic(&node, name, t, side)?;
                let port = service
                    .publisher_builder()
                    .initial_max_slice_len(size)
                    .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
                    .create();
                Some((port.map_err(Error::shm("iceoryx2 publisher"))?, service))
            }
            None => None,
        };
        Ok(Self { publisher, subscriber, _node: node })
    }

    fn publisher(&self) -> Result<&BytesPublisher, Error> {
        self.publisher.as_ref().map(|(p, _)| p).ok_or_else(|| Error::Usage("no iceoryx2 publisher on this side".into()))
    }

    fn subscriber(&self) -> Result<&BytesSubscriber, Error> {
        let subscriber = self.subscriber.as_ref().map(|(s, _)| s);
        subscriber.ok_or_else(|| Error::Usage("no iceoryx2 subscriber on this side".into()))
    }

    /// Waits until the topic this side publishes on has the peer's subscriber.
    pub fn wait_for_subscriber(&self, peer: u32) -> Result<(), Error> {
        let (_, service) = self.publisher.as_ref().ok_or_else(|| Error::Usage("no iceoryx2 publisher".into()))?;
        poll(peer, || Ok((service.dynamic_config().number_of_subscribers() > 0).then_some(())))
    }

    /// One way, orchestrator side, before the first message: connect to
    /// the peer's publisher, then publish one sample that tells the peer to
    /// start. iceoryx2 drops a sample sent to a full buffer whose
    /// subscriber has not connected yet, so the sender waits for this.
    pub fn start_sender(&self, peer: u32) -> Result<(), Error> {
        let (subscriber, service) =
            self.subscriber.as_ref().ok_or_else(|| Error::Usage("no iceoryx2 subscriber".into()))?;
        poll(peer, || Ok((service.dynamic_config().number_of_publishers() > 0).then_some(())))?;
        subscriber.has_samples().map_err(Error::shm("iceoryx2 connect to the publisher"))?;
        self.wait_for_subscriber(peer)?;
        Self::publish(self.publisher()?, &[REQUEST_BYTE], REQUEST_BYTE)
    }

    /// One way, peer side: waits for the receiver's word to start (see
    /// [`start_sender`](Self::start_sender)).
    pub fn wait_for_start(&self, parent: u32) -> Result<(), Error> {
        let subscriber = self.subscriber()?;
        poll(parent, || subscriber.receive().map_err(Error::shm("iceoryx2 receive start"))).map(drop)
    }

    /// Publishes `bytes` with its first byte replaced by `first`.
    fn publish(publisher: &BytesPublisher, bytes: &[u8], first: u8) -> Result<(), Error> {
        let loan = publisher.loan_slice_uninit(bytes.len()).map_err(Error::shm("iceoryx2 loan sample"))?;
        let mut sample = loan.write_from_slice(bytes);
        if let Some(b) = sample.payload_mut().first_mut() {
            *b = first;
        }
        sample.send().map(drop).map_err(Error::shm("iceoryx2 send sample"))
    }

    /// Round trip, orchestrator side: publish a ping, poll for the pong.
    pub fn ping(&self, size: usize, peer: u32) -> Result<impl FnMut(u64) -> Result<(), Error> + '_, Error> {
        let (publisher, subscriber) = (self.publisher()?, self.subscriber()?);
        let request = vec![REQUEST_BYTE; size];
        Ok(move |_| {
            Self::publish(publisher, &request, REQUEST_BYTE)?;
            let pong = poll(peer, || subscriber.receive().map_err(Error::shm("iceoryx2 receive pong")))?;
            check_response(pong.payload(), pong.payload().len(), size)
        })
    }

    /// Round trip, peer side: poll for a ping, publish it back flipped.
    pub fn pong(&self, parent: u32) -> Result<impl FnMut(u64) -> Result<(), Error> + '_, Error> {
        let (publisher, subscriber) = (self.publisher()?, self.subscriber()?);
        Ok(move |_| {
            let ping = poll(parent, || subscriber.receive().map_err(Error::shm("iceoryx2 receive ping")))?;
            let first = ping.payload().first().map_or(0, |b| !b);
            Self::publish(publisher, ping.payload(), first)
        })
    }

    /// One way, peer side: publish message `i` (`size` bytes, the first `i as u8`),
    /// written in place in the loaned sample word by word, as the queue's
    /// zero-copy row writes its grants (not copied from a local buffer).
    pub fn sender(&self, size: usize) -> Result<impl FnMut(u64) -> Result<(), Error> + '_, Error> {
        let publisher = self.publisher()?;
        Ok(move |i| {
            let mut loan = publisher.loan_slice_uninit(size).map_err(Error::shm("iceoryx2 loan sample"))?;
            throughput::produce_uninit(loan.payload_mut(), i);
            // SAFETY: `produce_uninit` wrote every byte of the payload.
            let sample = unsafe { loan.assume_init() };
            sample.send().map(drop).map_err(Error::shm("iceoryx2 send sample"))
        })
    }

    /// One way, orchestrator side: poll for message `i` and check it.
    pub fn receiver(&self, size: usize, peer: u32) -> Result<impl FnMut(u64) -> Result<(), Error> + '_, Error> {
        let subscriber = self.subscriber()?;
        Ok(move |i| {
            let sample = poll(peer, || subscriber.receive().map_err(Error::shm("iceoryx2 receive sample")))?;
            throughput::check(sample.payload(), size, i)?;
            // Read every byte in place, as the queue's zero-copy row does:
            // checking the first byte alone leaves the rest of the message
            // in the publisher's cache, never moved to this CPU.
            std::hint::black_box(throughput::consume(sample.payload()));
            Ok(())
        })
    }
}

/// The fan-out rows' service (`--fanout`, see `fanout`): one publisher
/// process, N subscriber processes, no sample lost.
///
/// # Design
///
/// Lossless, like the shm broadcast channel's block policy it is set
/// beside: safe overflow off and the publisher's backpressure strategy
/// `RetryUntilDelivered`, so a publisher facing a full subscriber buffer
/// waits in `send` (iceoryx2's own adaptive wait: it yields 10 000 times,
/// then sleeps 100 µs, later 10 ms, between retries). Each subscriber's
/// buffer holds `buffer` samples, as many as the broadcast ring of the same
/// table holds messages, so both let the same queue build up. Subscribers
/// poll (busy loop, yielding when a CPU is shared), like every iceoryx2
/// row; there is no event service.
///
/// The orchestrator creates the service for exactly N subscribers
/// (`max_subscribers`), and the publisher reads N back from it. Every
/// connection is made before the first message: a subscriber waits for the
/// publisher and connects before it says it is ready, the publisher waits
/// for all N subscribers and connects to them before it does.
pub struct Fanout {
    service: Topic,
    _node: Node<ipc::Service>,
}

impl Fanout {
    /// The orchestrator's side: creates the row's service for `readers`
    /// subscribers of `buffer` samples each.
    pub fn create(name: &str, readers: usize, buffer: usize) -> Result<Self, Error> {
        let node = node(name)?;
        let service = node
            .service_builder(&service_name(name, "fanout")?)
            .publish_subscribe::<[u8]>()
            .enable_safe_overflow(false)
            .subscriber_max_buffer_size(buffer)
            .max_subscribers(readers)
            .max_publishers(1)
            // The orchestrator's, the publisher's and each subscriber's.
            .max_nodes(readers + 2)
            .create()
            .map_err(Error::shm("iceoryx2 create fan-out service"))?;
        Ok(Self { service, _node: node })
    }

    /// A peer's side: opens the service the orchestrator created (and
    /// fails if it would drop samples).
    pub fn open(name: &str) -> Result<Self, Error> {
        let node = node(name)?;
        let service = node
            .service_builder(&service_name(name, "fanout")?)
            .publish_subscribe::<[u8]>()
            .enable_safe_overflow(false)
            .open()
            .map_err(Error::shm("iceoryx2 open fan-out service"))?;
        Ok(Self { service, _node: node })
    }

    /// The publisher of `size`-byte samples, connected to every subscriber
    /// (waits for all of them, giving up after `limit` or if `parent` dies).
    pub fn publisher(&self, size: usize, parent: u32, limit: Duration) -> Result<FanoutPublisher, Error> {
        let port = self
            .service
            .publisher_builder()
            .initial_max_slice_len(size)
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()
            .map_err(Error::shm("iceoryx2 publisher"))?;
        let readers = self.service.static_config().max_subscribers();
        poll_until(parent, Some((limit, "all the subscribers")), || {
            Ok((self.service.dynamic_config().number_of_subscribers() >= readers).then_some(()))
        })?;
        port.update_connections().map_err(Error::shm("iceoryx2 connect to the subscribers"))?;
        Ok(FanoutPublisher { port, readers })
    }

    /// A subscriber, connected to the publisher (waits for it, giving up
    /// after `limit` or if `parent` dies).
    pub fn subscriber(&self, parent: u32, limit: Duration) -> Result<FanoutSubscriber, Error> {
        let buffer = self.service.static_config().subscriber_max_buffer_size();
        let port = self
            .service
            .subscriber_builder()
            .buffer_size(buffer)
            .create()
            .map_err(Error::shm("iceoryx2 subscriber"))?;
        poll_until(parent, Some((limit, "the publisher")), || {
            Ok((self.service.dynamic_config().number_of_publishers() > 0).then_some(()))
        })?;
        port.update_connections().map_err(Error::shm("iceoryx2 connect to the publisher"))?;
        Ok(FanoutSubscriber { port, parent })
    }
}

/// The publisher of a fan-out row.
pub struct FanoutPublisher {
    port: BytesPublisher,
    readers: usize,
}

impl FanoutPublisher {
    /// Publishes `msg` to every subscriber, waiting while one's buffer is
    /// full; an error if any did not get it.
    pub fn publish(&self, msg: &[u8]) -> Result<(), Error> {
        let loan = self.port.loan_slice_uninit(msg.len()).map_err(Error::shm("iceoryx2 loan sample"))?;
        let reached = loan.write_from_slice(msg).send().map_err(Error::shm("iceoryx2 send sample"))?;
        if reached != self.readers {
            return Err(Error::Peer(format!("a sample reached {reached} of {} subscribers", self.readers)));
        }
        Ok(())
    }
}

/// A subscriber of a fan-out row.
pub struct FanoutSubscriber {
    port: BytesSubscriber,
    parent: u32,
}

impl FanoutSubscriber {
    /// Polls for the next sample and copies it into `msg`; an error if it
    /// is not `msg.len()` bytes, or if none comes within `limit`.
    pub fn recv(&self, msg: &mut [u8], limit: Duration) -> Result<(), Error> {
        let sample = poll_until(self.parent, Some((limit, "a sample")), || {
            self.port.receive().map_err(Error::shm("iceoryx2 receive sample"))
        })?;
        let payload = sample.payload();
        if payload.len() != msg.len() {
            return Err(Error::WrongData(format!("a {}-byte sample where {} were due", payload.len(), msg.len())));
        }
        msg.copy_from_slice(payload);
        Ok(())
    }
}
