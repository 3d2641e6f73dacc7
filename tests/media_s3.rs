//! Media in production mode: PostgreSQL, events through Redis, and the files in a real S3-compatible server
//! (s3s-fs, started by the test command, which checks SigV4 signatures as S3 does). Clients send and fetch
//! bytes straight to and from the bucket through presigned URLs; GraphQL and the router carry none of them.

use parley_harness as support;

use parley_kit::testing::{s3_server, RedisServer};
use serde_json::json;
use support::{codes, files, Options, Platform, Store};

#[tokio::test]
async fn uploads_and_downloads_go_straight_to_the_bucket() {
    let (Some(s3), Some(_), Some(redis)) =
        (s3_server(), support::postgres_url(), RedisServer::start())
    else {
        return;
    };
    let p = Platform::start_opts(Options {
        store: Some(Store::Postgres),
        redis_url: Some(redis.url()),
        s3: Some(s3.clone()),
        ..Default::default()
    })
    .await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    // No pooled connections: the bucket closes the ones it refused a body on.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");

    let photo = files::jpeg_with_exif(1_600, 1_200, 1);
    let ticket = p
        .ok(
            "mutation($i: CreateUploadInput!) { createUpload(input: $i) { uploadUrl method headers { name value } media { id } } }",
            json!({ "i": { "fileName": "beach.jpg", "contentType": "image/jpeg", "size": photo.len(), "purpose": "POST" } }),
            Some(&alice.access),
        )
        .await["createUpload"]
        .clone();
    let url = ticket["uploadUrl"].as_str().expect("url");
    assert!(
        url.starts_with(&format!("{}/{}/originals/", s3.url, s3.bucket)),
        "{url}"
    );
    assert!(url.contains("X-Amz-Signature="), "presigned: {url}");
    let id = ticket["media"]["id"].as_str().expect("id").to_string();
    let put = |body: Vec<u8>, content_type: &str| {
        http.put(url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    // The bucket refuses what the signature does not cover: more bytes than declared, another type. (It may
    // answer 403 and close before reading the body, which the client sees as a cut connection.)
    let refused = |sent: Result<reqwest::Response, reqwest::Error>| match sent {
        Ok(response) => assert_eq!(response.status(), 403),
        Err(err) => assert!(err.is_request(), "{err}"),
    };
    let mut longer = photo.clone();
    longer.extend([0; 100]);
    refused(put(longer, "application/octet-stream").await);
    refused(put(photo.clone(), "text/html").await);
    // Completing before the bytes arrived says so.
    let (_, early) = p
        .gql(
            "mutation($id: ID!) { completeUpload(id: $id) { status } }",
            json!({ "id": id }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(codes(&early), ["BAD_USER_INPUT"], "{early}");
    let sent = put(photo.clone(), "application/octet-stream")
        .await
        .expect("put");
    assert!(sent.status().is_success(), "{}", sent.status());

    // Processed from the bucket into the bucket; the links are presigned GETs that answer with the type
    // the bytes were checked to be.
    let done = p
        .ok(
            "mutation($id: ID!) { completeUpload(id: $id) { status width height \
             original: url small: url(variant: SMALL) } }",
            json!({ "id": id }),
            Some(&alice.access),
        )
        .await["completeUpload"]
        .clone();
    assert_eq!(
        (&done["status"], &done["width"]),
        (&json!("READY"), &json!(1_600))
    );
    let small = done["small"].as_str().expect("small");
    assert!(small.starts_with(&s3.url), "{small}");
    let fetched = http.get(small).send().await.expect("get");
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.headers()["content-type"], "image/jpeg");
    assert_eq!(
        fetched.headers()["content-disposition"],
        "inline; filename*=UTF-8''beach.jpg"
    );
    let image = image::load_from_memory(&fetched.bytes().await.expect("bytes")).expect("decodes");
    assert_eq!((image.width(), image.height()), (480, 360));
    let original = done["original"].as_str().expect("original");
    let bytes = http
        .get(original)
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert!(!files::has_exif(&bytes), "stripped in the bucket too");
    // A tampered signature is refused by the bucket.
    let last = if small.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{last}", &small[..small.len() - 1]);
    assert_eq!(http.get(&tampered).send().await.expect("get").status(), 403);

    // Attached to a post, bob reads it through the post; deleting removes every object.
    let post = support::eventually("posts learns the upload", || async {
        let (_, body) = p
            .gql(
                "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }",
                json!({ "i": { "title": "beach", "body": "b", "attachmentIds": [id] } }),
                Some(&alice.access),
            )
            .await;
        body["data"]["createPost"]["id"]
            .as_str()
            .map(str::to_string)
    })
    .await;
    let seen = p
        .ok(
            "query($id: ID!) { post(id: $id) { attachments { url(variant: THUMBNAIL) } } }",
            json!({ "id": post }),
            Some(&bob.access),
        )
        .await;
    let thumbnail = seen["post"]["attachments"][0]["url"].as_str().expect("url");
    assert_eq!(http.get(thumbnail).send().await.expect("get").status(), 200);
    p.ok(
        "mutation($id: ID!) { deleteMedia(id: $id) }",
        json!({ "id": id }),
        Some(&alice.access),
    )
    .await;
    for gone in [original, small, thumbnail] {
        assert_eq!(
            http.get(gone).send().await.expect("get").status(),
            404,
            "{gone}"
        );
    }
}
