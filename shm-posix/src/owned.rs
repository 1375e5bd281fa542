//! Endpoints that own their segment: a client, server, producer, consumer,
//! publisher or subscriber that can live in a struct next to nothing else,
//! be returned from a function, or be moved to another thread, while the
//! mapping stays alive as long as any endpoint uses it.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use shm_core::Layout;
//! use shm_posix::{FutexWait, OwnedConsumer, OwnedProducer, Segment};
//!
//! /// A reader that holds its own channel: no borrowed segment to carry.
//! struct Reader {
//!     rx: OwnedConsumer<FutexWait>,
//! }
//!
//! let name = format!("/doc-owned-{}", std::process::id());
//! let segment = Arc::new(Segment::create(&name, &Layout::new().queue("log", 4096).unwrap()).unwrap());
//! let mut tx: OwnedProducer<FutexWait> = Segment::owned_producer(&segment, "log", FutexWait::new()).unwrap();
//! let mut reader = Reader { rx: Segment::owned_consumer(&segment, "log", FutexWait::new()).unwrap() };
//! drop(segment); // the endpoints keep the mapping alive
//!
//! tx.send(b"hello").unwrap();
//! let mut buf = [0u8; 16];
//! let n = reader.rx.recv_timeout(&mut buf, Duration::from_secs(1)).unwrap();
//! assert_eq!(&buf[..n], b"hello");
//! ```
//!
//! # Design
//!
//! An owned endpoint is the borrowed one from `shm-core` with its lifetime
//! extended to `'static`, next to an `Arc<Segment>`. That is sound because
//! the endpoint's views point into the mapping, which the `Arc` keeps until
//! the endpoint has dropped (it is declared first, so it drops first), and
//! because no endpoint method hands out anything that lives longer than a
//! borrow of the endpoint itself. The owned types give shared access to the
//! endpoint (`Deref`) and forward the `&mut self` methods, but never hand out
//! `&mut` to it: with that, safe code could swap the endpoints of two
//! segments and drop a mapping an endpoint still uses.
//!
//! ```compile_fail
//! # use std::sync::Arc;
//! # use shm_posix::{FutexWait, Segment};
//! fn swap(a: &Arc<Segment>, b: &Arc<Segment>) {
//!     let mut pa = Segment::owned_producer(a, "q", FutexWait::new()).unwrap();
//!     let mut pb = Segment::owned_producer(b, "q", FutexWait::new()).unwrap();
//!     std::mem::swap(&mut *pa, &mut *pb); // no `DerefMut`: refused
//! }
//! ```

#![allow(unsafe_code)]

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use shm_core::broadcast::{Loan, Message, Publisher, Subscriber};
use shm_core::direct::{DirectClient, DirectServer, Request};
use shm_core::mailbox::{Client, Server};
use shm_core::queue::{Consumer, Producer};
use shm_core::queue::{ReadGrant, WriteGrant};
use shm_core::{CallError, ClaimError, RecvError, SendError, ServeError, Wait};

use crate::Segment;

