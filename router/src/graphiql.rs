//! The self-hosted GraphiQL playground: GraphiQL 5 with its Monaco editors, built from `graphiql/` (npm, pinned
//! by its lockfile) by `build.rs` and compiled into the binary, so the page works with no internet. The page
//! is served at `/`, everything it loads under [`ASSET_PREFIX`]. Queries and mutations go over HTTP;
//! subscriptions over graphql-transport-ws on the same `/graphql` path, with the headers from the editor sent
//! in `connection_init` (`graphiql/src/main.js`).

mod built {
    include!(concat!(env!("OUT_DIR"), "/graphiql_assets.rs"));
}

/// URL prefix of the assets (Vite's `base`).
pub const ASSET_PREFIX: &str = "/graphiql/";

/// The page, for `GET /`.
pub const PAGE: &str = built::PAGE;

/// The operations of the page's default tab.
pub const DEFAULT_TAB: &str = include_str!("../graphiql/src/default-tab.graphql");

/// The asset named by a request path under [`ASSET_PREFIX`]: (content type, bytes).
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    let (_, bytes) = built::FILES.iter().find(|(file, _)| *file == name)?;
    Some((content_type(name), bytes))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "application/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("ttf") => "font/ttf",
        Some("woff2") => "font/woff2",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_references_only_bundled_assets() {
        let referenced: Vec<&str> = PAGE
            .split(['"', '\''])
            .filter_map(|s| s.strip_prefix(ASSET_PREFIX))
            .collect();
        assert!(!referenced.is_empty(), "the page loads its script");
        for name in referenced {
            assert!(asset(name).is_some(), "{name} is not bundled");
        }
        assert!(
            !PAGE.contains("https://"),
            "the page must not load anything from the internet"
        );
        assert!(asset("../../etc/passwd").is_none());
    }

    #[test]
    fn the_editor_workers_are_bundled() {
        for worker in ["editor.worker", "json.worker", "graphql.worker"] {
            assert!(
                built::FILES.iter().any(|(name, _)| name.contains(worker)),
                "{worker} is missing"
            );
        }
    }
}
