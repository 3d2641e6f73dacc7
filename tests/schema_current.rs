//! The checked-in schema files must be what `parley compose` produces now.

use std::process::Command;

#[test]
fn checked_in_schema_is_current() {
    let output = Command::new(env!("CARGO_BIN_EXE_parley"))
        .args(["compose", "--check", "--root", env!("CARGO_MANIFEST_DIR")])
        .output()
        .expect("run parley compose");
    assert!(
        output.status.success(),
        "schema/ is stale; run `cargo run -- compose`:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
