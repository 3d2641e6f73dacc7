//! A real OpenID Connect provider for the sign-in tests — `oidc-provider` run by `tests/support/oidc.mjs` on
//! a loopback port of the test's own (see that script for the accounts and the misbehaving ones) — and the
//! browser's part of signing in there: following the redirects, keeping the provider's cookies, filling in
//! its login and consent forms, until it sends the browser back to the redirect URI with a code.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{StatusCode, Url};

use crate::platform::repo_root;

/// The client the script registers.
pub const CLIENT_ID: &str = "parley";
pub const CLIENT_SECRET: &str = "parley-secret";

/// The provider, stopped on drop.
pub struct OidcProvider {
    pub port: u16,
    redirect_uris: Vec<String>,
    child: Option<Child>,
}

impl OidcProvider {
    /// Starts one that sends browsers back to `redirect_uris`, or returns `None` after saying so (a panic
    /// under the test command) when Node or the npm package is missing.
    pub fn start(redirect_uris: &[&str]) -> Option<OidcProvider> {
        if !support().join("node_modules/oidc-provider").is_dir() {
            return parley_kit::testing::missing(
                "oidc-provider is not installed (tests/support): OpenID Connect tests",
            );
        }
        let mut provider = OidcProvider {
            // Below the ephemeral range: nothing else takes it while the provider restarts.
            port: parley_kit::testing::restartable_port(),
            redirect_uris: redirect_uris.iter().map(|uri| uri.to_string()).collect(),
            child: None,
        };
        if let Err(err) = provider.restart() {
            return parley_kit::testing::missing(&format!(
                "node unavailable ({err}): OpenID Connect tests"
            ));
        }
        Some(provider)
    }

    /// Starts it again on its port: a new signing key (a rotation), and everything else forgotten.
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        let child = Command::new("node")
            .arg(support().join("oidc.mjs"))
            .arg(self.port.to_string())
            .args(&self.redirect_uris)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        panic!("oidc-provider did not start on port {}", self.port);
    }

    /// The issuer (what Parley discovers the provider from).
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills it (as if it went down).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The `[users]` settings that configure it as provider `name`, with `redirect_uri` allowed.
    pub fn users_settings(&self, name: &str, redirect_uri: &str) -> toml::Table {
        let mut provider = toml::Table::new();
        provider.insert("issuer".into(), self.issuer().into());
        provider.insert("client_id".into(), CLIENT_ID.into());
        provider.insert("client_secret".into(), CLIENT_SECRET.into());
        let mut oidc = toml::Table::new();
        oidc.insert(name.into(), provider.into());
        let mut users = toml::Table::new();
        users.insert("oidc".into(), oidc.into());
        users.insert(
            "oauth_redirect_uris".into(),
            toml::Value::from(vec![redirect_uri]),
        );
        users
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

fn support() -> std::path::PathBuf {
    repo_root().join("tests/support")
}

/// Where the provider sends the browser back: the code and state of a finished sign-in (or its error).
#[derive(Debug, Clone)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// Signs in as `login` from `authorization_url` as a browser would, until the provider redirects to a URL
/// starting with `redirect_uri`.
pub async fn browser_sign_in(authorization_url: &str, login: &str, redirect_uri: &str) -> Callback {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut cookies: BTreeMap<String, String> = BTreeMap::new();
    let mut url = Url::parse(authorization_url).expect("authorization URL");
    let mut form: Option<Vec<(&str, String)>> = None;
    for _ in 0..20 {
        if url.as_str().starts_with(redirect_uri) {
            let param = |name: &str| {
                url.query_pairs()
                    .find(|(key, _)| key == name)
                    .map(|(_, value)| value.into_owned())
            };
            return Callback {
                code: param("code"),
                state: param("state"),
                error: param("error"),
            };
        }
        let cookie = cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = match form.take() {
            Some(fields) => http.post(url.clone()).form(&fields),
            None => http.get(url.clone()),
        };
        let response = request
            .header("cookie", cookie)
            .send()
            .await
            .expect("provider reachable");
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap_or_default().split(';').next();
            if let Some((name, value)) = pair.and_then(|p| p.split_once('=')) {
                cookies.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers()["location"].to_str().expect("location");
            url = url.join(location).expect("redirect URL");
            continue;
        }
        let page = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "the provider's page: {page}");
        // The development interactions: a login form, then a consent form, each posting `prompt`.
        let action = between(&page, "action=\"", "\"").expect("a form");
        let prompt = between(&page, "name=\"prompt\" value=\"", "\"").expect("a prompt");
        url = url.join(&action.replace("&amp;", "&")).expect("form URL");
        form = Some(match prompt.as_str() {
            "login" => vec![
                ("prompt", "login".into()),
                ("login", login.to_string()),
                ("password", "any".into()),
            ],
            other => vec![("prompt", other.to_string())],
        });
    }
    panic!("signing in did not come back to {redirect_uri}");
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_string())
}
