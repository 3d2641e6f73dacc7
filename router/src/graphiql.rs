//! The self-hosted GraphiQL playground: one HTML page and the vendored UMD builds of graphiql@3.9.0, react@18,
//! react-dom@18 and graphql-ws@5 (see `assets/graphiql/NOTICE.md`), all compiled into the binary so the page
//! works with no internet. Queries and mutations go over HTTP; subscriptions over graphql-transport-ws on the
//! same `/graphql` path, with the headers from the editor sent in `connection_init`.

/// URL prefix of the assets.
pub const ASSET_PREFIX: &str = "/graphiql/";

/// The page, for `GET /`.
pub const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>Parley · GraphiQL</title>
  <link rel="stylesheet" href="/graphiql/graphiql.min.css" />
  <style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
  <div id="graphiql">Loading the playground…</div>
  <script src="/graphiql/react.production.min.js"></script>
  <script src="/graphiql/react-dom.production.min.js"></script>
  <script src="/graphiql/graphql-ws.min.js"></script>
  <script src="/graphiql/graphiql.min.js"></script>
  <script>
    const http = location.origin + '/graphql';
    const ws = http.replace(/^http/, 'ws');
    // The headers typed in the editor (e.g. {"Authorization": "Bearer …"}), also used to authenticate
    // the WebSocket: a new socket is opened when they change.
    let headers = {};
    let wsClient = null;
    let wsHeaders = null;
    function socket() {
      const key = JSON.stringify(headers);
      if (!wsClient || wsHeaders !== key) {
        if (wsClient) wsClient.dispose();
        wsHeaders = key;
        const params = headers;
        wsClient = graphqlWs.createClient({ url: ws, connectionParams: () => params, lazy: true });
      }
      return wsClient;
    }
    const httpFetcher = GraphiQL.createFetcher({ url: http });
    function fetcher(params, opts) {
      headers = (opts && opts.headers) || {};
      const isSubscription = /^\s*subscription\b/m.test(params.query || '') &&
        !/^\s*(query|mutation)\b/m.test(params.query || '');
      if (!isSubscription) return httpFetcher(params, opts);
      return GraphiQL.createFetcher({ url: http, wsClient: socket() })(params, opts);
    }
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, {
        fetcher,
        defaultEditorToolsVisibility: true,
        shouldPersistHeaders: true,
        // A JSON string: tests/readme.rs reads it back and runs its operations.
        defaultQuery: "# Welcome to Parley.\n# Run Register, then put {\"Authorization\": \"Bearer <accessToken>\"} in Headers and run Me.\n\nmutation Register {\n  register(input: {email: \"ada@example.com\", password: \"correct horse 1\", name: \"Ada\", nickname: \"ada\"}) {\n    accessToken\n    refreshToken\n    user { id nickname }\n  }\n}\n\nquery Me {\n  me { id nickname email followerCount followingCount }\n}\n",
      }),
    );
  </script>
</body>
</html>
"##;

/// The asset named by a request path under [`ASSET_PREFIX`]: (content type, bytes).
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    const JS: &str = "application/javascript; charset=utf-8";
    Some(match name {
        "graphiql.min.js" => (JS, include_bytes!("../assets/graphiql/graphiql.min.js")),
        "graphiql.min.css" => (
            "text/css; charset=utf-8",
            include_bytes!("../assets/graphiql/graphiql.min.css"),
        ),
        "react.production.min.js" => (
            JS,
            include_bytes!("../assets/graphiql/react.production.min.js"),
        ),
        "react-dom.production.min.js" => (
            JS,
            include_bytes!("../assets/graphiql/react-dom.production.min.js"),
        ),
        "graphql-ws.min.js" => (JS, include_bytes!("../assets/graphiql/graphql-ws.min.js")),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_references_only_bundled_assets() {
        for src in PAGE
            .split(['"', '\''])
            .filter(|s| s.starts_with(ASSET_PREFIX))
        {
            let name = &src[ASSET_PREFIX.len()..];
            assert!(asset(name).is_some(), "{name} is not bundled");
        }
        assert!(
            !PAGE.contains("https://"),
            "the page must not load anything from the internet"
        );
        assert!(asset("../../etc/passwd").is_none());
    }
}
