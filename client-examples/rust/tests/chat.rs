//! The Rust client against the whole platform, through the router as an app would use it: two people
//! register, post, comment, follow and chat; alice's connection goes through a proxy the test cuts, so her
//! live chat must reconnect and resync (every message once, in order, the retried send not duplicated);
//! her access token goes bad and every caller waiting on it shares one refresh; the CLI does the same from
//! a terminal.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parley_client::live::ChatFeed;
use parley_client::operations::{
    self, CreateComment, CreatePost, Follow, Me, SendMessage, StartChat, UserByNickname,
};
use parley_client::{ChatMessage, Parley};
use parley_harness::Platform;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy that can drop every connection through it, and refuse new ones for a while.
struct Proxy {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let down = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (down, connections) = (down.clone(), connections.clone());
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if down.load(Ordering::SeqCst) {
                        continue; // dropped: the network is out
                    }
                    let connection = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    connections.lock().expect("lock").push(connection);
                }
            }
        });
        Proxy {
            addr,
            down,
            connections,
            accept,
        }
    }

    /// Drops every open connection; with `stay_down`, refuses new ones until [`Proxy::restore`].
    fn cut(&self, stay_down: bool) {
        self.down.store(stay_down, Ordering::SeqCst);
        for connection in self.connections.lock().expect("lock").drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut(true);
    }
}

async fn person(url: &str, nickname: &str) -> Parley {
    let parley = Parley::new(url);
    parley
        .register(
            &format!("{nickname}@example.com"),
            "correct horse 1",
            nickname,
            nickname,
        )
        .await
        .expect("register");
    parley
}

async fn send(parley: &Parley, chat_id: &str, text: &str, client_message_id: &str) -> ChatMessage {
    let input = operations::send_message::SendMessageInput {
        kind: operations::send_message::MessageKind::TEXT,
        text: Some(text.into()),
        media_id: None,
        reply_to_id: None,
        client_message_id: Some(client_message_id.into()),
    };
    let variables = operations::send_message::Variables {
        chat_id: chat_id.into(),
        input,
    };
    parley
        .run::<SendMessage>(variables)
        .await
        .expect("send")
        .send_message
        .into()
}

async fn next(feed: &mut ChatFeed) -> ChatMessage {
    tokio::time::timeout(Duration::from_secs(20), feed.next())
        .await
        .expect("a message within 20 s")
        .expect("the feed goes on")
        .expect("no error")
}

async fn user_id(parley: &Parley, nickname: &str) -> String {
    let variables = operations::user_by_nickname::Variables {
        nickname: nickname.into(),
    };
    parley
        .run::<UserByNickname>(variables)
        .await
        .expect("user")
        .user_by_nickname
        .expect("found")
        .id
}

