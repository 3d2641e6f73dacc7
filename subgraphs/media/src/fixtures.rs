//! Files for tests (this crate's and the end-to-end ones, through the `testing` feature): real images made
//! on the spot, an EXIF block with an orientation and a GPS tag, and headers that pass the checks but do not
//! decode.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use img_parts::ImageEXIF;

/// A `width` × `height` gradient (so resizing has something to do).
fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 96])
    })
}

/// A real `width` × `height` PNG.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(gradient(width, height))
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .expect("png");
    out
}

/// A real `width` × `height` JPEG.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&gradient(width, height))
        .expect("jpeg");
    out
}

/// [`jpeg`] carrying EXIF: orientation `orientation` and a GPS position.
pub fn jpeg_with_exif(width: u32, height: u32, orientation: u16) -> Vec<u8> {
    let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(jpeg(width, height).into()).expect("jpeg");
    jpeg.set_exif(Some(exif(orientation).into()));
    jpeg.encoder().bytes().to_vec()
}

/// Whether JPEG `bytes` carry an EXIF segment.
pub fn has_exif(bytes: &[u8]) -> bool {
    img_parts::jpeg::Jpeg::from_bytes(bytes.to_vec().into())
        .map(|jpeg| jpeg.exif().is_some())
        .unwrap_or(false)
}

/// A little-endian TIFF block: IFD0 with Orientation (0x0112) and the GPS IFD's offset, then a GPS IFD
/// holding GPSLatitudeRef "N".
pub fn exif(orientation: u16) -> Vec<u8> {
    let entry = |tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        let mut e = tag.to_le_bytes().to_vec();
        e.extend(kind.to_le_bytes());
        e.extend(count.to_le_bytes());
        e.extend(value);
        e
    };
    let mut t = b"II*\x00\x08\x00\x00\x00".to_vec();
    t.extend(2u16.to_le_bytes());
    t.extend(entry(0x0112, 3, 1, u32::from(orientation).to_le_bytes()));
    // The GPS IFD starts after IFD0: 8 + 2 + 2 × 12 + 4 = 38.
    t.extend(entry(0x8825, 4, 1, 38u32.to_le_bytes()));
    t.extend(0u32.to_le_bytes());
    t.extend(1u16.to_le_bytes());
    t.extend(entry(0x0001, 2, 2, *b"N\x00\x00\x00"));
    t.extend(0u32.to_le_bytes());
    t
}

/// A PNG signature and header of `width` × `height`, padded to `len`: passes the header checks, never
/// decodes (a decompression bomb's shape, when the sides are large).
pub fn png_header(width: u32, height: u32, len: usize) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    bytes.extend(width.to_be_bytes());
    bytes.extend(height.to_be_bytes());
    bytes.extend([8, 2, 0, 0, 0]);
    bytes.resize(len.max(bytes.len()), 0);
    bytes
}

/// A PDF's first bytes, padded to `len` (not an image: stored as sent).
pub fn pdf(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj".to_vec();
    bytes.resize(len, b' ');
    bytes
}
