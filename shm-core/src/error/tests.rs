//! Error messages and kinds: what a reader of a log sees.

use crate::error::{CallError, ChannelName, ClaimError, Corruption, OpenError, RecvError, Role, SendError, ServeError};
use crate::mock::ThreadWait;
use crate::test_support::{busy, fresh, open};

/// A claim error names the channel, what is wrong and what to do.
#[test]
fn claim_errors_name_the_channel_and_the_remedy() {
    let memory = fresh();
    let seg = open(&memory).unwrap();
    let _rx = seg.consumer("q", ThreadWait::new(2)).unwrap();
    let busy = seg.consumer("q", ThreadWait::new(3)).err().unwrap().to_string();
    assert_eq!(
        busy,
        "queue `q` already has a consumer, live peer 2, and a queue has one consumer by design: \
         stop that consumer first, or declare another channel for this one"
    );
    let _server = seg.server("m", ThreadWait::new(2)).unwrap();
    let busy = seg.server("m", ThreadWait::new(3)).err().unwrap().to_string();
    assert!(busy.starts_with("mailbox `m` already has a server, live peer 2, and a mailbox has one server"), "{busy}");
    let missing = seg.producer("nope", ThreadWait::new(2)).err().unwrap().to_string();
    assert!(missing.starts_with("no channel named `nope` in the segment: "), "{missing}");
    let wrong = seg.server("q", ThreadWait::new(2)).err().unwrap().to_string();
    assert!(wrong.starts_with("channel `q` is a queue, not a mailbox: "), "{wrong}");
}

/// Every error is a `core::error::Error` with a kind, so `?` lifts it into
/// a `Box<dyn Error>`, and its message reads as a sentence: lowercase, no
/// trailing period.
#[test]
fn errors_are_standard_errors_with_lowercase_messages() {
    use crate::error::{CreateError, ErrorKind, HasErrorKind, LayoutError, SemaphoreError};
    fn boxed<E: HasErrorKind + Send + Sync + 'static>(e: E) -> (ErrorKind, std::boxed::Box<dyn std::error::Error>) {
        (e.kind(), std::boxed::Box::new(e))
    }
    let at = Corruption::channel(0, "head");
    let all = [
        boxed(LayoutError::DuplicateName),
        boxed(CreateError::RegionTooSmall { needed: 2, actual: 1 }),
        boxed(OpenError::NotReady),
        boxed(OpenError::Corrupted(Corruption::header("state"))),
        boxed(busy("q", Role::Producer, 7)),
        boxed(ClaimError::Corrupted { channel: ChannelName::default(), at }),
        boxed(SemaphoreError::Timeout),
        boxed(SendError::Full),
        boxed(RecvError::BufferTooSmall { needed: 9 }),
        boxed(RecvError::SlotLost),
        boxed(CallError::Dropped),
        boxed(ServeError::Replaced),
        boxed(ErrorKind::PeerDied),
    ];
    for (kind, e) in &all {
        let text = e.to_string();
        let first = text.chars().next().unwrap();
        assert!(!first.is_uppercase() && !text.ends_with('.'), "{kind:?}: {text}");
        assert!(text.contains(':') || matches!(kind, ErrorKind::PeerDied), "says what to do: {text}");
    }
    assert_eq!(ChannelName::new(&"é".repeat(20)).as_str().len(), 30, "cut on a character boundary");
}
