//! Sign-in with an OpenID Connect provider through the router, against a real one (`oidc-provider` on
//! loopback, see `support::oidc`), a browser's part played by following its redirects and forms: the code +
//! PKCE flow makes an account and signs in to it again; a wrong or replayed state, a replayed code, a bad ID
//! token (tampered, for another client, expired), a redirect URI not allowed, an expired sign-in and a
//! provider that is down are each refused with a code and leave nothing made; an existing account's
//! verified email is never taken over; linking and unlinking; the provider's keys rotated.

use parley_harness as support;

use serde_json::{json, Value};
use support::oidc::{browser_sign_in, Callback, OidcProvider};
use support::{codes, Options, Platform};

const REDIRECT: &str = "http://127.0.0.1:9/signed-in";
const START: &str = "mutation($p: String!, $r: String!) { oauthStart(provider: $p, redirectUri: $r) { authorizationUrl state } }";
const FINISH: &str = "mutation($p: String!, $c: String!, $s: String!) { oauthFinish(provider: $p, code: $c, state: $s) { accessToken refreshToken user { id nickname } } }";
const LINK: &str = "mutation($p: String!, $c: String!, $s: String!) { linkOAuthProvider(provider: $p, code: $c, state: $s) }";
const UNLINK: &str = "mutation($p: String!) { unlinkOAuthProvider(provider: $p) }";
const ME: &str = "{ me { id nickname name email emailVerified } }";

/// The platform with the provider configured as `corp` (and `more` of the `[users]` settings).
async fn platform(provider: &OidcProvider, more: &[(&str, toml::Value)]) -> Platform {
    let mut users = provider.users_settings("corp", REDIRECT);
    for (key, value) in more {
        users.insert(key.to_string(), value.clone());
    }
    Platform::start_opts(Options {
        users: Some(users),
        ..Default::default()
    })
    .await
}

/// Starts a sign-in (as `token`'s account when given) and signs in at the provider as `login`.
async fn sign_in_at_provider(p: &Platform, login: &str, token: Option<&str>) -> Callback {
    let started = p
        .ok(START, json!({ "p": "corp", "r": REDIRECT }), token)
        .await;
    let url = started["oauthStart"]["authorizationUrl"]
        .as_str()
        .expect("url");
    let callback = browser_sign_in(url, login, REDIRECT).await;
    assert_eq!(
        callback.state.as_deref(),
        started["oauthStart"]["state"].as_str(),
        "the provider hands the state back"
    );
    callback
}

/// `oauthFinish` with `callback`'s code and state.
async fn finish(p: &Platform, callback: &Callback) -> (u16, Value) {
    p.gql(
        FINISH,
        json!({ "p": "corp", "c": callback.code, "s": callback.state }),
        None,
    )
    .await
}

/// Whether an account has `nickname`.
async fn exists(p: &Platform, nickname: &str) -> bool {
    let (_, body) = p
        .gql(
            "query($n: String!) { userByNickname(nickname: $n) { id } }",
            json!({ "n": nickname }),
            None,
        )
        .await;
    !body["data"]["userByNickname"].is_null()
}

