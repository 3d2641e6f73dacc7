//! Media through the router, as a client uploads and downloads: a ticket from `createUpload`, the bytes PUT
//! to its signed URL on the router's origin, `completeUpload` checking them by content and processing images
//! (upright, metadata stripped, three sizes), signed download links that expire, who may see what, and
//! deletion of every file.

use parley_harness as support;

use serde_json::{json, Value};
use support::{codes, files, Platform};

const CREATE: &str =
    "mutation($i: CreateUploadInput!) { createUpload(input: $i) { media { id } } }";
const COMPLETE: &str =
    "mutation($id: ID!) { completeUpload(id: $id) { id status kind contentType width height fileName } }";
const MEDIA: &str = "query($id: ID!) { media(id: $id) { status url owner { id } } }";

fn input(name: &str, content_type: &str, size: usize, purpose: &str) -> Value {
    json!({ "fileName": name, "contentType": content_type, "size": size, "purpose": purpose })
}

/// The image at `url`, downloaded through the router: its content type and bytes.
async fn download(http: &reqwest::Client, url: &str) -> (String, Vec<u8>) {
    let file = http.get(url).send().await.expect("get");
    assert_eq!(file.status(), 200, "{url}");
    let kind = file.headers()["content-type"]
        .to_str()
        .expect("type")
        .to_string();
    (kind, file.bytes().await.expect("bytes").to_vec())
}

#[tokio::test]
async fn photos_are_turned_upright_stripped_and_resized() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let http = reqwest::Client::new();

    // A phone photo: stored sideways with "rotate 90°" in its EXIF, and a GPS position.
    let photo = files::jpeg_with_exif(1_200, 800, 6);
    assert!(files::has_exif(&photo));
    let (avatar, put) = p
        .upload(
            &alice,
            input("IMG_0001.JPG", "image/jpeg", photo.len(), "AVATAR"),
            photo,
        )
        .await;
    assert_eq!(put, 204);
    let done = p
        .ok(
            "mutation($id: ID!) { completeUpload(id: $id) { status width height blurhash } }",
            json!({ "id": avatar }),
            Some(&alice.access),
        )
        .await["completeUpload"]
        .clone();
    assert_eq!(
        (&done["status"], &done["width"], &done["height"]),
        (&json!("READY"), &json!(800), &json!(1_200)),
        "upright: {done}"
    );
    assert!(done["blurhash"].as_str().is_some_and(|h| h.len() > 6));

    // Anyone sees an avatar; each size downloads through the router, without the EXIF that went in.
    let links = p
        .ok(
            "query($id: ID!) { media(id: $id) { original: url small: url(variant: SMALL) \
             medium: url(variant: MEDIUM) thumbnail: url(variant: THUMBNAIL) } }",
            json!({ "id": avatar }),
            Some(&bob.access),
        )
        .await["media"]
        .clone();
    for (name, long_side) in [
        ("original", 1_200),
        ("medium", 1_080),
        ("small", 480),
        ("thumbnail", 128),
    ] {
        let (kind, bytes) = download(&http, links[name].as_str().expect("url")).await;
        assert_eq!(kind, "image/jpeg", "{name}");
        assert!(!files::has_exif(&bytes), "{name} carries no EXIF");
        let image = image::load_from_memory(&bytes).expect("decodes");
        assert_eq!(image.width().max(image.height()), long_side, "{name}");
        assert!(image.height() > image.width(), "{name} is upright");
    }
}

