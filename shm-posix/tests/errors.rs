//! The errors of shm-posix are standard errors whose `source()` leads to
//! the error inside, and whose messages name the segment.

use std::error::Error;
use std::time::Duration;

use shm_posix::{CreateError, NameError, OpenError, Segment};

/// Removes the file on drop, so a failing assertion leaves nothing behind.
struct Planted(std::path::PathBuf);

impl Drop for Planted {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn open_of_a_foreign_object_chains_to_the_core_error() {
    let name = format!("/errors-foreign-{}", std::process::id());
    let planted = Planted(format!("/dev/shm{name}").into());
    std::fs::write(&planted.0, vec![0xab; 4096]).unwrap();

    let err = Segment::open(&name, Duration::ZERO).unwrap_err();
    assert!(matches!(err, OpenError::Core { source: shm_core::OpenError::BadMagic, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with(&format!("cannot open segment {name}: bad magic number")), "{text}");
    let inner = err.source().and_then(|e| e.downcast_ref::<shm_core::OpenError>());
    assert_eq!(inner, Some(&shm_core::OpenError::BadMagic));
}

#[test]
fn a_refused_name_chains_to_the_name_error() {
    let layout = shm_core::Layout::new().queue("q", 64).unwrap();
    let err = Segment::create("a/b", &layout).unwrap_err();
    assert!(matches!(err, CreateError::Name(_)), "{err:?}");
    let inner = err.source().and_then(|e| e.downcast_ref::<NameError>());
    assert_eq!(inner, Some(&NameError::Slash { at: 1 }));
}

#[test]
fn errors_convert_into_a_boxed_error_with_question_mark() {
    fn open_missing(name: &str) -> Result<Segment, Box<dyn Error + Send + Sync>> {
        Ok(Segment::open(name, Duration::ZERO)?)
    }
    let name = format!("/errors-missing-{}", std::process::id());
    let err = open_missing(&name).unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with(&format!("no segment named {name} appeared within the timeout: ")), "{text}");
}
