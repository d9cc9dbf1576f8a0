//! The demo's picture: a small bar chart (disk use over a week, the last
//! day over the line) drawn into a PNG, so the tour can show an image
//! travelling with an alert without shipping a binary file. The PNG is
//! written by hand (stored deflate blocks, CRC-32, Adler-32): a few lines,
//! where an image crate would be a dependency for one picture.

/// Disk use per day, percent; the last crosses the 80% line.
const DAYS: [u8; 7] = [52, 55, 61, 64, 70, 77, 85];
const WIDTH: usize = 280;
const HEIGHT: usize = 140;

/// The chart as PNG bytes.
pub fn disk_chart() -> Vec<u8> {
    let mut pixels = vec![[248u8, 248, 250]; WIDTH * HEIGHT];
    let mut set = |x: usize, y: usize, c: [u8; 3]| {
        if x < WIDTH && y < HEIGHT {
            pixels[y * WIDTH + x] = c;
        }
    };
    let top = 10;
    let bottom = HEIGHT - 10;
    let span = bottom - top;
    // The 80% line.
    let line_y = bottom - span * 80 / 100;
    for x in (10..WIDTH - 10).step_by(2) {
        set(x, line_y, [200, 60, 60]);
    }
    let bar = (WIDTH - 20) / DAYS.len();
    for (i, pct) in DAYS.iter().enumerate() {
        let h = span * usize::from(*pct) / 100;
        let colour = if *pct >= 80 {
            [220, 50, 47]
        } else {
            [38, 139, 210]
        };
        for x in 10 + i * bar + 4..10 + (i + 1) * bar - 4 {
            for y in bottom - h..bottom {
                set(x, y, colour);
            }
        }
    }
    for x in 10..WIDTH - 10 {
        set(x, bottom, [90, 90, 90]);
    }
    encode(&pixels, WIDTH, HEIGHT)
}

/// An 8-bit RGB PNG of `pixels` (row-major).
fn encode(pixels: &[[u8; 3]], width: usize, height: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity(height * (1 + width * 3));
    for row in pixels.chunks(width) {
        raw.push(0); // filter: none
        for p in row {
            raw.extend_from_slice(p);
        }
    }
    // zlib: header, stored blocks of at most 65535 bytes, Adler-32.
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    z.extend_from_slice(&adler32(&raw).to_be_bytes());

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(width as u32).to_be_bytes());
    ihdr.extend_from_slice(&(height as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &z);
    chunk(&mut png, b"IEND", &[]);
    png
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksums_match_the_known_values() {
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn the_chart_is_a_png_of_its_size() {
        let png = disk_chart();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            WIDTH as u32
        );
        assert_eq!(
            u32::from_be_bytes(png[20..24].try_into().unwrap()),
            HEIGHT as u32
        );
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]));
    }
}
