//! `parley compose`: prints each subgraph's federation SDL from its schema (no server needed) into
//! `schema/<name>.graphql`, then composes `schema/supergraph.graphql` with `@theguild/federation-composition`
//! and checks it with Apollo's `@apollo/composition` too (either composer's error fails; both pinned in
//! `compose/package-lock.json`, run by node). `--check` fails if a checked-in file is stale.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use parley::subgraphs;

pub fn run(root: &Path, check: bool) -> anyhow::Result<()> {
    let mut specs = Vec::new();
    let mut stale = Vec::new();
    for subgraph in subgraphs::ALL {
        let (name, sdl) = (subgraph.name(), subgraph.sdl());
        let path = root.join("schema").join(format!("{name}.graphql"));
        write_or_check(&path, &sdl, check, &mut stale)?;
        // The URL it has in the checked-in supergraph: its own port, whatever its place in the registry
        // (routers override it at start).
        let url = format!("http://127.0.0.1:{}/graphql", subgraph.port());
        specs.push(serde_json::json!({ "name": name, "url": url, "sdl": sdl }));
    }
    let supergraph = compose(root, &serde_json::Value::Array(specs))?;
    write_or_check(
        &root.join("schema/supergraph.graphql"),
        &supergraph,
        check,
        &mut stale,
    )?;
    if !stale.is_empty() {
        bail!("out of date (run `parley compose`): {}", stale.join(", "));
    }
    Ok(())
}

fn write_or_check(
    path: &Path,
    text: &str,
    check: bool,
    stale: &mut Vec<String>,
) -> anyhow::Result<()> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current == text {
        return Ok(());
    }
    if check {
        stale.push(path.display().to_string());
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Runs the composer; installs its pinned packages first if they are missing.
pub fn compose(root: &Path, specs: &serde_json::Value) -> anyhow::Result<String> {
    let dir = root.join("compose");
    let installed = ["@theguild/federation-composition", "@apollo/composition"]
        .iter()
        .all(|package| dir.join("node_modules").join(package).is_dir());
    if !installed {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&dir)
            .status()
            .context("running npm ci in compose/ (is node installed?)")?;
        if !status.success() {
            bail!("npm ci failed in {}", dir.display());
        }
    }
    let mut child = Command::new("node")
        .arg("compose.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running node (is it installed?)")?;
    child
        .stdin
        .take()
        .context("composer stdin")?
        .write_all(specs.to_string().as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "composition failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}
