//! The OpenAI-compatible Chat Completions protocol, streamed: `POST <url>/chat/completions` with
//! `stream: true` answers with server-sent events — `data: {json}` lines, each holding a piece of the text
//! (`choices[0].delta.content`), the usage in a last chunk when asked for (`stream_options.include_usage`),
//! then `data: [DONE]`. [`Completion::next`] hands out the pieces as they arrive.

use serde::Serialize;
use serde_json::{json, Value};

/// One message of the prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prompt {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    pub content: String,
}

/// What the provider counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// What arrives while the answer is written.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Usage(Usage),
}

/// Why there is no (whole) answer. The detail goes to the log, not to the chat.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("no answer in time")]
    Timeout,
    #[error("the provider failed: {0}")]
    Provider(String),
}

/// Where and as whom to ask.
pub struct Endpoint {
    pub url: String,
    pub model: String,
    pub api_key: Option<String>,
}

/// An answer being streamed.
pub struct Completion {
    response: reqwest::Response,
    buffer: Vec<u8>,
    done: bool,
}

impl Completion {
    /// Asks `endpoint` to answer `prompt`.
    pub async fn start(
        http: &reqwest::Client,
        endpoint: &Endpoint,
        prompt: &[Prompt],
    ) -> Result<Self, Failure> {
        let body = json!({
            "model": endpoint.model,
            "messages": prompt,
            "stream": true,
            "stream_options": { "include_usage": true },
        });
        let mut request = http
            .post(format!(
                "{}/chat/completions",
                endpoint.url.trim_end_matches('/')
            ))
            .json(&body);
        if let Some(key) = &endpoint.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Provider(e.to_string()))?;
        if !response.status().is_success() {
            return Err(Failure::Provider(format!("HTTP {}", response.status())));
        }
        Ok(Self {
            response,
            buffer: Vec::new(),
            done: false,
        })
    }

    /// The next piece; `None` once the provider said `[DONE]`. A stream that ends before that failed.
    pub async fn next(&mut self) -> Result<Option<Piece>, Failure> {
        loop {
            if self.done {
                return Ok(None);
            }
            while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                if let Some(piece) = self.read_line(line.trim_end())? {
                    return Ok(Some(piece));
                }
                if self.done {
                    return Ok(None);
                }
            }
            match self
                .response
                .chunk()
                .await
                .map_err(|e| Failure::Provider(e.to_string()))?
            {
                Some(bytes) => self.buffer.extend_from_slice(&bytes),
                None => return Err(Failure::Provider("the stream ended early".into())),
            }
        }
    }

    /// One line of the event stream: a piece, nothing (comments, other fields, empty deltas), or the end.
    fn read_line(&mut self, line: &str) -> Result<Option<Piece>, Failure> {
        let Some(data) = line.strip_prefix("data:").map(str::trim_start) else {
            return Ok(None);
        };
        if data == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        let chunk: Value =
            serde_json::from_str(data).map_err(|e| Failure::Provider(format!("a chunk: {e}")))?;
        if let Some(error) = chunk.get("error") {
            return Err(Failure::Provider(error.to_string()));
        }
        if let Some(text) = chunk["choices"][0]["delta"]["content"].as_str() {
            if !text.is_empty() {
                return Ok(Some(Piece::Text(text.to_string())));
            }
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            return Ok(Some(Piece::Usage(Usage {
                prompt_tokens: usage["prompt_tokens"].as_i64().unwrap_or(0),
                completion_tokens: usage["completion_tokens"].as_i64().unwrap_or(0),
            })));
        }
        Ok(None)
    }
}

/// About how many tokens `text` is (four characters each), where the provider did not say.
pub fn estimate_tokens(text: &str) -> i64 {
    (text.chars().count() as i64 + 3) / 4
}
