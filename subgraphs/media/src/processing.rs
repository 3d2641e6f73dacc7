//! What an image becomes once its bytes are checked: pure CPU work, no I/O, run by the [`crate::worker`] off
//! the request path.
//!
//! 1. **Decode under limits.** The header was checked before (`rules`), and the decoder is held to the same
//!    limits again (sides, allocation), so no header trick gets more memory than a 40-megapixel image needs.
//!    An animation is walked frame by frame against a frame count and a pixel budget (one frame in memory at
//!    a time): a tiny GIF of ten thousand full-size frames is refused, not played.
//! 2. **Metadata out, orientation in.** EXIF (GPS, camera, times), XMP, IPTC and comments are removed from the
//!    original. Where EXIF said "rotate", the pixels are rotated first and the original re-encoded (there is
//!    then no tag left to say it); otherwise the metadata segments are cut out losslessly (`img-parts`) and
//!    the compressed image data stays as it was. A colour profile (ICC) stays: it is colour, not metadata
//!    about the person.
//! 3. **Variants.** THUMBNAIL 128, SMALL 480 and MEDIUM 1080 px on the long side (never enlarged), resized
//!    with `fast_image_resize` (Lanczos3; each from the next larger, so the big image is read once), JPEG for
//!    opaque images and lossless WebP where there is transparency. The blurhash comes from the thumbnail.

use std::io::Cursor;

use bytes::Bytes;
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::webp::WebPEncoder;
use image::metadata::Orientation;
use image::{AnimationDecoder, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use img_parts::{ImageEXIF, ImageICC};

use crate::rules::{MAX_PIXELS, MAX_SIDE};

/// The sizes made of every image, largest first (each is resized from the one before).
pub const VARIANTS: [Variant; 3] = [Variant::Medium, Variant::Small, Variant::Thumbnail];

/// The most frames an animation may have.
pub const MAX_FRAMES: u64 = 1_000;
/// The most pixels all of an animation's frames may have together (25 seconds of 800 × 600 at 25 fps).
pub const MAX_ANIMATION_PIXELS: u64 = 300_000_000;

/// JPEG quality of the variants (and of an original re-encoded to apply its orientation).
const JPEG_QUALITY: u8 = 85;

/// A resized copy of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    Thumbnail,
    Small,
    Medium,
}

impl Variant {
    /// Its longest side, in pixels.
    pub fn side(self) -> u32 {
        match self {
            Variant::Thumbnail => 128,
            Variant::Small => 480,
            Variant::Medium => 1080,
        }
    }

    /// Its name in links and storage paths.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Thumbnail => "thumbnail",
            Variant::Small => "small",
            Variant::Medium => "medium",
        }
    }

    pub fn from_name(name: &str) -> Option<Variant> {
        VARIANTS.into_iter().find(|v| v.name() == name)
    }
}

/// Why an image could not be processed: the client's file, never the server (a `BAD_USER_INPUT`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unprocessable(pub String);

fn unprocessable(what: impl std::fmt::Display) -> Unprocessable {
    Unprocessable(format!("file: {what}"))
}

/// What processing made of an image.
pub struct Processed {
    /// The original without its metadata (and turned upright).
    pub original: Bytes,
    /// Each of [`VARIANTS`], encoded as `variant_mime`.
    pub variants: Vec<(Variant, Vec<u8>)>,
    pub variant_mime: &'static str,
    /// Upright width and height.
    pub width: u32,
    pub height: u32,
    pub blurhash: String,
}

/// Processes image `bytes` (already sniffed as `mime`).
pub fn process(bytes: Bytes, mime: &str) -> Result<Processed, Unprocessable> {
    let format = ImageFormat::from_mime_type(mime)
        .ok_or_else(|| unprocessable(format!("{mime} is not an image")))?;
    if format == ImageFormat::Gif || format == ImageFormat::WebP {
        check_animation(&bytes, format)?;
    }
    let mut reader = ImageReader::with_format(Cursor::new(&bytes[..]), format);
    reader.limits(limits());
    let mut decoder = reader.into_decoder().map_err(|_| undecodable())?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|_| undecodable())?;
    let original = if orientation == Orientation::NoTransforms {
        strip_metadata(bytes, format)?
    } else {
        image.apply_orientation(orientation);
        Bytes::from(encode_like(&image, format)?)
    };
    let (width, height) = (image.width(), image.height());
    let image = normalise(image);
    let variant_mime = if image.color().has_alpha() {
        "image/webp"
    } else {
        "image/jpeg"
    };
    let mut resizer = Resizer::new();
    let mut variants = Vec::with_capacity(VARIANTS.len());
    let mut source = image;
    for variant in VARIANTS {
        let resized = shrink(&mut resizer, &source, variant.side())?;
        variants.push((variant, encode_variant(&resized)?));
        source = resized;
    }
    // `source` is now the thumbnail: at most 128 × 128, cheap to hash.
    let rgba = source.to_rgba8();
    let blurhash = blurhash::encode(4, 3, rgba.width(), rgba.height(), rgba.as_raw())
        .map_err(|_| undecodable())?;
    Ok(Processed {
        original,
        variants,
        variant_mime,
        width,
        height,
        blurhash,
    })
}

