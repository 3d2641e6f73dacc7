//! `parley-client`: Parley from a terminal. Tokens are kept in a session file between runs (refreshed and
//! rotated as needed), so `register` or `login` once, then post, comment, follow and chat.
//!
//! ```text
//! parley-client register --email ada@example.com --password 'correct horse 1' --name Ada --nickname ada
//! parley-client post --title Hello --body 'First post'
//! parley-client chat grace        # history and live messages; each line you type is sent
//! ```

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, Subcommand};
use parley_client::live::ChatFeed;
use parley_client::operations::{
    self, CreateComment, CreatePost, Follow, Me, SendMessage, StartChat, UserByNickname,
};
use parley_client::{ClientError, Parley, Tokens};
use tokio::io::AsyncBufReadExt;

#[derive(Parser)]
#[command(name = "parley-client", about = "Parley from a terminal")]
struct Cli {
    /// The router's GraphQL endpoint.
    #[arg(
        long,
        env = "PARLEY_URL",
        default_value = "http://127.0.0.1:4000/graphql"
    )]
    url: String,
    /// Where the tokens are kept between runs.
    #[arg(long, env = "PARLEY_SESSION", default_value = ".parley-session.json")]
    session: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Register {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        nickname: String,
    },
    Login {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
    /// Who the session belongs to.
    Me,
    Post {
        #[arg(long)]
        title: String,
        #[arg(long)]
        body: String,
    },
    Comment {
        #[arg(long)]
        post: String,
        #[arg(long)]
        body: String,
    },
    Follow {
        nickname: String,
    },
    /// Opens the direct chat with `nickname`: prints its messages as they come, sends each line of stdin.
    Chat {
        nickname: String,
        /// Show messages after this position only.
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let parley = Parley::new(&cli.url);
    parley.set_tokens(load(&cli.session)?);
    let outcome = run(&parley, cli.command).await;
    // Refresh tokens rotate: whatever happened, keep the newest.
    save(&cli.session, parley.tokens().as_ref())?;
    outcome
}

async fn run(parley: &Parley, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Register {
            email,
            password,
            name,
            nickname,
        } => {
            let tokens = parley.register(&email, &password, &name, &nickname).await?;
            println!("registered @{} ({})", tokens.nickname, tokens.user_id);
        }
        Command::Login { email, password } => {
            let tokens = parley.login(&email, &password).await?;
            println!("signed in as @{}", tokens.nickname);
        }
        Command::Me => {
            let me = parley
                .run::<Me>(operations::me::Variables)
                .await?
                .me
                .ok_or(ClientError::SignedOut)?;
            println!(
                "@{} · {} followers · {} following",
                me.nickname, me.follower_count, me.following_count
            );
        }
        Command::Post { title, body } => {
            let input = operations::create_post::CreatePostInput {
                title,
                body,
                topic: None,
                tags: vec![],
                attachment_ids: vec![],
            };
            let post = parley
                .run::<CreatePost>(operations::create_post::Variables { input })
                .await?
                .create_post;
            println!("posted {} ({})", post.title, post.id);
        }
        Command::Comment { post, body } => {
            let comment = parley
                .run::<CreateComment>(operations::create_comment::Variables {
                    post_id: post,
                    body,
                })
                .await?
                .create_comment;
            println!("commented ({})", comment.id);
        }
        Command::Follow { nickname } => {
            let user_id = user_id(parley, &nickname).await?;
            let status = parley
                .run::<Follow>(operations::follow::Variables { user_id })
                .await?
                .follow;
            println!("{status:?}");
        }
        Command::Chat { nickname, after } => chat(parley, &nickname, after).await?,
    }
    Ok(())
}

async fn user_id(parley: &Parley, nickname: &str) -> anyhow::Result<String> {
    let variables = operations::user_by_nickname::Variables {
        nickname: nickname.into(),
    };
    let user = parley
        .run::<UserByNickname>(variables)
        .await?
        .user_by_nickname;
    Ok(user
        .with_context(|| format!("no one is called @{nickname}"))?
        .id)
}

async fn chat(parley: &Parley, nickname: &str, after: i64) -> anyhow::Result<()> {
    let user_id = user_id(parley, nickname).await?;
    let chat_id = parley
        .run::<StartChat>(operations::start_chat::Variables { user_id })
        .await?
        .create_direct_chat
        .id;
    let mut feed = ChatFeed::follow(parley, &chat_id, after);
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            message = feed.next() => match message {
                Some(Ok(message)) => println!("{:>4} @{}: {}", message.seq, message.author, message.text.as_deref().unwrap_or("(deleted)")),
                Some(Err(error)) => return Err(error.into()),
                None => return Ok(()),
            },
            line = lines.next_line(), if stdin_open => match line? {
                Some(text) if !text.trim().is_empty() => send(parley, &chat_id, text).await?,
                Some(_) => {}
                None => stdin_open = false,
            },
        }
    }
}

/// Sends `text`, retrying a dropped request with the same `clientMessageId`: the server keeps the first
/// and answers a retry with it, so a retry never duplicates.
async fn send(parley: &Parley, chat_id: &str, text: String) -> Result<(), ClientError> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let client_message_id = format!("cli-{}-{nanos}", std::process::id());
    let mut pause = Duration::from_millis(200);
    for attempt in 1.. {
        let input = operations::send_message::SendMessageInput {
            kind: operations::send_message::MessageKind::TEXT,
            text: Some(text.clone()),
            media_id: None,
            reply_to_id: None,
            client_message_id: Some(client_message_id.clone()),
        };
        let variables = operations::send_message::Variables {
            chat_id: chat_id.into(),
            input,
        };
        match parley.run::<SendMessage>(variables).await {
            Err(ClientError::Network(_)) if attempt < 6 => {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            outcome => return outcome.map(|_| ()),
        }
    }
    Ok(())
}

fn load(path: &PathBuf) -> anyhow::Result<Option<Tokens>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).with_context(|| format!("{}", path.display()))?,
        )),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("{}", path.display())),
    }
}

/// Writes the session (or removes it when signed out) through a temporary file, so a crash never leaves half
/// a file; readable by its owner only, since the refresh token signs in.
fn save(path: &PathBuf, tokens: Option<&Tokens>) -> anyhow::Result<()> {
    use std::io::Write;
    let Some(tokens) = tokens else {
        let _ = std::fs::remove_file(path);
        return Ok(());
    };
    let partial = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(&partial)?
        .write_all(&serde_json::to_vec_pretty(tokens)?)?;
    std::fs::rename(&partial, path)?;
    Ok(())
}
