//! What an upload may be. The real type comes from the bytes (magic numbers, via `infer`), never from the
//! declared content type or the file name: a PNG named `photo.jpg` is a PNG, a text file declared as an image
//! is refused. Each purpose allows some kinds and a size; an image's dimensions are read from its header
//! (`imagesize`, no decoding) and checked before anything decodes it, so a tiny file that would unpack to
//! 50,000 × 50,000 pixels is refused for the price of reading its header.

use crate::error::{invalid, Result};

/// What an upload is for; each allows its own kinds and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Avatar,
    Post,
    Message,
}

/// What an upload is, by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Image,
    Video,
    Audio,
    File,
}

/// An upload's type as its bytes tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub kind: Kind,
    pub mime: &'static str,
    pub extension: &'static str,
    /// Width and height, for images.
    pub dimensions: Option<(u64, u64)>,
}

/// Images every browser shows; other image formats (TIFF, BMP, HEIC…) are not accepted as images.
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp", "image/gif"];

/// Bytes of a file's start that [`check`] looks at (enough for every header it reads).
pub const HEAD_BYTES: usize = 64 * 1024;

/// The most pixels an image may have: a 12-megapixel photo fits three times, a decompression bomb does not.
pub const MAX_PIXELS: u64 = 40_000_000;
/// The longest side an image may have.
pub const MAX_SIDE: u64 = 16_384;

impl Purpose {
    /// Whether this purpose takes `kind`.
    pub fn allows(self, kind: Kind) -> bool {
        match self {
            Purpose::Avatar => kind == Kind::Image,
            Purpose::Post => matches!(kind, Kind::Image | Kind::Video),
            Purpose::Message => true,
        }
    }
}

/// The largest uploads, in bytes: avatars, and posts' and messages' files. The default is the free plan's;
/// each user's content limit is their plan's (billing's `media.max_upload_mb` entitlement), under the
/// operator's ceiling (`PARLEY_MEDIA_MAX_UPLOAD_MB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    pub avatar: u64,
    pub content: u64,
}

impl Default for SizeLimits {
    fn default() -> Self {
        Self {
            avatar: 5 * 1024 * 1024,
            content: 10 * 1024 * 1024,
        }
    }
}

impl SizeLimits {
    /// The largest upload `purpose` takes.
    pub fn max_bytes(&self, purpose: Purpose) -> u64 {
        match purpose {
            Purpose::Avatar => self.avatar,
            Purpose::Post | Purpose::Message => self.content,
        }
    }
}

/// Refuses a declared size over the purpose's limit, before a byte is accepted.
pub fn check_declared(purpose: Purpose, size: u64, limits: &SizeLimits) -> Result<()> {
    if size == 0 {
        return Err(invalid("size: the file is empty"));
    }
    let max = limits.max_bytes(purpose);
    if size > max {
        return Err(invalid(format!(
            "size: at most {} MB for this purpose",
            max / (1024 * 1024)
        )));
    }
    Ok(())
}

/// The upload's type by its first bytes (`head`), if it is a kind Parley accepts at all.
pub fn sniff(head: &[u8]) -> Option<Sniffed> {
    let found = infer::get(head)?;
    let mime = found.mime_type();
    let kind = match found.matcher_type() {
        infer::MatcherType::Image if IMAGE_TYPES.contains(&mime) => Kind::Image,
        infer::MatcherType::Video => Kind::Video,
        infer::MatcherType::Audio => Kind::Audio,
        infer::MatcherType::Doc | infer::MatcherType::Book => Kind::File,
        infer::MatcherType::Archive if mime == "application/pdf" => Kind::File,
        _ => return None,
    };
    let dimensions = (kind == Kind::Image)
        .then(|| imagesize::blob_size(head).ok())
        .flatten()
        .map(|size| (size.width as u64, size.height as u64));
    Some(Sniffed {
        kind,
        mime,
        extension: found.extension(),
        dimensions,
    })
}

/// What the uploaded bytes are, if `purpose` takes them: `head` is the file's start, `size` its length.
pub fn check(purpose: Purpose, head: &[u8], size: u64, limits: &SizeLimits) -> Result<Sniffed> {
    check_declared(purpose, size, limits)?;
    let sniffed = sniff(head).ok_or_else(|| invalid("file: not a type Parley accepts"))?;
    if !purpose.allows(sniffed.kind) {
        return Err(invalid(format!(
            "file: a {} is not accepted here",
            sniffed.mime
        )));
    }
    if sniffed.kind == Kind::Image {
        let (width, height) = sniffed
            .dimensions
            .ok_or_else(|| invalid("file: the image's size cannot be read"))?;
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(invalid(format!(
                "file: images are 1 to {MAX_SIDE} pixels a side"
            )));
        }
        if width.saturating_mul(height) > MAX_PIXELS {
            return Err(invalid(format!(
                "file: images have at most {} megapixels",
                MAX_PIXELS / 1_000_000
            )));
        }
    }
    Ok(sniffed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `check` under the default limits.
    fn check(purpose: Purpose, head: &[u8], size: u64) -> Result<Sniffed> {
        super::check(purpose, head, size, &SizeLimits::default())
    }

    fn check_declared(purpose: Purpose, size: u64) -> Result<()> {
        super::check_declared(purpose, size, &SizeLimits::default())
    }

    /// The start of a PNG of `width` × `height` (signature and header chunk: all a sniffer reads).
    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        bytes.extend(width.to_be_bytes());
        bytes.extend(height.to_be_bytes());
        bytes.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
        bytes
    }

    fn gif(width: u16, height: u16) -> Vec<u8> {
        let mut bytes = b"GIF89a".to_vec();
        bytes.extend(width.to_le_bytes());
        bytes.extend(height.to_le_bytes());
        bytes.extend([0; 8]);
        bytes
    }

    #[test]
    fn the_type_comes_from_the_bytes() {
        // Whatever it was called or declared as, a PNG is a PNG.
        let sniffed = check(Purpose::Avatar, &png(640, 480), 2_000).expect("an image");
        assert_eq!(
            (sniffed.mime, sniffed.extension, sniffed.dimensions),
            ("image/png", "png", Some((640, 480)))
        );
        assert_eq!(
            check(Purpose::Post, &gif(10, 10), 100).expect("gif").mime,
            "image/gif"
        );
        // Text is no image, whatever was declared.
        assert!(check(Purpose::Avatar, b"hello, I am an image, honest", 28).is_err());
        let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj";
        assert_eq!(
            check(Purpose::Message, pdf, 1_000).expect("pdf").kind,
            Kind::File
        );
        assert!(
            check(Purpose::Avatar, pdf, 1_000).is_err(),
            "an avatar is an image"
        );
    }

    #[test]
    fn sizes_and_bombs_are_refused_before_decoding() {
        assert!(check_declared(Purpose::Avatar, 6 * 1024 * 1024).is_err());
        assert!(check_declared(Purpose::Message, 0).is_err());
        assert!(check_declared(Purpose::Message, 9 * 1024 * 1024).is_ok());
        // 50,000 × 50,000 in a 40-byte header.
        let bomb = check(Purpose::Post, &png(50_000, 50_000), 40).expect_err("bomb");
        assert!(bomb.to_string().contains("pixels"), "{bomb}");
        // Under the side limit, over the pixel budget.
        assert!(check(Purpose::Post, &png(16_000, 16_000), 40).is_err());
        assert!(
            check(Purpose::Post, &png(4_000, 3_000), 40).is_ok(),
            "12 MP"
        );
    }
}