macro_rules! owned {
    ($(#[$doc:meta])* $name:ident, $inner:ident, $make:ident, $core:ident) => {
        $(#[$doc])*
        pub struct $name<W: Wait> {
            // Field order: the endpoint drops before the segment it uses.
            endpoint: $inner<'static, W>,
            segment: Arc<Segment>,
        }

        impl<W: Wait> $name<W> {
            /// The segment this endpoint keeps alive.
            pub fn segment(&self) -> &Arc<Segment> {
                &self.segment
            }
        }

        impl<W: Wait> Deref for $name<W> {
            type Target = $inner<'static, W>;
            fn deref(&self) -> &Self::Target {
                &self.endpoint
            }
        }

        impl<W: Wait> std::fmt::Debug for $name<W> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).field("segment", &self.segment.name()).finish_non_exhaustive()
            }
        }

        impl Segment {
            #[doc = concat!("An owned [`", stringify!($inner), "`] of channel `name`, keeping `segment` mapped as long as it lives.")]
            pub fn $make<W: Wait>(segment: &Arc<Segment>, name: &str, wait: W) -> Result<$name<W>, ClaimError> {
                // SAFETY: the endpoint borrows the segment only to reach views
                // into the mapping, which `segment` (an `Arc`, cloned into the
                // returned struct and dropped after the endpoint, per the
                // field order) keeps mapped; the `Segment` itself lives in the
                // `Arc` allocation and never moves. No endpoint method returns
                // anything that outlives a borrow of the endpoint, so the
                // `'static` never escapes.
                let seg: &'static Segment = unsafe { &*Arc::as_ptr(segment) };
                // The claim through the name (see `Segment::producer`).
                let endpoint = seg.$core(name, wait)?;
                Ok($name { endpoint, segment: Arc::clone(segment) })
            }
        }
    };
}

owned!(
    /// A mailbox [`Client`] that owns its segment (see [`crate::owned`]).
    OwnedClient, Client, owned_client, client
);
owned!(
    /// A mailbox [`Server`] that owns its segment (see [`crate::owned`]).
    OwnedServer, Server, owned_server, server
);
owned!(
    /// A queue [`Producer`] that owns its segment (see [`crate::owned`]).
    OwnedProducer, Producer, owned_producer, producer
);
owned!(
    /// A queue [`Consumer`] that owns its segment (see [`crate::owned`]).
    OwnedConsumer, Consumer, owned_consumer, consumer
);

owned!(
    /// A direct mailbox [`shm_core::direct::Client`](DirectClient) that owns its segment (see
    /// [`crate::owned`]).
    OwnedDirectClient, DirectClient, owned_direct_client, direct_client
);
owned!(
    /// A direct mailbox [`shm_core::direct::Server`](DirectServer) that owns its segment (see
    /// [`crate::owned`]).
    OwnedDirectServer, DirectServer, owned_direct_server, direct_server
);
owned!(
    /// A broadcast [`Publisher`] that owns its segment (see
    /// [`crate::owned`]).
    OwnedPublisher, Publisher, owned_publisher, publisher
);
owned!(
    /// A broadcast [`Subscriber`] that owns its segment (see
    /// [`crate::owned`]).
    OwnedSubscriber, Subscriber, owned_subscriber, subscriber
);

impl Segment {
    /// An owned [`shm_core::direct::Client`](DirectClient) of channel `name`, waiting at most
    /// `timeout` for a slot (see [`Segment::direct_client_timeout`]),
    /// keeping `segment` mapped as long as it lives.
    pub fn owned_direct_client_timeout<W: Wait>(
        segment: &Arc<Segment>,
        name: &str,
        wait: W,
        timeout: Duration,
    ) -> Result<OwnedDirectClient<W>, ClaimError> {
        // SAFETY: as in `owned!`'s constructors: the `Arc` cloned into the
        // returned struct keeps the mapping, and drops after the endpoint.
        let seg: &'static Segment = unsafe { &*Arc::as_ptr(segment) };
        let endpoint = seg.direct_client_timeout(name, wait, timeout)?;
        Ok(OwnedDirectClient { endpoint, segment: Arc::clone(segment) })
    }
}

impl<W: Wait> OwnedDirectClient<W> {
    /// [`shm_core::direct::Client::call_timeout`](DirectClient::call_timeout).
    pub fn call_timeout(&mut self, request: &[u8], response: &mut [u8], timeout: Duration) -> Result<usize, CallError> {
        self.endpoint.call_timeout(request, response, timeout)
    }

    /// [`shm_core::direct::Client::call`](DirectClient::call).
    pub fn call(&mut self, request: &[u8], response: &mut [u8]) -> Result<usize, CallError> {
        self.endpoint.call(request, response)
    }
}

