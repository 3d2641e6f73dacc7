//! Media through the router, as a client uploads and downloads: a ticket from `createUpload`, the bytes PUT
//! to its signed URL on the router's origin, `completeUpload` checking them by content, signed download links
//! that expire, who may see what, and deletion.

use parley_harness as support;

use serde_json::{json, Value};
use support::{codes, png, Platform};

const CREATE: &str =
    "mutation($i: CreateUploadInput!) { createUpload(input: $i) { media { id } } }";
const COMPLETE: &str =
    "mutation($id: ID!) { completeUpload(id: $id) { id status kind contentType width height fileName } }";
const MEDIA: &str = "query($id: ID!) { media(id: $id) { status url owner { id } } }";

fn input(name: &str, content_type: &str, size: usize, purpose: &str) -> Value {
    json!({ "fileName": name, "contentType": content_type, "size": size, "purpose": purpose })
}

#[tokio::test]
async fn uploads_are_checked_by_content_and_served_by_signed_links() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let http = reqwest::Client::new();

    // A PNG named .jpg and declared JPEG is stored as the PNG it is.
    let (avatar, put) = p
        .upload(
            &alice,
            input("me.jpg", "image/jpeg", 3_000, "AVATAR"),
            png(3_000),
        )
        .await;
    assert_eq!(put, 204);
    let done = p
        .ok(COMPLETE, json!({ "id": avatar }), Some(&alice.access))
        .await;
    assert_eq!(
        done["completeUpload"],
        json!({ "id": avatar, "status": "READY", "kind": "IMAGE", "contentType": "image/png",
                "width": 640, "height": 480, "fileName": "me.jpg" })
    );
    // Anyone sees an avatar; its link downloads the bytes through the router.
    let seen = p
        .ok(MEDIA, json!({ "id": avatar }), Some(&bob.access))
        .await;
    assert_eq!(seen["media"]["owner"]["id"], alice.id.as_str());
    let url = seen["media"]["url"].as_str().expect("url").to_string();
    let file = http.get(&url).send().await.expect("get");
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/png");
    assert_eq!(file.bytes().await.expect("bytes").to_vec(), png(3_000));
    let tampered = url.replace("sig=", "sig=A");
    assert_eq!(http.get(&tampered).send().await.expect("get").status(), 403);

    // A message's file is its owner's only (until it is sent in a chat).
    let (private, _) = p
        .upload(
            &alice,
            input("notes.png", "image/png", 500, "MESSAGE"),
            png(500),
        )
        .await;
    p.ok(COMPLETE, json!({ "id": private }), Some(&alice.access))
        .await;
    let (_, hidden) = p
        .gql(MEDIA, json!({ "id": private }), Some(&bob.access))
        .await;
    assert_eq!(codes(&hidden), ["NOT_FOUND"], "{hidden}");
    let (_, stolen) = p
        .gql(COMPLETE, json!({ "id": private }), Some(&bob.access))
        .await;
    assert_eq!(codes(&stolen), ["NOT_FOUND"]);

    // Text declared as an image is refused when checked, and nothing is kept.
    let (fake, _) = p
        .upload(
            &alice,
            input("cat.png", "image/png", 24, "AVATAR"),
            b"just some text, honestly".to_vec(),
        )
        .await;
    let (_, refused) = p
        .gql(COMPLETE, json!({ "id": fake }), Some(&alice.access))
        .await;
    assert_eq!(codes(&refused), ["BAD_USER_INPUT"], "{refused}");
    let failed = p
        .ok(MEDIA, json!({ "id": fake }), Some(&alice.access))
        .await;
    assert_eq!(
        failed["media"],
        json!({ "status": "FAILED", "url": null, "owner": { "id": alice.id } })
    );
    // Too large is refused before a byte is sent; more bytes than declared as they arrive.
    let (_, big) = p
        .gql(
            CREATE,
            json!({ "i": input("huge.png", "image/png", 50_000_000, "AVATAR") }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(codes(&big), ["BAD_USER_INPUT"]);
    let (_, over) = p
        .upload(
            &alice,
            input("small.png", "image/png", 100, "POST"),
            png(5_000),
        )
        .await;
    assert_eq!(over, 413);

    // The owner deletes: the link stops working.
    p.ok(
        "mutation($id: ID!) { deleteMedia(id: $id) }",
        json!({ "id": avatar }),
        Some(&alice.access),
    )
    .await;
    assert_eq!(http.get(&url).send().await.expect("get").status(), 404);
}