#[tokio::test]
async fn uploads_are_checked_by_content_and_served_by_signed_links() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let http = reqwest::Client::new();

    // A PNG named .jpg and declared JPEG is stored as the PNG it is.
    let png = files::png(640, 480);
    let (avatar, put) = p
        .upload(
            &alice,
            input("me.jpg", "image/jpeg", png.len(), "AVATAR"),
            png.clone(),
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
    assert_eq!(
        download(&http, &url).await,
        ("image/png".to_string(), png),
        "a PNG without metadata is kept as it came"
    );
    // A tampered signature, a link re-dated, another size under the same signature: 403, nothing said.
    let redated = {
        let (base, query) = url.split_once("expires=").expect("expires");
        let rest = query.split_once('&').expect("sig").1;
        format!("{base}expires=99999999999&{rest}")
    };
    for bad in [
        url.replace("sig=", "sig=A"),
        redated,
        url.replace("/original?", "/small?"),
    ] {
        let answer = http.get(&bad).send().await.expect("get");
        assert_eq!(answer.status(), 403, "{bad}");
        assert!(answer.bytes().await.expect("body").is_empty());
    }

    // A message's file is its owner's only (until it is sent in a chat).
    let (private, _) = p
        .upload(
            &alice,
            input("notes.pdf", "application/pdf", 500, "MESSAGE"),
            files::pdf(500),
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
    // A decompression bomb — 50,000 × 50,000 pixels in 200 bytes — is refused from its header, undecoded.
    let bomb = files::png_header(50_000, 50_000, 200);
    let (bomb, _) = p
        .upload(&alice, input("bomb.png", "image/png", 200, "POST"), bomb)
        .await;
    let (_, refused) = p
        .gql(COMPLETE, json!({ "id": bomb }), Some(&alice.access))
        .await;
    assert_eq!(codes(&refused), ["BAD_USER_INPUT"], "{refused}");
    assert!(refused.to_string().contains("pixels"), "{refused}");
    // A header that passes and a body that does not decode: refused once processed.
    let broken = files::png_header(640, 480, 2_000);
    let (broken, _) = p
        .upload(
            &alice,
            input("broken.png", "image/png", 2_000, "POST"),
            broken,
        )
        .await;
    let (_, refused) = p
        .gql(COMPLETE, json!({ "id": broken }), Some(&alice.access))
        .await;
    assert_eq!(codes(&refused), ["BAD_USER_INPUT"], "{refused}");

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
            files::png(640, 480),
        )
        .await;
    assert_eq!(over, 413);

    // The owner deletes: the link stops working and every file is gone.
    let stored = |id: &str| {
        let root = p.data_dir.join("media");
        [
            root.join("originals").join(id),
            root.join("variants").join(id).join("small"),
        ]
        .map(|path| path.exists())
    };
    assert_eq!(stored(&avatar), [true, true]);
    p.ok(
        "mutation($id: ID!) { deleteMedia(id: $id) }",
        json!({ "id": avatar }),
        Some(&alice.access),
    )
    .await;
    assert_eq!(http.get(&url).send().await.expect("get").status(), 404);
    assert_eq!(stored(&avatar), [false, false]);
}

