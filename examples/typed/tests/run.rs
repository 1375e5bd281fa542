//! The typed pipeline runs end to end as two processes: every typed call
//! and sample checked, the stream closed cleanly, nothing left behind.

#[test]
fn the_typed_pipeline_checks_every_message_and_ends_with_a_clean_close() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_typed-pipeline")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("every one checked; the stream ended with a clean close"), "{text}");
}
