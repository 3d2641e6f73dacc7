//! Builds the GraphiQL page from `graphiql/` (an npm project pinned by its lockfile) and embeds it: copies
//! the project into `OUT_DIR`, runs `npm ci` there (again only when the lockfile changes) and `vite build`,
//! then writes `graphiql_assets.rs`, a table of every built file for `include_bytes!`. The binary so serves
//! the page with no internet; building it needs the npm registry (or its cache) once, as the engine's own
//! laboratory page does. `PARLEY_GRAPHIQL_DIST` names an already built `dist/` to embed instead.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// The project's files, relative to `graphiql/`, besides everything under `src/` (`node_modules/` is never
/// copied).
const TOP_FILES: &[&str] = &[
    "package.json",
    "package-lock.json",
    "vite.config.js",
    "index.html",
];

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-env-changed=PARLEY_GRAPHIQL_DIST");
    let dist = match env::var_os("PARLEY_GRAPHIQL_DIST") {
        Some(dist) => PathBuf::from(dist),
        None => build(&manifest.join("graphiql"), &out.join("graphiql")),
    };
    fs::write(out.join("graphiql_assets.rs"), table(&dist)).expect("write graphiql_assets.rs");
}

/// Copies the project to `work`, installs and builds it; returns its `dist/`.
fn build(project: &Path, work: &Path) -> PathBuf {
    let mut sources: Vec<String> = TOP_FILES.iter().map(|name| name.to_string()).collect();
    collect(project, &project.join("src"), &mut sources);
    println!("cargo:rerun-if-changed={}", project.join("src").display());
    let _ = fs::remove_dir_all(work.join("src"));
    for name in &sources {
        let from = project.join(name);
        println!("cargo:rerun-if-changed={}", from.display());
        let to = work.join(name);
        fs::create_dir_all(to.parent().expect("a parent")).expect("create the build dir");
        fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    }
    // `npm ci` wipes node_modules: run it only when the lockfile differs from the one installed.
    let lock = fs::read(work.join("package-lock.json")).expect("package-lock.json");
    let stamp = work.join("node_modules/.parley-lock");
    if fs::read(&stamp).ok().as_deref() != Some(lock.as_slice()) {
        run(
            Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--include=dev"]),
            work,
        );
        fs::write(&stamp, &lock).expect("write the lock stamp");
    }
    let dist = work.join("dist");
    let _ = fs::remove_dir_all(&dist);
    run(
        Command::new("node").args([
            "node_modules/vite/bin/vite.js",
            "build",
            "--logLevel",
            "error",
        ]),
        work,
    );
    dist
}

fn run(command: &mut Command, dir: &Path) {
    let status = command
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("{command:?} (is Node.js installed?): {e}"));
    assert!(status.success(), "{command:?} failed in {}", dir.display());
}

/// `PAGE` (the built `index.html`) and `FILES`: every other built file as (path under `dist/`, bytes).
fn table(dist: &Path) -> String {
    let mut files = Vec::new();
    collect(dist, dist, &mut files);
    files.sort();
    let mut code = format!(
        "pub const PAGE: &str = include_str!({:?});\npub const FILES: &[(&str, &[u8])] = &[\n",
        dist.join("index.html").display().to_string()
    );
    for name in files.iter().filter(|name| *name != "index.html") {
        let path = dist.join(name).display().to_string();
        writeln!(code, "    ({name:?}, include_bytes!({path:?})),").expect("write to a String");
    }
    code.push_str("];\n");
    code
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
        let path = entry.expect("a dir entry").path();
        if path.is_dir() {
            collect(root, &path, files);
        } else {
            let name = path.strip_prefix(root).expect("under the root");
            files.push(name.to_string_lossy().replace('\\', "/"));
        }
    }
}