/// A message's media is for the chat's members, a post's attachments for the post's readers, an avatar for
/// anyone — read through what holds them; `media(id)` stays the owner's. Each domain takes only the caller's
/// own READY upload made for it, and forgets an upload its owner deletes.
#[tokio::test]
async fn media_follows_what_holds_it() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let carol = p.register("carol").await;
    let http = reqwest::Client::new();

    // An avatar: on the profile for everyone, its avatarUrl the SMALL size.
    let (avatar_url, avatar) = p.set_avatar(&alice).await;
    let profile = p
        .ok(
            "query($id: ID!) { user(id: $id) { avatarUrl avatar { id kind url(variant: THUMBNAIL) } } }",
            json!({ "id": alice.id }),
            None,
        )
        .await["user"]
        .clone();
    assert_eq!(profile["avatarUrl"], avatar_url.as_str());
    assert_eq!(profile["avatar"]["id"], avatar.as_str());
    let (kind, bytes) = download(&http, &avatar_url).await;
    assert_eq!(kind, "image/jpeg");
    let small = image::load_from_memory(&bytes).expect("decodes");
    assert_eq!((small.width(), small.height()), (64, 48), "never enlarged");
    download(&http, profile["avatar"]["url"].as_str().expect("thumbnail")).await;
    // Only an avatar upload of one's own is an avatar.
    let for_posts = p.upload_image(&alice, "POST").await;
    let bobs_avatar = p.upload_image(&bob, "AVATAR").await;
    for id in [&for_posts, &bobs_avatar] {
        let (_, refused) = p
            .gql(
                "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { id } }",
                json!({ "i": { "avatarId": id } }),
                Some(&alice.access),
            )
            .await;
        assert_eq!(codes(&refused), ["BAD_USER_INPUT"], "{refused}");
    }

    // A post's attachment: whoever reads the post reads it; media(id) is still the owner's alone.
    const CREATE_POST: &str = "mutation($i: CreatePostInput!) { createPost(input: $i) { id } }";
    let (_, stolen) = p
        .gql(
            CREATE_POST,
            json!({ "i": { "title": "mine", "body": "b", "attachmentIds": [bobs_avatar] } }),
            Some(&alice.access),
        )
        .await;
    assert_eq!(codes(&stolen), ["BAD_USER_INPUT"], "{stolen}");
    let post = support::eventually("posts learns the upload", || async {
        let (_, body) = p
            .gql(
                CREATE_POST,
                json!({ "i": { "title": "a photo", "body": "look", "attachmentIds": [for_posts] } }),
                Some(&alice.access),
            )
            .await;
        body["data"]["createPost"]["id"].as_str().map(str::to_string)
    })
    .await;
    const ATTACHMENTS: &str =
        "query($id: ID!) { post(id: $id) { attachments { id kind url(variant: SMALL) } } }";
    let seen = p
        .ok(ATTACHMENTS, json!({ "id": post }), Some(&bob.access))
        .await;
    let attached = &seen["post"]["attachments"][0];
    assert_eq!(attached["id"], for_posts.as_str());
    download(&http, attached["url"].as_str().expect("url")).await;
    let (_, direct) = p
        .gql(MEDIA, json!({ "id": for_posts }), Some(&bob.access))
        .await;
    assert_eq!(codes(&direct), ["NOT_FOUND"], "{direct}");

    // A message's media: the members read it through the message; an outsider reaches neither.
    let chat = support::direct_chat(&p, &alice, &bob).await;
    let photo = p.upload_image(&alice, "MESSAGE").await;
    let message = support::eventually("chat learns the upload", || async {
        let (_, body) = p
            .gql(
                "mutation($c: ID!, $m: ID!) { sendMessage(chatId: $c, input: { kind: IMAGE, mediaId: $m }) { id } }",
                json!({ "c": chat, "m": photo }),
                Some(&alice.access),
            )
            .await;
        body["data"]["sendMessage"]["id"].as_str().map(str::to_string)
    })
    .await;
    const MESSAGE_MEDIA: &str =
        "query($id: ID!) { message(id: $id) { media { id url(variant: MEDIUM) blurhash } } }";
    let read = p
        .ok(MESSAGE_MEDIA, json!({ "id": message }), Some(&bob.access))
        .await;
    assert_eq!(read["message"]["media"]["id"], photo.as_str());
    download(
        &http,
        read["message"]["media"]["url"].as_str().expect("url"),
    )
    .await;
    for (query, id) in [(MESSAGE_MEDIA, &message), (MEDIA, &photo)] {
        let (_, hidden) = p.gql(query, json!({ "id": id }), Some(&carol.access)).await;
        assert_eq!(codes(&hidden), ["NOT_FOUND"], "{hidden}");
    }

    // Deleting an upload takes it off the post and the profile.
    for id in [&for_posts, &avatar] {
        p.ok(
            "mutation($id: ID!) { deleteMedia(id: $id) }",
            json!({ "id": id }),
            Some(&alice.access),
        )
        .await;
    }
    support::eventually("posts and users forget deleted uploads", || async {
        let post = p
            .ok(ATTACHMENTS, json!({ "id": post }), Some(&bob.access))
            .await;
        let user = p
            .ok(
                "query($id: ID!) { user(id: $id) { avatarUrl avatar { id } } }",
                json!({ "id": alice.id }),
                None,
            )
            .await;
        (post["post"]["attachments"] == json!([])
            && user["user"] == json!({ "avatarUrl": null, "avatar": null }))
        .then_some(())
    })
    .await;
}

