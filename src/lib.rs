//! The `parley` package as a library: the registry of subgraphs this binary runs (shared by the CLI and the
//! end-to-end tests). The CLI itself is `main.rs`.

pub mod subgraphs;