#[tokio::test]
async fn the_code_and_pkce_flow_makes_an_account_and_signs_in_to_it_again() {
    let Some(provider) = OidcProvider::start(&[REDIRECT]) else {
        return;
    };
    let p = platform(&provider, &[]).await;
    let listed = p.ok("{ oauthProviders }", json!({}), None).await;
    assert_eq!(listed["oauthProviders"], json!(["corp"]));

    let started = p
        .ok(START, json!({ "p": "corp", "r": REDIRECT }), None)
        .await;
    let url = started["oauthStart"]["authorizationUrl"]
        .as_str()
        .expect("url");
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "nonce=",
        "response_type=code",
    ] {
        assert!(url.contains(part), "{part} in {url}");
    }
    let callback = browser_sign_in(url, "carol", REDIRECT).await;
    let (_, signed_in) = finish(&p, &callback).await;
    let payload = &signed_in["data"]["oauthFinish"];
    assert_eq!(payload["user"]["nickname"], "carol", "{signed_in}");
    let token = payload["accessToken"].as_str().expect("token");
    let me = p.ok(ME, json!({}), Some(token)).await;
    assert_eq!(me["me"]["email"], "carol@example.com");
    assert_eq!(me["me"]["emailVerified"], true);
    assert_eq!(me["me"]["name"], "Carol");
    let carol = me["me"]["id"].clone();

    // The same code and state again: the state was taken.
    let (_, again) = finish(&p, &callback).await;
    assert_eq!(codes(&again), ["UNAUTHENTICATED"], "{again}");
    // The used code with a new sign-in's state: the provider refuses it (used, and not this challenge's).
    let fresh = sign_in_at_provider(&p, "carol", None).await;
    let replayed = Callback {
        code: callback.code.clone(),
        ..fresh.clone()
    };
    let (_, again) = finish(&p, &replayed).await;
    assert_eq!(codes(&again), ["UNAUTHENTICATED"], "{again}");

    // Signing in again reaches the same account; someone else gets their own, with a free nickname.
    let again = sign_in_at_provider(&p, "carol", None).await;
    let (_, body) = finish(&p, &again).await;
    assert_eq!(body["data"]["oauthFinish"]["user"]["id"], carol, "{body}");
    p.register("dora").await;
    let dora = sign_in_at_provider(&p, "noemail-dora", None).await;
    let (_, body) = finish(&p, &dora).await;
    assert_eq!(
        body["data"]["oauthFinish"]["user"]["nickname"], "dora2",
        "{body}"
    );
    let token = body["data"]["oauthFinish"]["accessToken"]
        .as_str()
        .expect("token");
    let me = p.ok(ME, json!({}), Some(token)).await;
    assert_eq!(me["me"]["email"], Value::Null, "no email from the provider");
    // Without a password, the provider is this account's only way in.
    let (_, body) = p.gql(UNLINK, json!({ "p": "corp" }), Some(token)).await;
    assert_eq!(codes(&body), ["CONFLICT"], "{body}");
}

#[tokio::test]
async fn a_sign_in_that_does_not_check_out_is_refused_and_makes_nothing() {
    let Some(provider) = OidcProvider::start(&[REDIRECT, "http://127.0.0.1:9/elsewhere"]) else {
        return;
    };
    let p = platform(&provider, &[]).await;
    // Inputs: a redirect URI not on the allow-list (though the provider would take it), a provider not
    // configured, an oversize code.
    let (_, body) = p
        .gql(
            START,
            json!({ "p": "corp", "r": "http://127.0.0.1:9/elsewhere" }),
            None,
        )
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");
    let (_, body) = p
        .gql(START, json!({ "p": "nope", "r": REDIRECT }), None)
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");
    let (_, body) = p
        .gql(
            FINISH,
            json!({ "p": "corp", "c": "x".repeat(5000), "s": "s" }),
            None,
        )
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");

    // A good code with a state this server never gave.
    let good = sign_in_at_provider(&p, "eve", None).await;
    let forged = Callback {
        state: Some("not-a-state".into()),
        ..good.clone()
    };
    let (_, body) = finish(&p, &forged).await;
    assert_eq!(codes(&body), ["UNAUTHENTICATED"], "{body}");
    // ID tokens the provider's token endpoint (or someone in between) got wrong.
    for login in ["tampered-eve", "wrongaud-eve", "expired-eve"] {
        let callback = sign_in_at_provider(&p, login, None).await;
        let (_, body) = finish(&p, &callback).await;
        assert_eq!(codes(&body), ["UNAUTHENTICATED"], "{login}: {body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("ID token"),
            "{login}: {body}"
        );
    }
    assert!(!exists(&p, "eve").await, "nothing was made");
    // The genuine one still goes through (its state was not spent by the forgery).
    let (_, body) = finish(&p, &good).await;
    assert_eq!(
        body["data"]["oauthFinish"]["user"]["nickname"], "eve",
        "{body}"
    );
}

#[tokio::test]
async fn an_expired_sign_in_has_no_verifier_left() {
    let Some(provider) = OidcProvider::start(&[REDIRECT]) else {
        return;
    };
    let p = platform(&provider, &[("oauth_attempt_ttl_secs", 1.into())]).await;
    let callback = sign_in_at_provider(&p, "fay", None).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let (_, body) = finish(&p, &callback).await;
    assert_eq!(codes(&body), ["UNAUTHENTICATED"], "{body}");
    assert!(!exists(&p, "fay").await);
}

