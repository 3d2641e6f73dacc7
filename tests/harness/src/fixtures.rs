//! Fixtures a test builds on: accounts, a direct chat between two of them, posts and a reader's feed.

use serde_json::json;

use crate::platform::{Platform, ADMIN_EMAIL};
use crate::poll::eventually;

pub struct Account {
    pub id: String,
    pub access: String,
    pub refresh: String,
    pub email: String,
}

impl Platform {
    /// Registers an account; returns (user id, access token, refresh token).
    pub async fn register(&self, nickname: &str) -> Account {
        let data = self
            .ok(
                "mutation($input: RegisterInput!) { register(input: $input) { accessToken refreshToken user { id nickname } } }",
                json!({ "input": {
                    "email": format!("{nickname}@example.com"),
                    "password": "correct horse 1",
                    "name": format!("{nickname} Example"),
                    "nickname": nickname,
                }}),
                None,
            )
            .await;
        let payload = &data["register"];
        Account {
            id: payload["user"]["id"].as_str().expect("id").to_string(),
            access: payload["accessToken"].as_str().expect("token").to_string(),
            refresh: payload["refreshToken"]
                .as_str()
                .expect("refresh")
                .to_string(),
            email: format!("{nickname}@example.com"),
        }
    }

    /// Registers the configured admin address ([`ADMIN_EMAIL`], nickname `admin`), verifies it from its
    /// welcome mail (only then is it an admin) and signs in again for a token carrying the role.
    pub async fn register_admin(&self) -> Account {
        let mut admin = self.register("admin").await;
        self.verify_email(ADMIN_EMAIL).await;
        (admin.access, admin.refresh) = self.login(ADMIN_EMAIL, "correct horse 1").await;
        admin
    }

    /// `who` blocks `whom`, retried until social knows `whom` (it learns of new users from events).
    pub async fn block(&self, who: &Account, whom: &Account) {
        crate::eventually("social knows the user to block", || async {
            let (_, body) = self
                .gql(
                    "mutation($id: ID!) { block(userId: $id) }",
                    json!({ "id": whom.id }),
                    Some(&who.access),
                )
                .await;
            (body["data"]["block"] == true).then_some(())
        })
        .await;
    }

    /// Verifies `email` with the code of its welcome mail.
    pub async fn verify_email(&self, email: &str) {
        let welcome = self
            .mails()
            .into_iter()
            .find(|m| m.contains(email) && m.contains("Confirm your email"))
            .expect("the welcome mail");
        let code = token_after(&welcome, "Confirm your email with this code:");
        self.ok(
            "mutation($t: String!) { verifyEmail(token: $t) }",
            json!({ "t": code }),
            None,
        )
        .await;
    }

    /// Signs in again: a new session's (access, refresh) tokens.
    pub async fn login(&self, email: &str, password: &str) -> (String, String) {
        let data = self
            .ok(
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }",
                json!({ "e": email, "p": password }),
                None,
            )
            .await;
        let token = |field: &str| data["login"][field].as_str().expect("token").to_string();
        (token("accessToken"), token("refreshToken"))
    }
}

/// The first non-empty line after `marker` in a mail body (quoted-printable soft breaks undone).
pub fn token_after(mail: &str, marker: &str) -> String {
    let body = mail.replace("=\r\n", "").replace("=\n", "");
    let rest = body.split(marker).nth(1).expect("marker in mail");
    rest.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .expect("token line")
        .to_string()
}

/// The direct chat of `a` and `b` (retried until chat has learnt from users' events that `b` exists).
pub async fn direct_chat(p: &Platform, a: &Account, b: &Account) -> String {
    eventually("chat learns the user", || async {
        let (_, body) = p
            .gql(
                "mutation($u: ID!) { createDirectChat(userId: $u) { id kind } }",
                json!({ "u": b.id }),
                Some(&a.access),
            )
            .await;
        body["data"]["createDirectChat"]["id"]
            .as_str()
            .map(str::to_string)
    })
    .await
}

/// The titles in `who`'s feed, newest first.
pub async fn feed_titles(p: &Platform, who: &Account) -> Vec<String> {
    let data = p
        .ok(
            "query { feed(sort: NEW) { edges { node { id title author { nickname } } } } }",
            json!({}),
            Some(&who.access),
        )
        .await;
    data["feed"]["edges"]
        .as_array()
        .map(|edges| {
            edges
                .iter()
                .filter_map(|e| e["node"]["title"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Creates a post (in `topic`, if any); returns its id.
pub async fn create_post(p: &Platform, who: &Account, title: &str, topic: Option<&str>) -> String {
    let data = p
        .ok(
            "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
            json!({ "i": { "title": title, "body": "b", "topic": topic } }),
            Some(&who.access),
        )
        .await;
    data["createPost"]["id"].as_str().expect("id").to_string()
}

impl Platform {
    /// Asks for an upload ticket (`input`: `CreateUploadInput`) and PUTs `bytes` to its URL, as a client
    /// does; the media id and the PUT's HTTP status.
    pub async fn upload(
        &self,
        who: &Account,
        input: serde_json::Value,
        bytes: Vec<u8>,
    ) -> (String, u16) {
        let ticket = self
            .ok(
                "mutation($i: CreateUploadInput!) { createUpload(input: $i) { uploadUrl method headers { name value } media { id status } } }",
                json!({ "i": input }),
                Some(&who.access),
            )
            .await["createUpload"]
            .clone();
        assert_eq!(ticket["method"], "PUT");
        assert_eq!(ticket["media"]["status"], "PENDING");
        let url = ticket["uploadUrl"].as_str().expect("url");
        assert!(
            url.starts_with(&format!("{}/media/uploads/", self.router_url)),
            "{url}"
        );
        let mut put = self.http.put(url).body(bytes);
        for header in ticket["headers"].as_array().expect("headers") {
            put = put.header(
                header["name"].as_str().expect("name"),
                header["value"].as_str().expect("value"),
            );
        }
        let status = put.send().await.expect("put").status().as_u16();
        (
            ticket["media"]["id"].as_str().expect("id").to_string(),
            status,
        )
    }

    /// A READY image of `who`'s for `purpose` (`AVATAR`, `POST`, `MESSAGE`): uploaded and completed.
    pub async fn upload_image(&self, who: &Account, purpose: &str) -> String {
        let bytes = parley_media::fixtures::png(64, 48);
        let input = json!({ "fileName": "a.png", "contentType": "image/png", "size": bytes.len(), "purpose": purpose });
        let (id, status) = self.upload(who, input, bytes).await;
        assert_eq!(status, 204);
        let done = self
            .ok(
                "mutation($id: ID!) { completeUpload(id: $id) { status } }",
                json!({ "id": id }),
                Some(&who.access),
            )
            .await;
        assert_eq!(done["completeUpload"]["status"], "READY");
        id
    }

    /// Uploads an avatar for `who` and shows it on their profile (retried until users has heard from media
    /// that the upload is ready); the profile's `avatarUrl` and the media id.
    pub async fn set_avatar(&self, who: &Account) -> (String, String) {
        let id = self.upload_image(who, "AVATAR").await;
        let url = crate::poll::eventually("users learns the avatar", || async {
            let (_, body) = self
                .gql(
                    "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { avatarUrl } }",
                    json!({ "i": { "avatarId": id } }),
                    Some(&who.access),
                )
                .await;
            body["data"]["updateProfile"]["avatarUrl"]
                .as_str()
                .map(str::to_string)
        })
        .await;
        (url, id)
    }
}
