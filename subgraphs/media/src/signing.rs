//! Signed, expiring download URLs for the embedded mode (S3 presigns its own): the query string carries the
//! expiry and an HMAC-SHA256 over the media id, the variant and that expiry, keyed by a secret of the
//! subgraph's. An expired link, a tampered one, or one for another file or variant are refused alike
//! ([`MediaError::BadLink`]: 403, saying nothing about why). Signatures are compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::error::{MediaError, Result};

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks download links with one secret key.
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    fn mac(&self, id: Uuid, variant: &str, expires: i64) -> HmacSha256 {
        // A key of any length is accepted by HMAC.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(format!("{id}:{variant}:{expires}").as_bytes());
        mac
    }

    /// The query string of a link to `variant` of media `id` that works until `expires` (Unix seconds).
    pub fn query(&self, id: Uuid, variant: &str, expires: i64) -> String {
        let signature =
            URL_SAFE_NO_PAD.encode(self.mac(id, variant, expires).finalize().into_bytes());
        format!("expires={expires}&sig={signature}")
    }

    /// Whether a link's `expires` and `sig` are this signer's for `variant` of `id`, and not expired at `now`.
    pub fn verify(&self, id: Uuid, variant: &str, expires: i64, sig: &str, now: i64) -> Result<()> {
        if expires < now {
            return Err(MediaError::BadLink);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| MediaError::BadLink)?;
        self.mac(id, variant, expires)
            .verify_slice(&signature)
            .map_err(|_| MediaError::BadLink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `expires` and `sig` of a query string.
    fn parts(query: &str) -> (i64, String) {
        let mut expires = 0;
        let mut sig = String::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("expires", v)) => expires = v.parse().expect("expires"),
                Some(("sig", v)) => sig = v.to_string(),
                _ => {}
            }
        }
        (expires, sig)
    }

    #[test]
    fn links_expire_and_cannot_be_altered() {
        let signer = Signer::new(b"a secret of the media subgraph");
        let id = Uuid::now_v7();
        let (expires, sig) = parts(&signer.query(id, "SMALL", 1_000));
        assert_eq!(signer.verify(id, "SMALL", expires, &sig, 999), Ok(()));
        assert_eq!(
            signer.verify(id, "SMALL", expires, &sig, 1_001),
            Err(MediaError::BadLink),
            "expired"
        );
        assert_eq!(
            signer.verify(id, "SMALL", expires + 3_600, &sig, 999),
            Err(MediaError::BadLink),
            "a later expiry written in"
        );
        assert_eq!(
            signer.verify(id, "ORIGINAL", expires, &sig, 999),
            Err(MediaError::BadLink),
            "another variant"
        );
        assert_eq!(
            signer.verify(Uuid::now_v7(), "SMALL", expires, &sig, 999),
            Err(MediaError::BadLink),
            "another file"
        );
        assert_eq!(
            signer.verify(id, "SMALL", expires, "not base64!", 999),
            Err(MediaError::BadLink)
        );
        let other = Signer::new(b"another key");
        assert_eq!(
            other.verify(id, "SMALL", expires, &sig, 999),
            Err(MediaError::BadLink),
            "another key"
        );
    }
}
