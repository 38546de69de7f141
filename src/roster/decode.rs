//! A text file as schools export it: UTF-8 with or without a BOM, UTF-16 with a BOM (Excel's
//! "Unicode text"), or Windows-1251 (Excel's "CSV" on a Russian Windows).

use encoding_rs::{Encoding, UTF_8, WINDOWS_1251};

/// The text of `bytes` and the encoding it was in; `None` when it is not text at all (a
/// binary file: NUL bytes, or control characters a roster never has).
pub fn text(bytes: &[u8]) -> Option<(String, &'static str)> {
    let (text, encoding) = match Encoding::for_bom(bytes) {
        Some((enc, bom)) => (enc.decode_without_bom_handling(&bytes[bom..]).0.into_owned(), enc.name()),
        None => match std::str::from_utf8(bytes) {
            Ok(s) => (s.to_string(), UTF_8.name()),
            // Not UTF-8: a Cyrillic Windows export (the other single-byte encodings of the
            // field's schools, KOI8-R and CP866, are long out of use for spreadsheets).
            Err(_) => (WINDOWS_1251.decode_without_bom_handling(bytes).0.into_owned(), WINDOWS_1251.name()),
        },
    };
    let binary = text.chars().any(|c| c == '\0' || (c.is_control() && !matches!(c, '\n' | '\r' | '\t')));
    (!binary).then_some((text, encoding))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_and_without_bom_cp1251_and_utf16_are_read_and_binary_is_not() {
        assert_eq!(text("ФИО;Группа".as_bytes()), Some(("ФИО;Группа".into(), "UTF-8")));
        let bom = [&[0xEF, 0xBB, 0xBF][..], "ФИО".as_bytes()].concat();
        assert_eq!(text(&bom), Some(("ФИО".into(), "UTF-8")));
        let cp1251 = WINDOWS_1251.encode("Иванов Пётр;ИС-21").0.into_owned();
        assert_eq!(text(&cp1251), Some(("Иванов Пётр;ИС-21".into(), "windows-1251")));
        let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain("ФИО".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        assert_eq!(text(&utf16), Some(("ФИО".into(), "UTF-16LE")));
        assert_eq!(text(b"PK\x03\x04\x00\x00binary"), None);
    }
}