fn undecodable() -> Unprocessable {
    unprocessable("the image cannot be decoded")
}

/// The decoder's limits: the same sides as the header check, and an allocation fitting the pixel budget.
fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE as u32);
    limits.max_image_height = Some(MAX_SIDE as u32);
    // Four bytes a pixel, twice (a decoder's buffer and the image it builds).
    limits.max_alloc = Some(MAX_PIXELS * 4 * 2);
    limits
}

/// Walks an animation's frames, one in memory at a time, refusing too many or too many pixels in all.
fn check_animation(bytes: &[u8], format: ImageFormat) -> Result<(), Unprocessable> {
    let frames: Box<dyn Iterator<Item = image::ImageResult<image::Frame>>> = match format {
        ImageFormat::Gif => {
            let decoder = image::codecs::gif::GifDecoder::new(Cursor::new(bytes))
                .map_err(|_| undecodable())?;
            Box::new(decoder.into_frames())
        }
        _ => {
            let decoder = image::codecs::webp::WebPDecoder::new(Cursor::new(bytes))
                .map_err(|_| undecodable())?;
            if !decoder.has_animation() {
                return Ok(());
            }
            Box::new(decoder.into_frames())
        }
    };
    let (mut count, mut pixels) = (0u64, 0u64);
    for frame in frames {
        let frame = frame.map_err(|_| undecodable())?;
        count += 1;
        let buffer = frame.buffer();
        pixels += u64::from(buffer.width()) * u64::from(buffer.height());
        if count > MAX_FRAMES || pixels > MAX_ANIMATION_PIXELS {
            return Err(unprocessable(format!(
                "animations have at most {MAX_FRAMES} frames and {} megapixels in all",
                MAX_ANIMATION_PIXELS / 1_000_000
            )));
        }
    }
    Ok(())
}

/// The original with its metadata cut out, its image data untouched. GIF carries no EXIF and is kept as is.
fn strip_metadata(bytes: Bytes, format: ImageFormat) -> Result<Bytes, Unprocessable> {
    let bad = |_| undecodable();
    Ok(match format {
        ImageFormat::Jpeg => {
            let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(bytes).map_err(bad)?;
            let icc = jpeg.icc_profile();
            // APP1 (EXIF, XMP), APP2 (ICC, but also multi-picture data), APP3–APP13 (IPTC, maker data),
            // APP15 and comments go; APP0 (JFIF) and APP14 (Adobe: how to read the colours) stay. The ICC
            // profile is put back on its own.
            for marker in (0xE1..=0xED).chain([0xEF, 0xFE]) {
                jpeg.remove_segments_by_marker(marker);
            }
            jpeg.set_icc_profile(icc);
            jpeg.encoder().bytes()
        }
        ImageFormat::Png => {
            let mut png = img_parts::png::Png::from_bytes(bytes).map_err(bad)?;
            for chunk in [*b"eXIf", *b"tEXt", *b"zTXt", *b"iTXt", *b"tIME"] {
                png.remove_chunks_by_type(chunk);
            }
            png.encoder().bytes()
        }
        ImageFormat::WebP => {
            let mut webp = img_parts::webp::WebP::from_bytes(bytes).map_err(bad)?;
            webp.set_exif(None);
            webp.remove_chunks_by_id(img_parts::webp::CHUNK_XMP);
            webp.encoder().bytes()
        }
        _ => bytes,
    })
}

/// An upright image re-encoded in its own format (JPEG stays JPEG; the others losslessly).
fn encode_like(image: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>, Unprocessable> {
    let mut out = Vec::new();
    let written = match format {
        ImageFormat::Jpeg => JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
            .encode_image(&DynamicImage::ImageRgb8(image.to_rgb8())),
        ImageFormat::WebP => image.write_with_encoder(WebPEncoder::new_lossless(&mut out)),
        other => image.write_to(&mut Cursor::new(&mut out), other),
    };
    written.map_err(|_| undecodable())?;
    Ok(out)
}

/// 8-bit RGB, or RGBA where the image has transparency: what the resizer and the encoders take.
fn normalise(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => image,
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.to_rgba8()),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    }
}