#[tokio::test]
async fn the_rust_client_posts_follows_and_chats_through_drops_and_an_expired_token() {
    let p = Platform::start().await;
    let router: SocketAddr = p
        .router_url
        .trim_start_matches("http://")
        .parse()
        .expect("router address");
    let proxy = Proxy::start(router).await;
    let alice = person(&proxy.url(), "alice").await;
    let bob = person(&p.graphql_url(), "bob").await;

    let input = operations::create_post::CreatePostInput {
        title: "Hello from Rust".into(),
        body: "Typed from the supergraph.".into(),
        topic: None,
        tags: vec![],
        attachment_ids: vec![],
    };
    let post = alice
        .run::<CreatePost>(operations::create_post::Variables { input })
        .await
        .expect("post")
        .create_post;
    let comment = operations::create_comment::Variables {
        post_id: post.id.clone(),
        body: "Nice".into(),
    };
    assert_eq!(
        bob.run::<CreateComment>(comment)
            .await
            .expect("comment")
            .create_comment
            .body,
        "Nice"
    );
    let alice_id = user_id(&bob, "alice").await;
    let status = bob
        .run::<Follow>(operations::follow::Variables { user_id: alice_id })
        .await
        .expect("follow")
        .follow;
    assert_eq!(status, operations::follow::FollowStatus::FOLLOWING);
    let me = alice
        .run::<Me>(operations::me::Variables)
        .await
        .expect("me")
        .me
        .expect("signed in");
    assert_eq!(me.follower_count, 1);

    // Alice follows the chat live; bob writes.
    let bob_id = user_id(&alice, "bob").await;
    // Chat learns of new accounts from users' events: until it knows both, the chat is NOT_FOUND.
    let chat_id = parley_harness::eventually("chat knows alice and bob", || async {
        let variables = operations::start_chat::Variables {
            user_id: bob_id.clone(),
        };
        alice.run::<StartChat>(variables).await.ok()
    })
    .await
    .create_direct_chat
    .id;
    let mut feed = ChatFeed::follow(&alice, &chat_id, 0);
    send(&bob, &chat_id, "one", "b-1").await;
    let first = next(&mut feed).await;
    assert_eq!(
        (first.seq, first.text.as_deref(), first.author.as_str()),
        (1, Some("one"), "bob")
    );

    // Alice's network goes out; bob writes (and retries one send) while she is away; it comes back.
    proxy.cut(true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let two = send(&bob, &chat_id, "two", "b-2").await;
    let retried = send(&bob, &chat_id, "two", "b-2").await;
    assert_eq!(
        two.id, retried.id,
        "a retry with the same clientMessageId is the same message"
    );
    proxy.restore();
    send(&bob, &chat_id, "three", "b-3").await;
    let texts: Vec<(i64, Option<String>)> = [next(&mut feed).await, next(&mut feed).await]
        .into_iter()
        .map(|m| (m.seq, m.text))
        .collect();
    assert_eq!(texts, [(2, Some("two".into())), (3, Some("three".into()))]);
    assert!(feed.reconnects() >= 1, "the feed reconnected");

    // Alice's access token goes bad: two requests and the live feed hit it at once; one refresh serves all.
    let mut tokens = alice.tokens().expect("tokens");
    let refreshes_before = alice.refreshes();
    tokens.access_token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl".into();
    alice.set_tokens(Some(tokens));
    proxy.cut(false);
    tokio::time::sleep(Duration::from_millis(300)).await; // the HTTP pool notices its connection is gone
    let (a, b) = tokio::join!(
        alice.run::<Me>(operations::me::Variables),
        alice.run::<Me>(operations::me::Variables)
    );
    assert_eq!(
        a.expect("first").me.expect("me").id,
        b.expect("second").me.expect("me").id
    );
    send(&bob, &chat_id, "four", "b-4").await;
    let four = next(&mut feed).await;
    assert_eq!((four.seq, four.text.as_deref()), (4, Some("four")));
    assert_eq!(
        alice.refreshes() - refreshes_before,
        1,
        "one refresh for every caller"
    );

    // Nothing arrives twice.
    let extra = tokio::time::timeout(Duration::from_millis(1500), feed.next()).await;
    assert!(extra.is_err(), "no further message: {extra:?}");
}

#[tokio::test]
async fn the_cli_registers_posts_and_chats_from_a_terminal() {
    use std::process::Stdio;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    let p = Platform::start().await;
    let dir = std::env::temp_dir().join(format!("parley-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cli = |who: &str| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_parley-client"));
        command
            .env("PARLEY_URL", p.graphql_url())
            .env("PARLEY_SESSION", dir.join(format!("{who}.json")))
            .kill_on_drop(true);
        command
    };
    let run = |who: &str, args: &[&str]| {
        let mut command = cli(who);
        command.args(args);
        async move {
            let output = command.output().await.expect("run parley-client");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
    };
    for who in ["carol", "dave"] {
        let email = format!("{who}@example.com");
        let out = run(
            who,
            &[
                "register",
                "--email",
                &email,
                "--password",
                "correct horse 1",
                "--name",
                who,
                "--nickname",
                who,
            ],
        )
        .await;
        assert!(out.contains(&format!("registered @{who}")), "{out}");
    }
    assert!(run(
        "carol",
        &["post", "--title", "From the CLI", "--body", "hi"]
    )
    .await
    .contains("posted From the CLI"));
    // Social, too, learns of accounts from users' events: until it knows carol, following her is NOT_FOUND.
    parley_harness::eventually("social knows carol", || async {
        let output = cli("dave")
            .args(["follow", "carol"])
            .output()
            .await
            .expect("run parley-client");
        let out = String::from_utf8_lossy(&output.stdout).into_owned();
        (output.status.success() && out.contains("FOLLOWING")).then_some(())
    })
    .await;
    assert!(run("carol", &["me"]).await.contains("1 followers"));

    // Chat learns of new accounts from users' events: wait until it knows both (until then the chat is
    // NOT_FOUND), with carol's session as the CLI kept it.
    let carol_tokens: parley_client::Tokens =
        serde_json::from_slice(&std::fs::read(dir.join("carol.json")).expect("session"))
            .expect("tokens");
    let carol_api = Parley::new(&p.graphql_url());
    carol_api.set_tokens(Some(carol_tokens));
    let dave_id = user_id(&carol_api, "dave").await;
    parley_harness::eventually("chat knows carol and dave", || async {
        let variables = operations::start_chat::Variables {
            user_id: dave_id.clone(),
        };
        carol_api.run::<StartChat>(variables).await.ok()
    })
    .await;

    // Carol follows the chat in one process; dave types a line into another.
    let mut carol = cli("carol")
        .args(["chat", "dave"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("chat");
    let mut dave = cli("dave")
        .args(["chat", "carol"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("chat");
    let mut dave_in = dave.stdin.take().expect("stdin");
    dave_in
        .write_all(b"hello from the terminal\n")
        .await
        .expect("type");
    let mut lines = tokio::io::BufReader::new(carol.stdout.take().expect("stdout")).lines();
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.expect("read") {
            if line.contains("@dave: hello from the terminal") {
                return line;
            }
        }
        panic!("carol's chat ended");
    })
    .await
    .expect("carol sees dave's line");
    assert!(seen.trim_start().starts_with("1 @dave"), "{seen}");
    let _ = carol.kill().await;
    let _ = dave.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}
