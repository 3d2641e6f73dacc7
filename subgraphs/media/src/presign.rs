//! S3 presigned URLs (AWS Signature Version 4, query-string authentication), made here rather than by
//! `object_store`: its signer signs only the `host` header, and Parley needs two more guarantees from the
//! bucket itself —
//! - an upload URL signs `content-length` (the declared size) and `content-type`
//!   (`application/octet-stream`), so S3 refuses a body of any other length before storing it, and no client
//!   can make the bucket serve its bytes as `text/html`;
//! - a download URL signs `response-content-type` and `response-content-disposition`, so S3 answers with
//!   the type the bytes were checked to be, whatever was stored.
//!
//! The algorithm is AWS's published one (canonical request → string to sign → HMAC chain over date, region,
//! service); the unit test checks it against AWS's own worked example.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Where a bucket is and the key to sign with.
#[derive(Clone, Debug)]
pub struct Bucket {
    /// The origin requests go to: an S3-compatible server's (`path_style`: the bucket is the first path
    /// segment), or the bucket's own virtual host on AWS (`https://photos.s3.eu-west-1.amazonaws.com`).
    pub endpoint: String,
    /// Where the server itself reaches the bucket (the same as `endpoint` unless clients see it elsewhere).
    pub store_endpoint: String,
    pub name: String,
    pub path_style: bool,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// A request to presign: `method` on object `key`, valid `expires_in` seconds from `now`.
pub struct Presign<'a> {
    pub method: &'a str,
    pub key: &'a str,
    pub now: DateTime<Utc>,
    pub expires_in: u64,
    /// Headers the client must send exactly (lower-case names), signed.
    pub headers: &'a [(&'a str, String)],
    /// Extra query parameters, signed (`response-content-type`…).
    pub query: &'a [(&'a str, String)],
}

impl Bucket {
    /// The presigned URL for `request`.
    pub fn presign(&self, request: &Presign<'_>) -> String {
        let (scheme, host) = self
            .endpoint
            .split_once("://")
            .unwrap_or(("https", self.endpoint.as_str()));
        let host = host.trim_end_matches('/');
        let path = if self.path_style {
            format!(
                "/{}/{}",
                encode(&self.name, false),
                encode(request.key, false)
            )
        } else {
            format!("/{}", encode(request.key, false))
        };
        let date = request.now.format("%Y%m%d").to_string();
        let stamp = request.now.format("%Y%m%dT%H%M%SZ").to_string();
        let scope = format!("{date}/{}/s3/aws4_request", self.region);

        let mut headers: Vec<(String, String)> = vec![("host".into(), host.to_string())];
        headers.extend(
            request
                .headers
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string())),
        );
        headers.sort();
        let signed_headers = headers
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(";");

        let mut query: Vec<(String, String)> = vec![
            ("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()),
            (
                "X-Amz-Credential".into(),
                format!("{}/{scope}", self.access_key_id),
            ),
            ("X-Amz-Date".into(), stamp.clone()),
            ("X-Amz-Expires".into(), request.expires_in.to_string()),
            ("X-Amz-SignedHeaders".into(), signed_headers.clone()),
        ];
        query.extend(
            request
                .query
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone())),
        );
        let mut encoded: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (encode(k, true), encode(v, true)))
            .collect();
        encoded.sort();
        let canonical_query = encoded
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");

        let canonical_headers: String = headers
            .iter()
            .map(|(name, value)| format!("{name}:{value}\n"))
            .collect();
        let canonical_request = format!(
            "{}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\nUNSIGNED-PAYLOAD",
            request.method
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{}",
            hex(&Sha256::digest(canonical_request.as_bytes()))
        );
        let mut key = hmac(
            format!("AWS4{}", self.secret_access_key).as_bytes(),
            date.as_bytes(),
        );
        for part in [self.region.as_str(), "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        let signature = hex(&hmac(&key, string_to_sign.as_bytes()));
        format!("{scheme}://{host}{path}?{canonical_query}&X-Amz-Signature={signature}")
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// AWS's URI encoding: unreserved characters stay, everything else is `%XX`; `/` too when `slash`.
fn encode(text: &str, slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b'/' if !slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// AWS's worked example of a presigned GET ("Authenticating Requests: Using Query Parameters", S3 API
    /// reference), and its path-style form on another server.
    #[test]
    fn signs_as_aws_documents() {
        let bucket = Bucket {
            endpoint: "https://examplebucket.s3.amazonaws.com".into(),
            store_endpoint: "https://examplebucket.s3.amazonaws.com".into(),
            name: "examplebucket".into(),
            path_style: false,
            region: "us-east-1".into(),
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        };
        let get = |bucket: &Bucket| {
            bucket.presign(&Presign {
                method: "GET",
                key: "test.txt",
                now: Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).unwrap(),
                expires_in: 86_400,
                headers: &[],
                query: &[],
            })
        };
        assert_eq!(
            get(&bucket),
            "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        let local = Bucket {
            endpoint: "http://127.0.0.1:9000".into(),
            path_style: true,
            ..bucket
        };
        assert!(get(&local).starts_with("http://127.0.0.1:9000/examplebucket/test.txt?"));
    }

    #[test]
    fn uri_encoding() {
        assert_eq!(encode("a b/c~d", false), "a%20b/c~d");
        assert_eq!(encode("a/b", true), "a%2Fb");
    }
}