impl<W: Wait> OwnedDirectServer<W> {
    /// [`shm_core::direct::Server::try_recv`](DirectServer::try_recv).
    pub fn try_recv(&mut self) -> Result<Request<'_, 'static, W>, ServeError> {
        self.endpoint.try_recv()
    }

    /// [`shm_core::direct::Server::recv_timeout`](DirectServer::recv_timeout).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Request<'_, 'static, W>, ServeError> {
        self.endpoint.recv_timeout(timeout)
    }

    /// [`shm_core::direct::Server::recv`](DirectServer::recv).
    pub fn recv(&mut self) -> Result<Request<'_, 'static, W>, ServeError> {
        self.endpoint.recv()
    }

    /// [`shm_core::direct::Server::serve_timeout`](DirectServer::serve_timeout).
    pub fn serve_timeout(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(&mut [u8], usize) -> usize,
    ) -> Result<(), ServeError> {
        self.endpoint.serve_timeout(timeout, f)
    }
}

impl<W: Wait> OwnedPublisher<W> {
    /// [`Publisher::try_loan`].
    pub fn try_loan(&mut self, len: usize) -> Result<Loan<'_, 'static, W>, SendError> {
        self.endpoint.try_loan(len)
    }

    /// [`Publisher::loan_timeout`].
    pub fn loan_timeout(&mut self, len: usize, timeout: Duration) -> Result<Loan<'_, 'static, W>, SendError> {
        self.endpoint.loan_timeout(len, timeout)
    }

    /// [`Publisher::try_publish`].
    pub fn try_publish(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.endpoint.try_publish(msg)
    }

    /// [`Publisher::publish_timeout`].
    pub fn publish_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError> {
        self.endpoint.publish_timeout(msg, timeout)
    }
}

impl<W: Wait> OwnedSubscriber<W> {
    /// [`Subscriber::try_recv`].
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.endpoint.try_recv(buf)
    }

    /// [`Subscriber::recv_timeout`].
    pub fn recv_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, RecvError> {
        self.endpoint.recv_timeout(buf, timeout)
    }

    /// [`Subscriber::try_read`].
    pub fn try_read(&mut self) -> Result<Message<'_, 'static, W>, RecvError> {
        self.endpoint.try_read()
    }

    /// [`Subscriber::read_timeout`].
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<Message<'_, 'static, W>, RecvError> {
        self.endpoint.read_timeout(timeout)
    }
}

impl<W: Wait> OwnedProducer<W> {
    /// [`Producer::try_grant`].
    pub fn try_grant(&mut self, len: usize) -> Result<WriteGrant<'_, 'static, W>, SendError> {
        self.endpoint.try_grant(len)
    }

    /// [`Producer::grant_timeout`].
    pub fn grant_timeout(&mut self, len: usize, timeout: Duration) -> Result<WriteGrant<'_, 'static, W>, SendError> {
        self.endpoint.grant_timeout(len, timeout)
    }

    /// [`Producer::grant`].
    pub fn grant(&mut self, len: usize) -> Result<WriteGrant<'_, 'static, W>, SendError> {
        self.endpoint.grant(len)
    }

    /// [`Producer::try_send`].
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.endpoint.try_send(msg)
    }

    /// [`Producer::send_timeout`].
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError> {
        self.endpoint.send_timeout(msg, timeout)
    }

    /// [`Producer::send`].
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.endpoint.send(msg)
    }
}

impl<W: Wait> OwnedConsumer<W> {
    /// [`Consumer::try_read`].
    pub fn try_read(&mut self) -> Result<ReadGrant<'_, 'static, W>, RecvError> {
        self.endpoint.try_read()
    }

    /// [`Consumer::read_timeout`].
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<ReadGrant<'_, 'static, W>, RecvError> {
        self.endpoint.read_timeout(timeout)
    }

    /// [`Consumer::read`].
    pub fn read(&mut self) -> Result<ReadGrant<'_, 'static, W>, RecvError> {
        self.endpoint.read()
    }

