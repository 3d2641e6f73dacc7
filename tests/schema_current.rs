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

/// Composition fails on either composer's error: the checked-in subgraphs with users' `@shareable` taken off
/// `User.nickname` (which chat `@provides`) compose under the Guild's composer but not Apollo's, and
/// `compose/compose.mjs` refuses them, naming Apollo's composer.
#[test]
fn an_sdl_only_apollo_refuses_fails_composition() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let specs: Vec<serde_json::Value> = parley::subgraphs::ALL
        .iter()
        .map(|subgraph| {
            let mut sdl = subgraph.sdl();
            if subgraph.name() == "users" {
                let shareable = "nickname: String! @shareable";
                assert!(sdl.contains(shareable), "users shares nickname");
                sdl = sdl.replace(shareable, "nickname: String!");
            }
            let url = format!("http://127.0.0.1:{}/graphql", subgraph.port());
            serde_json::json!({ "name": subgraph.name(), "url": url, "sdl": sdl })
        })
        .collect();
    let mut child = Command::new("node")
        .arg("compose.mjs")
        .current_dir(root.join("compose"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::Value::Array(specs).to_string().as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("composer");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "composed anyway");
    assert!(
        stderr.contains("@apollo/composition: Non-shareable field \"User.nickname\""),
        "{stderr}"
    );
    assert!(
        !stderr.contains("@theguild"),
        "the Guild's composer accepts it: {stderr}"
    );
}

/// The values of `enum <name>` in an SDL (descriptions skipped).
fn enum_values(sdl: &str, name: &str) -> Vec<String> {
    let start = sdl
        .find(&format!("enum {name} {{"))
        .unwrap_or_else(|| panic!("no enum {name}"));
    let body = &sdl[start..];
    let body = &body[body.find('{').expect("{") + 1..body.find('}').expect("}")];
    let mut values = Vec::new();
    let mut in_description = false;
    for line in body.lines().map(str::trim) {
        if line.starts_with("\"\"\"") {
            // A one-line description opens and closes on the same line.
            in_description = !(in_description || line.len() > 3 && line.ends_with("\"\"\""));
            continue;
        }
        if !in_description && !line.is_empty() {
            values.push(line.to_string());
        }
    }
    values
}

/// feed declares posts' `PostSort` again for its `feed(sort:)` argument; federation needs the two identical.
#[test]
fn feeds_post_sort_is_posts_post_sort() {
    let sdl = |name: &str| parley::subgraphs::find(name).expect("registered").sdl();
    let posts = enum_values(&sdl("posts"), "PostSort");
    assert_eq!(posts, ["HOT", "NEW", "TOP", "CONTROVERSIAL"]);
    assert_eq!(enum_values(&sdl("feed"), "PostSort"), posts);
}
