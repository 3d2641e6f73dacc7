//! Outgoing mail. SMTP when `PARLEY_SMTP_URL` is set; otherwise each message is written as an `.eml` file into
//! `<data_dir>/mail/` (lettre's file transport), which is how `parley up` and the tests read them.

use std::path::PathBuf;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address: {0}")]
    Address(String),
    #[error("cannot build message: {0}")]
    Build(String),
    #[error("cannot send mail: {0}")]
    Send(String),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// Sends plain-text mail.
pub struct Mailer {
    from: String,
    transport: Transport,
}

impl Mailer {
    /// SMTP if `smtp_url` is given, else files in `dir` (created if missing).
    pub fn new(from: &str, smtp_url: Option<&str>, dir: PathBuf) -> Result<Self, MailError> {
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| MailError::Send(e.to_string()))?
                    .build(),
            ),
            None => {
                // Mails carry reset and verification tokens: owner-only.
                crate::store::private_dir(&dir).map_err(|e| MailError::Send(e.to_string()))?;
                Transport::Files(AsyncFileTransport::new(dir))
            }
        };
        Ok(Self {
            from: from.to_string(),
            transport,
        })
    }

    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        self.send_listed(to, subject, body, None).await
    }

    /// Like [`Mailer::send`], for mail a user may stop: with `unsubscribe` (an HTTPS URL taking a POST) as
    /// RFC 8058 one-click `List-Unsubscribe`, which mail clients show as an unsubscribe button.
    pub async fn send_listed(
        &self,
        to: &str,
        subject: &str,
        body: String,
        unsubscribe: Option<&str>,
    ) -> Result<(), MailError> {
        let mut builder = Message::builder();
        if let Some(url) = unsubscribe {
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{url}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        let message = builder
            .from(
                self.from
                    .parse()
                    .map_err(|_| MailError::Address(self.from.clone()))?,
            )
            .to(to.parse().map_err(|_| MailError::Address(to.to_string()))?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError::Build(e.to_string()))?;
        match &self.transport {
            Transport::Smtp(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
            Transport::Files(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Send(e.to_string())),
        }
    }
}
