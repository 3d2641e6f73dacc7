//! users & auth through the router, as a client would.

use parley_harness as support;

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use support::{codes, token_after, Platform};

const ME: &str = "{ me { id nickname email role lastSeenAt } }";

#[tokio::test]
async fn register_login_me_and_email_privacy() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;

    let me = p.ok(ME, json!({}), Some(&alice.access)).await;
    assert_eq!(me["me"]["nickname"], "alice");
    assert_eq!(me["me"]["email"], "alice@example.com");
    assert_eq!(me["me"]["role"], "USER");
    assert!(me["me"]["lastSeenAt"].is_string());

    // Without a token `me` is null, not an error.
    let anon = p.ok(ME, json!({}), None).await;
    assert_eq!(anon["me"], Value::Null);

    let login = p
        .ok(
            "mutation { login(email: \"ALICE@example.com\", password: \"correct horse 1\") { accessToken user { nickname } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(login["login"]["user"]["nickname"], "alice");

    // email is visible only to its owner.
    let bob = p.register("bob").await;
    let q = "query($id: ID!) { user(id: $id) { nickname email } }";
    let seen_by_bob = p.ok(q, json!({ "id": alice.id }), Some(&bob.access)).await;
    assert_eq!(seen_by_bob["user"]["nickname"], "alice");
    assert_eq!(seen_by_bob["user"]["email"], Value::Null);
    let by_nick = p
        .ok(
            "{ userByNickname(nickname: \"ALICE\") { id } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(by_nick["userByNickname"]["id"], alice.id.as_str());

    let search = p
        .ok(
            "{ searchUsers(query: \"al\", first: 1) { edges { node { nickname } } pageInfo { hasNextPage } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        search["searchUsers"]["edges"][0]["node"]["nickname"],
        "alice"
    );
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let parts: Vec<&str> = alice.access.split('.').collect();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");

    // Tampered payload: same signature, different subject.
    claims["roles"] = json!(["admin"]);
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);

    // alg: none.
    let none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        parts[1]
    );

    // Signed by another key with the right kid.
    let other = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&other).expect("der");
    let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    jwt_header.kid = header["kid"].as_str().map(str::to_string);
    let key = jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes());
    let original: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
    let wrong_key = jsonwebtoken::encode(&jwt_header, &original, &key).expect("sign");

    // Expired but signed with the real key (read from the users store).
    let (kid, real_key) = real_signing_key(&p).await;
    let mut expired_claims = original.clone();
    expired_claims["exp"] = json!(chrono::Utc::now().timestamp() - 3600);
    expired_claims["iat"] = json!(chrono::Utc::now().timestamp() - 7200);
    let mut real_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    real_header.kid = Some(kid);
    let expired = jsonwebtoken::encode(&real_header, &expired_claims, &real_key).expect("sign");
    // The same key and claims, not expired, are accepted: the rejection above is about expiry.
    let mut valid_claims = original.clone();
    valid_claims["exp"] = json!(chrono::Utc::now().timestamp() + 600);
    let valid = jsonwebtoken::encode(&real_header, &valid_claims, &real_key).expect("sign");
    assert_eq!(
        p.ok(ME, json!({}), Some(&valid)).await["me"]["nickname"],
        "alice"
    );

    // HS256 with the public key as the secret.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &original,
        &jsonwebtoken::EncodingKey::from_secret(b"public key bytes"),
    )
    .expect("sign");

    for (label, token) in [
        ("tampered", tampered),
        ("alg none", none),
        ("wrong key", wrong_key),
        ("expired", expired),
        ("hs256", hs),
        ("garbage", "not-a-jwt".to_string()),
    ] {
        let (status, body) = p.gql(ME, json!({}), Some(&token)).await;
        assert_eq!(codes(&body), vec!["UNAUTHENTICATED"], "{label}: {body}");
        assert_eq!(status, 401, "{label}");
    }
}

/// The users subgraph's signing key, read from its SQLite file.
async fn real_signing_key(p: &Platform) -> (String, jsonwebtoken::EncodingKey) {
    use base64::engine::general_purpose::STANDARD;
    use sea_orm::{ConnectionTrait, Statement};
    let url = format!("sqlite://{}?mode=ro", p.data_dir.join("users.db").display());
    let db = sea_orm::Database::connect(&url).await.expect("users db");
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT kid, private_key FROM signing_keys",
        ))
        .await
        .expect("query")
        .expect("a key");
    let kid: String = row.try_get("", "kid").expect("kid");
    let der: String = row.try_get("", "private_key").expect("key");
    let der = STANDARD.decode(der).expect("b64");
    (kid, jsonwebtoken::EncodingKey::from_ed_der(&der))
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

