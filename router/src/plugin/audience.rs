//! The live front's audience questions to one owner (posts for a post's streams, chat for a chat's):
//! which of a signed-in stream's viewers an event is for (`/internal/live-audience`,
//! `parley_kit::live_audience` on the owner's side).
//!
//! Questions are batched. Each event of each signed-in stream asks one question per chunk of its viewers;
//! a thousand chats of ten members at 50 messages a second would be 50 loopback requests a second, each
//! costing the router more than the ten frames it decides. So [`Owner::ask`] queues the question, and up
//! to [`FLUSHERS`] requests per owner are in flight at once, each carrying what queued while the others
//! were out (at most [`MAX_BATCH_QUESTIONS`] questions and [`MAX_BATCH_VIEWERS`] viewers). An idle owner
//! sends a question at once, alone; a busy one sends fewer, fuller requests. A request that fails or comes
//! back malformed answers every question in it with `None` (the front then ends those viewers rather than
//! guess).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parley_protocol::headers::ROUTER_KEY;
use parley_protocol::live_front::AUDIENCE_PATH;
use serde::Deserialize;
use tokio::sync::oneshot;

/// Requests in flight to one owner at once (per router process).
const FLUSHERS: usize = 4;
/// Questions one request carries at most (the owners take up to 256).
const MAX_BATCH_QUESTIONS: usize = 128;
/// Viewers one request names at most, a single larger question aside (the owners take up to 10,000).
const MAX_BATCH_VIEWERS: usize = 2_000;

/// The owner's answer for one viewer and one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Verdict {
    See,
    Skip,
    /// The post is no longer the viewer's to see, or they are no longer in the chat.
    End,
    /// The viewer's session was revoked.
    Revoked,
    /// The owner could not say: the viewer is told to resubscribe rather than given what may not be theirs.
    #[serde(skip)]
    Unknown,
}

/// One owner's audience endpoint and the questions waiting for it.
pub(super) struct Owner {
    http: reqwest::Client,
    url: String,
    router_key: String,
    timeout: Duration,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Asked>,
    /// Flush tasks running (at most [`FLUSHERS`]).
    flushing: usize,
}

struct Asked {
    /// The question as JSON text.
    question: String,
    viewers: usize,
    answer: oneshot::Sender<Option<Vec<Verdict>>>,
}