/// `image` scaled so its longest side is at most `side` (never enlarged).
fn shrink(
    resizer: &mut Resizer,
    image: &DynamicImage,
    side: u32,
) -> Result<DynamicImage, Unprocessable> {
    let (width, height) = (image.width(), image.height());
    let longest = width.max(height);
    if longest <= side {
        return Ok(image.clone());
    }
    let scale = |d: u32| ((u64::from(d) * u64::from(side) / u64::from(longest)) as u32).max(1);
    let mut resized = DynamicImage::new(scale(width), scale(height), image.color());
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    resizer
        .resize(image, &mut resized, &options)
        .map_err(|_| undecodable())?;
    Ok(resized)
}

/// A variant's bytes: JPEG when opaque, lossless WebP with transparency.
fn encode_variant(image: &DynamicImage) -> Result<Vec<u8>, Unprocessable> {
    let mut out = Vec::new();
    let written = if image.color().has_alpha() {
        image.write_with_encoder(WebPEncoder::new_lossless(&mut out))
    } else {
        JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).encode_image(image)
    };
    written.map_err(|_| undecodable())?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use image::{Rgba, RgbaImage};

    use super::*;
    use crate::fixtures::{jpeg, jpeg_with_exif};

    #[test]
    fn variants_are_upright_small_and_without_metadata() {
        // 600 × 400 stored sideways: orientation 6 says "turn 90° clockwise to show".
        let bytes = jpeg_with_exif(600, 400, 6);
        assert!(img_parts::jpeg::Jpeg::from_bytes(bytes.clone().into())
            .expect("jpeg")
            .exif()
            .is_some());
        let done = process(bytes.into(), "image/jpeg").expect("processed");
        assert_eq!((done.width, done.height), (400, 600), "turned upright");
        let original = img_parts::jpeg::Jpeg::from_bytes(done.original.clone()).expect("jpeg");
        assert!(original.exif().is_none(), "no EXIF left in the original");
        assert_eq!(
            image::load_from_memory(&done.original)
                .expect("decodes")
                .width(),
            400
        );
        let sides: Vec<_> = done
            .variants
            .iter()
            .map(|(v, bytes)| {
                let image = image::load_from_memory(bytes).expect("variant decodes");
                assert!(img_parts::jpeg::Jpeg::from_bytes(bytes.clone().into())
                    .expect("jpeg")
                    .exif()
                    .is_none());
                (*v, image.width(), image.height())
            })
            .collect();
        assert_eq!(
            sides,
            vec![
                (Variant::Medium, 400, 600),
                (Variant::Small, 320, 480),
                (Variant::Thumbnail, 85, 128)
            ],
            "never enlarged; the long side fits"
        );
        assert_eq!(done.variant_mime, "image/jpeg");
        assert_eq!(done.blurhash.len(), 2 + 4 + 2 * 11, "4 × 3 components");
    }

    #[test]
    fn upright_originals_lose_metadata_losslessly() {
        let bytes = jpeg_with_exif(300, 200, 1);
        let scan = |b: &[u8]| {
            let jpeg = img_parts::jpeg::Jpeg::from_bytes(b.to_vec().into()).expect("jpeg");
            jpeg.segments_by_marker(0xDA).count()
        };
        let done = process(bytes.clone().into(), "image/jpeg").expect("processed");
        assert!(done.original.len() < bytes.len());
        assert_eq!(scan(&done.original), scan(&bytes));
        let plain = jpeg(300, 200);
        assert_eq!(
            image::load_from_memory(&done.original)
                .expect("decodes")
                .to_rgb8(),
            image::load_from_memory(&plain).expect("decodes").to_rgb8(),
            "the same pixels: only metadata went"
        );
    }

    #[test]
    fn transparency_keeps_its_alpha_in_webp() {
        let image = RgbaImage::from_fn(64, 32, |x, _| Rgba([255, 0, 0, (x * 4) as u8]));
        let mut png = Vec::new();
        DynamicImage::ImageRgba8(image)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .expect("png");
        let done = process(png.into(), "image/png").expect("processed");
        assert_eq!(done.variant_mime, "image/webp");
        let thumb = image::load_from_memory(&done.variants[2].1).expect("webp");
        assert!(thumb.color().has_alpha());
    }

    #[test]
    fn long_animations_are_refused_frame_by_frame() {
        let mut gif = Vec::new();
        {
            let mut encoder = image::codecs::gif::GifEncoder::new(&mut gif);
            let frame = image::Frame::new(RgbaImage::new(2, 2));
            for _ in 0..=MAX_FRAMES {
                encoder.encode_frame(frame.clone()).expect("frame");
            }
        }
        let refused = process(gif.into(), "image/gif").err().expect("refused");
        assert!(refused.0.contains("frames"), "{refused}");
    }

    #[test]
    fn what_does_not_decode_is_the_clients_fault() {
        let mut truncated = jpeg(200, 200);
        truncated.truncate(300);
        assert!(process(truncated.into(), "image/jpeg").is_err());
        assert!(process(Bytes::from_static(b"nope"), "image/png").is_err());
        assert!(process(Bytes::from_static(b"nope"), "video/mp4").is_err());
    }
}
