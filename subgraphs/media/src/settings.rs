//! The media subgraph's own settings: `[media]` in the `PARLEY_CONFIG` file, then these variables.

use parley_kit::config::{ConfigError, Settings};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// The key download and upload links are signed with. `PARLEY_MEDIA_KEY`; every instance of the
    /// subgraph needs the same one. Without it a key is made once and kept in `<data_dir>/media.key`
    /// (owner-only), which suits one machine.
    pub signing_key: Option<String>,
    /// A ceiling on the largest file a post or message takes, in MB, whatever the plan (default: none;
    /// plans grant 10, 100 or 1,000; avatars stay at 5). `PARLEY_MEDIA_MAX_UPLOAD_MB`.
    pub max_upload_mb: Option<u64>,
    /// An S3 bucket for the files instead of `<data_dir>/media` (production). `PARLEY_S3_BUCKET`.
    pub s3_bucket: Option<String>,
    /// An S3-compatible server's origin (`http://minio:9000`; path-style requests). `PARLEY_S3_ENDPOINT`;
    /// without it, AWS (`https://<bucket>.s3.<region>.amazonaws.com`).
    pub s3_endpoint: Option<String>,
    /// Where clients reach that server, when not at `s3_endpoint` (presigned URLs sign the host).
    /// `PARLEY_S3_PUBLIC_ENDPOINT`.
    pub s3_public_endpoint: Option<String>,
    /// `PARLEY_S3_REGION`, default `us-east-1`.
    pub s3_region: Option<String>,
    /// `PARLEY_S3_ACCESS_KEY_ID` and `PARLEY_S3_SECRET_ACCESS_KEY`.
    pub s3_access_key_id: Option<String>,
    pub s3_secret_access_key: Option<String>,
}

impl Settings for MediaSettings {
    fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let set = |slot: &mut Option<String>, name: &str| {
            if let Some(v) = get(name) {
                *slot = Some(v).filter(|v| !v.is_empty());
            }
        };
        set(&mut self.signing_key, "PARLEY_MEDIA_KEY");
        if let Some(v) = get("PARLEY_MEDIA_MAX_UPLOAD_MB") {
            let mb = v
                .parse()
                .map_err(|_| ConfigError::Env("PARLEY_MEDIA_MAX_UPLOAD_MB", v))?;
            self.max_upload_mb = Some(mb);
        }
        set(&mut self.s3_bucket, "PARLEY_S3_BUCKET");
        set(&mut self.s3_endpoint, "PARLEY_S3_ENDPOINT");
        set(&mut self.s3_public_endpoint, "PARLEY_S3_PUBLIC_ENDPOINT");
        set(&mut self.s3_region, "PARLEY_S3_REGION");
        set(&mut self.s3_access_key_id, "PARLEY_S3_ACCESS_KEY_ID");
        set(
            &mut self.s3_secret_access_key,
            "PARLEY_S3_SECRET_ACCESS_KEY",
        );
        Ok(())
    }
}

impl MediaSettings {
    /// The configured bucket, if any; its keys are then required.
    pub fn bucket(&self) -> anyhow::Result<Option<crate::presign::Bucket>> {
        let Some(name) = self.s3_bucket.clone() else {
            return Ok(None);
        };
        let required = |value: &Option<String>, name: &str| {
            value
                .clone()
                .ok_or_else(|| anyhow::anyhow!("{name} is required with PARLEY_S3_BUCKET"))
        };
        let region = self.s3_region.clone().unwrap_or_else(|| "us-east-1".into());
        let (endpoint, path_style) = match &self.s3_endpoint {
            Some(endpoint) => (endpoint.trim_end_matches('/').to_string(), true),
            None => (format!("https://{name}.s3.{region}.amazonaws.com"), false),
        };
        let public = self
            .s3_public_endpoint
            .as_deref()
            .map(|e| e.trim_end_matches('/').to_string());
        Ok(Some(crate::presign::Bucket {
            endpoint: public.unwrap_or_else(|| endpoint.clone()),
            store_endpoint: endpoint,
            path_style,
            region,
            access_key_id: required(&self.s3_access_key_id, "PARLEY_S3_ACCESS_KEY_ID")?,
            secret_access_key: required(&self.s3_secret_access_key, "PARLEY_S3_SECRET_ACCESS_KEY")?,
            name,
        }))
    }
}

/// The configured key, or the one kept in `dir/media.key` (made on first use, readable by its owner only).
pub fn signing_key(settings: &MediaSettings, dir: &std::path::Path) -> std::io::Result<Vec<u8>> {
    if let Some(key) = &settings.signing_key {
        return Ok(key.as_bytes().to_vec());
    }
    parley_kit::store::local_secret(dir, "media.key")
}