impl Owner {
    /// The owner at `base` (its URL without a path), asked with the router key.
    pub(super) fn new(
        http: reqwest::Client,
        base: &str,
        router_key: &str,
        timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            http,
            url: format!("{}{AUDIENCE_PATH}", base.trim_end_matches('/')),
            router_key: router_key.to_string(),
            timeout,
            queue: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Every critical section leaves the queue whole.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The verdicts for `question` (JSON text in the owner's shape, naming `viewers` viewers), one per viewer
    /// in order; `None` when the owner could not say.
    pub(super) async fn ask(
        self: &Arc<Self>,
        question: String,
        viewers: usize,
    ) -> Option<Vec<Verdict>> {
        let (answer, answered) = oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.waiting.push_back(Asked {
                question,
                viewers,
                answer,
            });
            let start = queue.flushing < FLUSHERS;
            if start {
                queue.flushing += 1;
            }
            start
        };
        if start {
            tokio::spawn(self.clone().flush());
        }
        answered.await.ok().flatten()
    }

    /// Sends what waits, batch after batch, until nothing does.
    async fn flush(self: Arc<Self>) {
        let mut running = Running(Some(self));
        while let Some(batch) = running.owner().next_batch() {
            let answers = running.owner().send(&batch).await;
            let mut answers = answers.map(Vec::into_iter);
            for asked in batch {
                let verdicts = answers
                    .as_mut()
                    .and_then(Iterator::next)
                    .filter(|verdicts| verdicts.len() == asked.viewers);
                // The asker may have gone (its stream closed): nothing to tell.
                let _ = asked.answer.send(verdicts);
            }
        }
        running.0 = None;
    }

    /// The next batch, or `None` (this flusher then stops, in the same critical section that saw the
    /// queue empty, so a question queued after it is always flushed).
    fn next_batch(&self) -> Option<Vec<Asked>> {
        let mut queue = self.lock();
        if queue.waiting.is_empty() {
            queue.flushing -= 1;
            return None;
        }
        let mut batch = Vec::new();
        let mut viewers = 0;
        while let Some(next) = queue.waiting.front() {
            let full =
                batch.len() == MAX_BATCH_QUESTIONS || viewers + next.viewers > MAX_BATCH_VIEWERS;
            if !batch.is_empty() && full {
                break;
            }
            viewers += next.viewers;
            batch.extend(queue.waiting.pop_front());
        }
        Some(batch)
    }

    /// One request for `batch`: the verdicts of each question, or `None` for all of them.
    async fn send(&self, batch: &[Asked]) -> Option<Vec<Vec<Verdict>>> {
        #[derive(Deserialize)]
        struct Answers {
            answers: Vec<Vec<Verdict>>,
        }
        // The questions are JSON already (their viewer lists made once per change): written side by side.
        let length = batch
            .iter()
            .map(|asked| asked.question.len() + 1)
            .sum::<usize>();
        let mut body = String::with_capacity(length + 16);
        body.push_str(r#"{"questions":["#);
        for (n, asked) in batch.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            body.push_str(&asked.question);
        }
        body.push_str("]}");
        let sent = self
            .http
            .post(&self.url)
            .timeout(self.timeout)
            .header(ROUTER_KEY, &self.router_key)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        let answers = match sent {
            Ok(response) => response.json::<Answers>().await,
            Err(err) => Err(err),
        };
        match answers {
            Ok(answers) if answers.answers.len() == batch.len() => Some(answers.answers),
            Ok(_) => {
                tracing::warn!("live front: an audience answer did not match its questions");
                None
            }
            Err(err) => {
                tracing::warn!(error = %err, "live front: an event's audience was not judged");
                None
            }
        }
    }
}

/// A flusher's count in its owner's queue; a flusher dropped mid-flight (its runtime shutting down) gives
/// its place back, so the queue never waits on a flusher that is gone.
struct Running(Option<Arc<Owner>>);

impl Running {
    fn owner(&self) -> &Arc<Owner> {
        self.0.as_ref().expect("running")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(owner) = self.0.take() {
            owner.lock().flushing -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An owner on loopback answering each question after `delay` (`broken`: one answer short); the
    /// number of requests and of questions it got.
    async fn serve(delay: Duration, broken: bool) -> (String, Arc<(AtomicUsize, AtomicUsize)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let counts = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let counted = counts.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.expect("accept");
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    loop {
                        let mut chunk = [0u8; 4096];
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .map_or(0, |n| n.trim().parse().expect("length"));
                        if buffer.len() < end + 4 + length {
                            continue;
                        }
                        let body: Value =
                            serde_json::from_slice(&buffer[end + 4..end + 4 + length])
                                .expect("json");
                        buffer.drain(..end + 4 + length);
                        let questions = body["questions"].as_array().expect("questions");
                        counted.0.fetch_add(1, Ordering::SeqCst);
                        counted.1.fetch_add(questions.len(), Ordering::SeqCst);
                        // `see` for questions naming an odd number of viewers, `skip` for the others.
                        let mut answers: Vec<Value> = questions
                            .iter()
                            .map(|q| {
                                let viewers = q["viewers"].as_array().expect("viewers").len();
                                let verdict = if viewers % 2 == 1 { "see" } else { "skip" };
                                json!(vec![verdict; viewers])
                            })
                            .collect();
                        if broken {
                            answers.pop();
                        }
                        tokio::time::sleep(delay).await;
                        let answer = json!({ "answers": answers }).to_string();
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        socket.write_all(response.as_bytes()).await.expect("write");
                    }
                });
            }
        });
        (base, counts)
    }

    fn question(viewers: usize) -> String {
        json!({ "chatId": "c", "viewers": vec![json!({ "user": "u", "session": "s" }); viewers] })
            .to_string()
    }

    /// Questions asked while others are out go together, and each asker gets its own verdicts.
    #[tokio::test]
    async fn questions_asked_together_share_requests() {
        let (base, counts) = serve(Duration::from_millis(50), false).await;
        let owner = Owner::new(reqwest::Client::new(), &base, "key", Duration::from_secs(5));
        let asks = (1..=40).map(|n| {
            let owner = owner.clone();
            async move { (n, owner.ask(question(n), n).await) }
        });
        for (n, verdicts) in futures::future::join_all(asks).await {
            let verdict = if n % 2 == 1 {
                Verdict::See
            } else {
                Verdict::Skip
            };
            assert_eq!(verdicts, Some(vec![verdict; n]), "question {n}");
        }
        let (requests, questions) = (
            counts.0.load(Ordering::SeqCst),
            counts.1.load(Ordering::SeqCst),
        );
        assert_eq!(questions, 40);
        assert!(requests <= FLUSHERS, "{requests} requests for 40 questions");
        // Idle again: the next question goes alone, at once.
        assert_eq!(owner.ask(question(3), 3).await, Some(vec![Verdict::See; 3]));
        assert_eq!(counts.0.load(Ordering::SeqCst), requests + 1);
        assert_eq!(owner.lock().flushing, 0);
    }

    /// A batch goes over the viewer cap only with a single question; an answer that does not match its
    /// questions, or no owner at all, is `None` for every asker.
    #[tokio::test]
    async fn batches_are_bounded_and_a_bad_answer_is_no_answer() {
        let (base, counts) = serve(Duration::ZERO, false).await;
        let owner = Owner::new(reqwest::Client::new(), &base, "key", Duration::from_secs(5));
        let big = MAX_BATCH_VIEWERS + 1;
        let (a, b) = tokio::join!(owner.ask(question(big), big), owner.ask(question(1), 1));
        assert_eq!(
            (a.map(|v| v.len()), b.map(|v| v.len())),
            (Some(big), Some(1))
        );
        assert_eq!(counts.0.load(Ordering::SeqCst), 2);

        let (base, _) = serve(Duration::ZERO, true).await;
        let owner = Owner::new(reqwest::Client::new(), &base, "key", Duration::from_secs(5));
        let (a, b) = tokio::join!(owner.ask(question(2), 2), owner.ask(question(1), 1));
        assert_eq!((a, b), (None, None));

        let gone = Owner::new(
            reqwest::Client::new(),
            "http://127.0.0.1:9",
            "key",
            Duration::from_secs(5),
        );
        assert_eq!(gone.ask(question(1), 1).await, None);
        assert_eq!(gone.lock().flushing, 0);
    }
}