const REFRESH: &str =
    "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";

#[tokio::test]
async fn refresh_rotation_reuse_and_logout_on_sqlite() {
    refresh_flow(&Platform::start().await).await;
}

#[tokio::test]
async fn refresh_rotation_reuse_and_logout_on_postgres() {
    if support::postgres_url().is_none() {
        return;
    }
    refresh_flow(&Platform::start_with(support::Store::Postgres).await).await;
}

async fn refresh_flow(p: &Platform) {
    let alice = p.register("alice").await;

    let first = p.ok(REFRESH, json!({ "t": alice.refresh }), None).await;
    let second_refresh = first["refreshToken"]["refreshToken"]
        .as_str()
        .expect("rt")
        .to_string();
    assert_ne!(second_refresh, alice.refresh);
    let fresh_access = first["refreshToken"]["accessToken"]
        .as_str()
        .expect("at")
        .to_string();
    assert_eq!(
        p.ok(ME, json!({}), Some(&fresh_access)).await["me"]["nickname"],
        "alice"
    );

    // Reusing the rotated token fails and revokes the newer one too.
    let (_, reuse) = p.gql(REFRESH, json!({ "t": alice.refresh }), None).await;
    assert_eq!(codes(&reuse), vec!["UNAUTHENTICATED"]);
    let (_, newer) = p.gql(REFRESH, json!({ "t": second_refresh }), None).await;
    assert_eq!(codes(&newer), vec!["UNAUTHENTICATED"], "family revoked");

    // Logout revokes the session.
    let login = p
        .ok(
            "mutation { login(email: \"alice@example.com\", password: \"correct horse 1\") { refreshToken } }",
            json!({}),
            None,
        )
        .await;
    let token = login["login"]["refreshToken"]
        .as_str()
        .expect("rt")
        .to_string();
    let out = p
        .ok(
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": token }),
            None,
        )
        .await;
    assert_eq!(out["logout"], true);
    let (_, after) = p.gql(REFRESH, json!({ "t": token }), None).await;
    assert_eq!(codes(&after), vec!["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn password_reset_by_mailed_token_and_change() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let asked = p
        .ok(
            "mutation { requestPasswordReset(email: \"alice@example.com\") }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(asked["requestPasswordReset"], true);
    // Unknown emails get the same answer (no account enumeration), and no mail.
    let before = p.mails().len();
    p.ok(
        "mutation { requestPasswordReset(email: \"nobody@example.com\") }",
        json!({}),
        None,
    )
    .await;
    assert_eq!(p.mails().len(), before);

    let mail = p
        .mails()
        .into_iter()
        .rev()
        .find(|m| m.contains("Reset token"))
        .expect("reset mail");
    let token = token_after(&mail, "Reset token:");
    let reset = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
    let (_, weak) = p
        .gql(reset, json!({ "t": token, "p": "short" }), None)
        .await;
    assert_eq!(codes(&weak), vec!["BAD_USER_INPUT"]);
    let done = p
        .ok(reset, json!({ "t": token, "p": "brand new pass 2" }), None)
        .await;
    assert_eq!(done["resetPassword"], true);
    // Single use.
    let (_, again) = p
        .gql(reset, json!({ "t": token, "p": "another pass 3" }), None)
        .await;
    assert_eq!(codes(&again), vec!["BAD_USER_INPUT"]);
    // Old sessions are gone; the new password works.
    let (_, old) = p.gql(REFRESH, json!({ "t": alice.refresh }), None).await;
    assert_eq!(codes(&old), vec!["UNAUTHENTICATED"]);
    let login = "mutation($p: String!) { login(email: \"alice@example.com\", password: $p) { accessToken } }";
    let (_, bad) = p.gql(login, json!({ "p": "correct horse 1" }), None).await;
    assert_eq!(codes(&bad), vec!["UNAUTHENTICATED"]);
    let ok = p.ok(login, json!({ "p": "brand new pass 2" }), None).await;
    let access = ok["login"]["accessToken"].as_str().expect("at").to_string();

    // Change password: wrong current → coded error; right → other sessions revoked.
    let other = p
        .ok("mutation { login(email: \"alice@example.com\", password: \"brand new pass 2\") { refreshToken } }", json!({}), None)
        .await["login"]["refreshToken"]
        .as_str()
        .expect("rt")
        .to_string();
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let (_, wrong) = p
        .gql(
            change,
            json!({ "c": "nope nope 1", "n": "third pass 33" }),
            Some(&access),
        )
        .await;
    assert_eq!(codes(&wrong), vec!["BAD_USER_INPUT"]);
    p.ok(
        change,
        json!({ "c": "brand new pass 2", "n": "third pass 33" }),
        Some(&access),
    )
    .await;
    let (_, revoked) = p.gql(REFRESH, json!({ "t": other }), None).await;
    assert_eq!(codes(&revoked), vec!["UNAUTHENTICATED"]);

    // Email verification from the welcome mail.
    let welcome = p
        .mails()
        .into_iter()
        .find(|m| m.contains("Confirm your email"))
        .expect("welcome");
    let code = token_after(&welcome, "Confirm your email with this code:");
    p.ok(
        "mutation($t: String!) { verifyEmail(token: $t) }",
        json!({ "t": code }),
        None,
    )
    .await;
    let me = p
        .ok("{ me { emailVerified } }", json!({}), Some(&access))
        .await;
    assert_eq!(me["me"]["emailVerified"], true);
}

#[tokio::test]
async fn bad_inputs_get_codes_and_change_nothing() {
    let p = Platform::start().await;
    p.register("alice").await;
    let register = "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";
    let input = |email: &str, password: &str, nickname: &str| json!({ "input": { "email": email, "password": password, "name": "N", "nickname": nickname } });
    for (label, vars, code) in [
        (
            "duplicate email",
            input("ALICE@example.com", "correct horse 1", "alice2"),
            "CONFLICT",
        ),
        (
            "duplicate nickname",
            input("a2@example.com", "correct horse 1", "Alice"),
            "CONFLICT",
        ),
        (
            "weak password",
            input("a3@example.com", "password", "alice3"),
            "BAD_USER_INPUT",
        ),
        (
            "malformed email",
            input("not-an-email", "correct horse 1", "alice4"),
            "BAD_USER_INPUT",
        ),
        (
            "bad nickname",
            input("a5@example.com", "correct horse 1", "a b"),
            "BAD_USER_INPUT",
        ),
    ] {
        let (_, body) = p.gql(register, vars, None).await;
        assert_eq!(codes(&body), vec![code], "{label}: {body}");
    }
    // Nothing was half-written: the refused nicknames and emails are still free.
    let search = p
        .ok(
            "{ searchUsers(query: \"alice\") { edges { node { nickname } } } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        search["searchUsers"]["edges"].as_array().map(Vec::len),
        Some(1)
    );
    p.register("alice3").await;

    let (_, unknown) = p
        .gql(
            "{ user(id: \"01900000-0000-7000-8000-000000000000\") { id } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(codes(&unknown), vec!["NOT_FOUND"]);
    let (_, malformed_id) = p.gql("{ user(id: \"x\") { id } }", json!({}), None).await;
    assert_eq!(codes(&malformed_id), vec!["BAD_USER_INPUT"]);
    let (_, unauth) = p
        .gql(
            "mutation { updateProfile(input: { bio: \"hi\" }) { id } }",
            json!({}),
            None,
        )
        .await;
    assert_eq!(codes(&unauth), vec!["UNAUTHENTICATED"]);
    let (_, field) = p.gql("{ me { nope } }", json!({}), None).await;
    assert_eq!(codes(&field), vec!["GRAPHQL_VALIDATION_FAILED"], "{field}");

    // Malformed JSON is refused with a code and a 4xx.
    let response = p
        .http
        .post(p.graphql_url())
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .expect("router");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json body");
    assert!((400..500).contains(&status), "status {status}");
    assert!(!codes(&body).is_empty(), "{body}");
}

#[tokio::test]
async fn profile_update_and_login_rate_limit() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let update = "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { nickname bio status avatarUrl } }";
    let data = p
        .ok(
            update,
            json!({ "i": { "bio": "hello", "status": "around", "nickname": "alice_w" } }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(data["updateProfile"]["nickname"], "alice_w");
    assert_eq!(data["updateProfile"]["bio"], "hello");
    let (_, bad) = p
        .gql(
            update,
            json!({ "i": { "avatarId": "javascript:alert(1)" } }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(codes(&bad), vec!["BAD_USER_INPUT"]);

    let login = "mutation($p: String!) { login(email: \"alice@example.com\", password: $p) { accessToken } }";
    for _ in 0..5 {
        let (_, body) = p.gql(login, json!({ "p": "wrong wrong 1" }), None).await;
        assert_eq!(codes(&body), vec!["UNAUTHENTICATED"]);
    }
    // Locked now, even with the right password.
    let (_, locked) = p.gql(login, json!({ "p": "correct horse 1" }), None).await;
    assert_eq!(codes(&locked), vec!["RATE_LIMITED"]);
}

/// Registering a configured admin address proves nothing: the role comes once the address is verified (so
/// anyone who registers it first gets nothing), and it is in the next token.
#[tokio::test]
async fn an_admin_address_is_admin_only_once_verified() {
    let p = Platform::start().await;
    let bob = p.register("bob").await;
    const PROMOTE: &str = "mutation($u: ID!) { setUserRole(userId: $u, role: MODERATOR) { role } }";
    let squatter = p.register("admin").await;
    let me = p
        .ok("{ me { role } }", json!({}), Some(&squatter.access))
        .await;
    assert_eq!(me["me"]["role"], "USER");
    let (_, refused) = p
        .gql(PROMOTE, json!({ "u": bob.id }), Some(&squatter.access))
        .await;
    assert_eq!(codes(&refused), ["FORBIDDEN"], "{refused}");

    p.verify_email(support::ADMIN_EMAIL).await;
    let (token, _) = p.login(support::ADMIN_EMAIL, "correct horse 1").await;
    let promoted = p.ok(PROMOTE, json!({ "u": bob.id }), Some(&token)).await;
    assert_eq!(promoted["setUserRole"]["role"], "MODERATOR");
}

/// Whether an access token works in the users subgraph (`me`) and another one (posts): `None` while one
/// subgraph has learnt of a revocation and the other not yet (each polls on its own).
async fn works(p: &Platform, access: &str) -> Option<bool> {
    let (_, me) = p.gql("{ me { id } }", json!({}), Some(access)).await;
    let (status, post) = p
        .gql(
            "mutation { createPost(input: { title: \"still here\", body: \"b\" }) { id } }",
            json!({}),
            Some(access),
        )
        .await;
    match (codes(&me).as_slice(), codes(&post).as_slice()) {
        ([], []) => Some(true),
        ([a], [b]) if a == "UNAUTHENTICATED" && b == "UNAUTHENTICATED" => {
            assert_eq!(status, 401, "a token failure is HTTP 401");
            Some(false)
        }
        _ => None,
    }
}

/// A logout, a password change and a reset revoke the sessions' access tokens everywhere within seconds
/// (not 15 minutes later) and end their open subscriptions; a reset burns the reset tokens mailed before it.
#[tokio::test]
async fn signed_out_sessions_lose_their_access_tokens_within_seconds() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let (b_access, _) = p.login(&alice.email, "correct horse 1").await;
    let (c_access, _) = p.login(&alice.email, "correct horse 1").await;
    let mut ws = support::WsClient::connect(&p, Some(&alice.access)).await;
    ws.subscribe("events", "subscription { chatEvents { kind } }", json!({}))
        .await;

    // Logout of the first session: its token and its subscription end; the others go on.
    p.ok(
        "mutation($t: String!) { logout(refreshToken: $t) }",
        json!({ "t": alice.refresh }),
        None,
    )
    .await;
    support::eventually_within(
        "the logged-out token refused",
        Duration::from_secs(5),
        || async { (works(&p, &alice.access).await == Some(false)).then_some(()) },
    )
    .await;
    let ended = ws
        .next_for("events", Duration::from_secs(5))
        .await
        .expect("the subscription ends");
    assert!(ended.to_string().contains("UNAUTHENTICATED"), "{ended}");
    assert_eq!(works(&p, &b_access).await, Some(true));

    // A password change from B keeps B and signs C out.
    p.ok(
        "mutation { changePassword(currentPassword: \"correct horse 1\", newPassword: \"second horse 2\") }",
        json!({}),
        Some(&b_access),
    )
    .await;
    support::eventually_within("C refused", Duration::from_secs(5), || async {
        (works(&p, &c_access).await == Some(false)).then_some(())
    })
    .await;
    assert_eq!(works(&p, &b_access).await, Some(true));

    // Two resets mailed; the second used: B is signed out and the first reset token is dead.
    for _ in 0..2 {
        p.ok(
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": alice.email }),
            None,
        )
        .await;
    }
    let tokens: Vec<String> = p
        .mails()
        .into_iter()
        .filter(|m| m.contains("Reset token"))
        .map(|m| token_after(&m, "Reset token:"))
        .collect();
    assert_eq!(tokens.len(), 2);
    let reset = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
    p.ok(
        reset,
        json!({ "t": tokens[1], "p": "third horse 33" }),
        None,
    )
    .await;
    let (_, sibling) = p
        .gql(
            reset,
            json!({ "t": tokens[0], "p": "fourth horse 44" }),
            None,
        )
        .await;
    assert_eq!(codes(&sibling), ["BAD_USER_INPUT"], "{sibling}");
    assert!(
        sibling.to_string().contains("invalid or expired token"),
        "the older token is burnt: {sibling}"
    );
    support::eventually_within("B refused", Duration::from_secs(5), || async {
        (works(&p, &b_access).await == Some(false)).then_some(())
    })
    .await;
}