    /// [`Consumer::try_recv`].
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.endpoint.try_recv(buf)
    }

    /// [`Consumer::recv_timeout`].
    pub fn recv_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, RecvError> {
        self.endpoint.recv_timeout(buf, timeout)
    }

    /// [`Consumer::recv`].
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.endpoint.recv(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FutexWait;
    use shm_core::Layout;
    use std::time::Duration;

    /// A server and a client that outlive every other handle to their
    /// segment, on two threads; the name goes with the last of them.
    #[test]
    fn owned_endpoints_keep_the_mapping_alive() {
        let name = format!("/owned-test-{}", std::process::id());
        let layout = Layout::new().mailbox("rpc", 2, 64).unwrap();
        let segment = Arc::new(Segment::create(&name, &layout).unwrap());
        let server = Segment::owned_server(&segment, "rpc", FutexWait::new()).unwrap();
        let client = Segment::owned_client(&segment, "rpc", FutexWait::new()).unwrap();
        drop(segment);
        let served = std::thread::spawn(move || {
            server.serve_timeout(Duration::from_secs(30), |buf, n| {
                buf[..n].make_ascii_uppercase();
                n
            })
        });
        let mut out = [0u8; 64];
        let n = client.call_timeout(b"owned", &mut out, Duration::from_secs(30)).unwrap();
        assert_eq!(&out[..n], b"OWNED");
        served.join().unwrap().unwrap();
        assert!(std::path::Path::new(&format!("/dev/shm{name}")).exists(), "the client still maps it");
        drop(client);
        assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists(), "unlinked with the last endpoint");
    }

    /// The direct mailbox and broadcast endpoints too (new-user review,
    /// 2026-12-03: only the mailbox and queue had owned endpoints, so a
    /// subscriber could not live in a struct of its own).
    #[test]
    fn owned_direct_and_broadcast_endpoints_keep_the_mapping_alive() {
        use shm_core::broadcast::Policy;
        let name = format!("/owned-test-direct-{}", std::process::id());
        let layout = Layout::new().direct("rpc", 2, 64).unwrap().broadcast("news", 4096, 2, Policy::Block).unwrap();
        let segment = Arc::new(Segment::create(&name, &layout).unwrap());
        let mut server = Segment::owned_direct_server(&segment, "rpc", FutexWait::new()).unwrap();
        let mut client = Segment::owned_direct_client(&segment, "rpc", FutexWait::new()).unwrap();
        let second = Segment::owned_direct_client_timeout(&segment, "rpc", FutexWait::new(), Duration::from_secs(30));
        assert_eq!(second.unwrap().slot(), 1, "the other slot");
        let mut publisher = Segment::owned_publisher(&segment, "news", FutexWait::new()).unwrap();
        let mut subscriber = Segment::owned_subscriber(&segment, "news", FutexWait::new()).unwrap();
        drop(segment);
        let served = std::thread::spawn(move || {
            server.serve_timeout(Duration::from_secs(30), |buf, n| {
                buf[..n].make_ascii_uppercase();
                n
            })
        });
        let mut out = [0u8; 64];
        let n = client.call_timeout(b"direct", &mut out, Duration::from_secs(30)).unwrap();
        assert_eq!(&out[..n], b"DIRECT");
        served.join().unwrap().unwrap();
        let received = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let n = subscriber.recv_timeout(&mut buf, Duration::from_secs(30)).unwrap();
            buf[..n].to_vec()
        });
        let mut loan = publisher.loan_timeout(4, Duration::from_secs(30)).unwrap();
        loan.write(b"news");
        loan.commit();
        assert_eq!(received.join().unwrap(), b"news");
        drop((client, publisher));
        assert!(!std::path::Path::new(&format!("/dev/shm{name}")).exists(), "unlinked with the last endpoint");
    }
}