#[tokio::test]
async fn a_verified_email_is_never_taken_over_and_linking_is_the_owners() {
    let Some(provider) = OidcProvider::start(&[REDIRECT]) else {
        return;
    };
    let p = platform(&provider, &[]).await;
    let erin = p.register("erin").await;
    // The provider vouches for erin@example.com: still not erin's account, and no new one either.
    let callback = sign_in_at_provider(&p, "erin", None).await;
    let (_, body) = finish(&p, &callback).await;
    assert_eq!(codes(&body), ["CONFLICT"], "{body}");
    // An unverified claim to the address gets an account of its own, without the address.
    let callback = sign_in_at_provider(&p, "unverified-erin", None).await;
    let (_, body) = finish(&p, &callback).await;
    let other = &body["data"]["oauthFinish"];
    assert_ne!(
        other["user"]["id"].as_str(),
        Some(erin.id.as_str()),
        "{body}"
    );
    let me = p.ok(ME, json!({}), other["accessToken"].as_str()).await;
    assert_eq!(me["me"]["email"], Value::Null);

    // Someone else's sign-in cannot be linked to erin's account.
    let mallory = p.register("mallory").await;
    let theirs = sign_in_at_provider(&p, "erin", Some(&mallory.access)).await;
    let (_, body) = p
        .gql(
            LINK,
            json!({ "p": "corp", "c": theirs.code, "s": theirs.state }),
            Some(&erin.access),
        )
        .await;
    assert_eq!(codes(&body), ["UNAUTHENTICATED"], "{body}");
    // Erin links it herself; then the provider signs her in.
    let hers = sign_in_at_provider(&p, "erin", Some(&erin.access)).await;
    let linked = p
        .ok(
            LINK,
            json!({ "p": "corp", "c": hers.code, "s": hers.state }),
            Some(&erin.access),
        )
        .await;
    assert_eq!(linked["linkOAuthProvider"], true);
    let callback = sign_in_at_provider(&p, "erin", None).await;
    let (_, body) = finish(&p, &callback).await;
    assert_eq!(
        body["data"]["oauthFinish"]["user"]["id"].as_str(),
        Some(erin.id.as_str()),
        "{body}"
    );
    // She has a password, so she may unlink; after that the provider no longer signs her in.
    let unlinked = p
        .ok(UNLINK, json!({ "p": "corp" }), Some(&erin.access))
        .await;
    assert_eq!(unlinked["unlinkOAuthProvider"], true);
    let callback = sign_in_at_provider(&p, "erin", None).await;
    let (_, body) = finish(&p, &callback).await;
    assert_eq!(codes(&body), ["CONFLICT"], "{body}");
    let (_, body) = p
        .gql(UNLINK, json!({ "p": "corp" }), Some(&erin.access))
        .await;
    assert_eq!(codes(&body), ["BAD_USER_INPUT"], "{body}");
}

#[tokio::test]
async fn the_provider_down_is_unavailable_and_nothing_is_half_written() {
    let Some(mut provider) = OidcProvider::start(&[REDIRECT]) else {
        return;
    };
    let p = platform(&provider, &[]).await;
    let callback = sign_in_at_provider(&p, "gus", None).await;
    provider.stop();
    let (_, body) = finish(&p, &callback).await;
    assert_eq!(codes(&body), ["SUBGRAPH_UNAVAILABLE"], "{body}");
    assert!(!exists(&p, "gus").await);
    // A server that never reached it cannot even start a sign-in.
    let down = platform(&provider, &[]).await;
    let (_, body) = down
        .gql(START, json!({ "p": "corp", "r": REDIRECT }), None)
        .await;
    assert_eq!(codes(&body), ["SUBGRAPH_UNAVAILABLE"], "{body}");
}

/// The provider starts again with a new signing key: Parley's cached keys do not name it, so it fetches
/// them again and the sign-in goes through.
#[tokio::test]
async fn rotated_provider_keys_are_fetched_again() {
    let Some(mut provider) = OidcProvider::start(&[REDIRECT]) else {
        return;
    };
    let p = platform(&provider, &[]).await;
    let callback = sign_in_at_provider(&p, "hal", None).await;
    let (_, body) = finish(&p, &callback).await;
    let hal = body["data"]["oauthFinish"]["user"]["id"].clone();
    assert!(hal.is_string(), "{body}");
    provider.restart().expect("provider again");
    let callback = sign_in_at_provider(&p, "hal", None).await;
    let (_, body) = finish(&p, &callback).await;
    assert_eq!(body["data"]["oauthFinish"]["user"]["id"], hal, "{body}");
}
