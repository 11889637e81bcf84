//! PNG encoding of an RGB buffer, with text chunks that say what the picture shows (title,
//! column headers, row labels), so that programs and tests read a picture's labels without
//! reading its pixels.

/// Encodes `rgb` (width × height × 3 bytes) with `texts` as tEXt chunks (keyword, text).
pub fn encode(width: u32, height: u32, rgb: &[u8], texts: &[(&str, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Best);
    for (k, v) in texts {
        // tEXt is Latin-1: labels outside it go into an iTXt chunk (UTF-8).
        let _ = enc.add_itxt_chunk(k.to_string(), v.clone());
    }
    enc.write_header()
        .and_then(|mut w| w.write_image_data(rgb))
        .expect("an RGB buffer of the header's size encodes into memory");
    out
}

/// The text chunks of a PNG (tEXt, zTXt and iTXt), by keyword.
pub fn texts(png_bytes: &[u8]) -> Vec<(String, String)> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let Ok(reader) = decoder.read_info() else {
        return vec![];
    };
    let info = reader.info();
    let mut out: Vec<(String, String)> = info
        .uncompressed_latin1_text
        .iter()
        .map(|t| (t.keyword.clone(), t.text.clone()))
        .collect();
    for t in &info.utf8_text {
        if let Ok(text) = t.get_text() {
            out.push((t.keyword.clone(), text));
        }
    }
    out
}