/// `mediaProcessed` over a WebSocket through the router: subscribed before completion, it delivers the READY
/// media once the worker is done, then completes; another user cannot follow someone's upload.
#[tokio::test]
async fn media_processed_streams_the_end_of_processing() {
    let p = Platform::start().await;
    let alice = p.register("alice").await;
    let bob = p.register("bob").await;
    let bytes = files::png(320, 240);
    let (id, _) = p
        .upload(
            &alice,
            input("a.png", "image/png", bytes.len(), "POST"),
            bytes,
        )
        .await;
    const PROCESSED: &str =
        "subscription($id: ID!) { mediaProcessed(id: $id) { id status width url(variant: SMALL) } }";
    let mut ws = support::WsClient::connect(&p, Some(&alice.access)).await;
    ws.subscribe("m", PROCESSED, json!({ "id": id })).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    p.ok(COMPLETE, json!({ "id": id }), Some(&alice.access))
        .await;
    let wait = std::time::Duration::from_secs(10);
    let done = ws.next_for("m", wait).await.expect("an answer");
    let media = &done["payload"]["data"]["mediaProcessed"];
    assert_eq!(
        (&media["status"], &media["width"]),
        (&json!("READY"), &json!(320)),
        "{done}"
    );
    assert!(media["url"].as_str().is_some());
    let end = ws.next_message(wait).await.expect("complete");
    assert_eq!(end["type"], "complete", "{end}");
    ws.close().await;

    let mut ws = support::WsClient::connect(&p, Some(&bob.access)).await;
    ws.subscribe("m", PROCESSED, json!({ "id": id })).await;
    let refused = ws.next_for("m", wait).await.expect("an answer");
    assert_eq!(support::ws_codes(&refused), ["NOT_FOUND"], "{refused}");
    ws.close().await;
}

/// A browser app on another origin uploads as the web example does: the preflight of its PUT and the PUT
/// itself are allowed for the configured origins only (the engine's CORS covers only GraphQL).
#[tokio::test]
async fn browser_apps_on_allowed_origins_upload_across_origins() {
    let app = "http://app.example";
    let p = Platform::start_full(support::Store::Sqlite, &["--cors-origins", app]).await;
    let alice = p.register("alice").await;
    let http = reqwest::Client::new();
    let allow_origin = |response: &reqwest::Response| {
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().expect("ascii").to_string())
    };
    let preflight = |origin: &str, url: String, method: &str| {
        http.request(reqwest::Method::OPTIONS, url)
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type")
            .send()
    };

    let graphql = preflight(app, p.graphql_url(), "POST")
        .await
        .expect("preflight");
    assert_eq!(allow_origin(&graphql).as_deref(), Some(app));

    let bytes = files::png(32, 32);
    let ticket = p
        .ok(
            "mutation($i: CreateUploadInput!) { createUpload(input: $i) { uploadUrl headers { name value } } }",
            json!({ "i": input("a.png", "image/png", bytes.len(), "AVATAR") }),
            Some(&alice.access),
        )
        .await;
    let url = ticket["createUpload"]["uploadUrl"]
        .as_str()
        .expect("url")
        .to_string();
    let allowed = preflight(app, url.clone(), "PUT").await.expect("preflight");
    assert_eq!(allowed.status(), 204);
    assert_eq!(allow_origin(&allowed).as_deref(), Some(app));
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .expect("ascii");
    assert!(methods.contains("PUT"), "{methods}");
    let stranger = preflight("http://evil.example", url.clone(), "PUT")
        .await
        .expect("preflight");
    assert_eq!(
        allow_origin(&stranger),
        None,
        "an origin not configured is not allowed"
    );

    let put = http
        .put(&url)
        .header("origin", app)
        .header("content-type", "image/png")
        .body(bytes)
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 204);
    assert_eq!(
        allow_origin(&put).as_deref(),
        Some(app),
        "the app may read the answer"
    );
}
