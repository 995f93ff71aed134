//! `print image(name, pixels, width: W, columns: C)`: images tiled in a grid, as an 8-bit
//! greyscale PNG. The session produces the picture as bytes; clients (the CLI, the REPL) decide
//! whether and where to write it.

/// Pixels between neighbouring images of a grid.
pub const GAP: usize = 2;

/// The grey of the gaps between images, and of the cells a last, incomplete row leaves empty:
/// mid-grey, distinct from the black and white of digits.
pub const GAP_GREY: u8 = 128;

/// A grid of images, encoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    /// The grid's columns and rows of images.
    pub columns: usize,
    pub rows: usize,
    /// The whole picture's size in pixels.
    pub pixel_width: usize,
    pub pixel_height: usize,
    /// The PNG file's bytes.
    pub png: Vec<u8>,
}

/// The default number of columns for `count` images: the smallest square grid that holds them.
pub fn default_columns(count: usize) -> usize {
    let mut columns = (count as f64).sqrt() as usize;
    while columns * columns < count {
        columns += 1;
    }
    while columns > 1 && (columns - 1) * (columns - 1) >= count {
        columns -= 1;
    }
    columns.max(1)
}

/// The grey level of a value: 0 black, 1 white, clamped to [0, 1] (NaN black), rounded to the
/// nearest of 256 levels.
pub fn grey(value: f64) -> u8 {
    if value.is_nan() {
        return 0;
    }
    (value.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Tiles `count` images of `width` × `height` values (each image's values row by row, the
/// images one after another in `values`) into a grid of `columns` (at most `count`), row by
/// row, with [`GAP`] pixels of [`GAP_GREY`] between neighbours, and encodes it as PNG.
pub fn picture(values: &[f64], count: usize, width: usize, height: usize, columns: usize) -> Result<Picture, String> {
    let columns = columns.clamp(1, count.max(1));
    let rows = count.div_ceil(columns);
    let pixel_width = columns * width + (columns - 1) * GAP;
    let pixel_height = rows * height + (rows.max(1) - 1) * GAP;
    if values.len() != count * width * height || pixel_width == 0 || pixel_height == 0 {
        return Err(format!("{} values are not {count} images of {width} × {height}", values.len()));
    }
    let too_large = |n: usize| u32::try_from(n).map_err(|_| format!("a picture {n} pixels across is too large"));
    let (png_width, png_height) = (too_large(pixel_width)?, too_large(pixel_height)?);
    let mut pixels = vec![GAP_GREY; pixel_width * pixel_height];
    for (index, image) in values.chunks(width * height).enumerate() {
        let (left, top) = ((index % columns) * (width + GAP), (index / columns) * (height + GAP));
        for (y, line) in image.chunks(width).enumerate() {
            let start = (top + y) * pixel_width + left;
            for (pixel, value) in pixels[start..start + width].iter_mut().zip(line) {
                *pixel = grey(*value);
            }
        }
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, png_width, png_height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let failed = |error: png::EncodingError| format!("cannot encode the picture as PNG: {error}");
    let mut writer = encoder.write_header().map_err(failed)?;
    writer.write_image_data(&pixels).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(Picture { columns, rows, pixel_width, pixel_height, png })
}

#[cfg(test)]
mod tests {
    use super::{default_columns, grey, picture, GAP, GAP_GREY};

    fn decode(png: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().expect("a PNG header");
        let mut pixels = vec![0; reader.output_buffer_size().expect("a buffer size")];
        let info = reader.next_frame(&mut pixels).expect("a frame");
        assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Grayscale, png::BitDepth::Eight));
        pixels.truncate(info.buffer_size());
        (info.width, info.height, pixels)
    }

    #[test]
    fn the_default_grid_is_the_smallest_square_that_holds_the_images() {
        let columns: Vec<usize> = [1, 2, 4, 5, 9, 10, 32, 64, 65].iter().map(|n| default_columns(*n)).collect();
        assert_eq!(columns, [1, 2, 2, 3, 3, 4, 6, 8, 9]);
    }

    #[test]
    fn values_map_to_grey_levels_clamped_with_nan_black() {
        let levels: Vec<u8> = [0.0, 1.0, 0.5, -3.0, 7.0, f64::NAN, f64::INFINITY].iter().map(|x| grey(*x)).collect();
        assert_eq!(levels, [0, 255, 128, 0, 255, 0, 255]);
    }

    #[test]
    fn images_are_tiled_row_by_row_with_grey_gaps_and_empty_cells() {
        // Three images of 2 × 3 (width × height), each of one value, in two columns.
        let values: Vec<f64> = [0.0, 1.0, 0.2].iter().flat_map(|x| [*x; 6]).collect();
        let picture = picture(&values, 3, 2, 3, 2).expect("a picture");
        assert_eq!((picture.columns, picture.rows), (2, 2));
        let (width, height, pixels) = decode(&picture.png);
        assert_eq!((width as usize, height as usize), (2 * 2 + GAP, 2 * 3 + GAP));
        assert_eq!((picture.pixel_width, picture.pixel_height), (width as usize, height as usize));
        let at = |x: usize, y: usize| pixels[y * width as usize + x];
        assert_eq!(at(0, 0), 0);
        assert_eq!(at(1, 2), 0);
        assert_eq!(at(2, 0), GAP_GREY);
        assert_eq!(at(2 + GAP, 0), 255);
        assert_eq!(at(0, 3), GAP_GREY);
        assert_eq!(at(1, 3 + GAP), 51);
        assert_eq!(at(2 + GAP, 3 + GAP), GAP_GREY, "the empty cell");
    }

    #[test]
    fn an_image_is_read_row_by_row() {
        let picture = picture(&[0.0, 1.0, 1.0, 0.0, 0.0, 0.0], 1, 3, 2, 1).expect("a picture");
        let (width, height, pixels) = decode(&picture.png);
        assert_eq!((width, height), (3, 2));
        assert_eq!(pixels, [0, 255, 255, 0, 0, 0]);
    }
}
