//! A roster file as rows of cells, each row with the number a person sees for it: a CSV or
//! text file (`;`, `,` or tab, whichever its first line has most of) or the first sheet of a
//! spreadsheet (`.xlsx`, `.xls`, `.ods`, read by calamine).

use std::path::Path;

use calamine::{Data, Reader};

/// One row: its number in the file (1-based) and its cells, trimmed.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The line of a text file, the row of a sheet.
    pub number: usize,
    /// Cells, trimmed.
    pub cells: Vec<String>,
}

/// What a file holds, or why it cannot be read (a sentence).
pub fn rows(path: &Path, bytes: &[u8]) -> Result<(Vec<Row>, String), String> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("xlsx" | "xlsm" | "xls" | "ods") => spreadsheet(bytes),
        _ => {
            let (text, encoding) = super::decode::text(bytes).ok_or_else(|| {
                "is not a text file or a spreadsheet (save the roster as CSV, .xlsx or .ods)".to_string()
            })?;
            Ok((csv_rows(&text)?, format!("a CSV/text file in {encoding}")))
        }
    }
}

/// The delimiter the first line uses most: `;` (a Russian Excel's CSV), tab, or `,`.
fn delimiter(text: &str) -> u8 {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or_default();
    [b';', b'\t', b','].into_iter().max_by_key(|d| first.matches(char::from(*d)).count()).unwrap_or(b',')
}

fn csv_rows(text: &str) -> Result<Vec<Row>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .delimiter(delimiter(text))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    // Lines counted so far, up to byte `counted` (records come in order: counting on from
    // the last one keeps a long roster linear).
    let (mut counted, mut newlines) = (0usize, 0usize);
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| format!(" at line {}", p.line())).unwrap_or_default();
            format!("is not valid CSV{line}: {e}; quote fields that hold the delimiter with \"..\"")
        })?;
        // The line a person's editor shows (csv's own count passes over blank lines).
        // (A record's position is where the blank and comment lines before it start.)
        let mut byte = record.position().map(|p| p.byte() as usize).unwrap_or(0).min(text.len());
        let bytes = text.as_bytes();
        while byte < bytes.len() && matches!(bytes[byte], b'\n' | b'\r' | b'#') {
            if bytes[byte] == b'#' {
                byte += bytes[byte..].iter().position(|b| *b == b'\n').unwrap_or(bytes.len() - byte);
            } else {
                byte += 1;
            }
        }
        newlines += bytes[counted.min(byte)..byte].iter().filter(|b| **b == b'\n').count();
        counted = counted.max(byte);
        let number = newlines + 1;
        out.push(Row { number, cells: record.iter().map(|c| c.trim().to_string()).collect() });
    }
    Ok(out)
}

/// A cell as text: numbers without a needless `.0` (a student number in a sheet).
fn cell(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        other => other.to_string().trim().to_string(),
    }
}

fn spreadsheet(bytes: &[u8]) -> Result<(Vec<Row>, String), String> {
    let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
        .map_err(|e| format!("is not a spreadsheet that can be read ({e})"))?;
    let name = book.sheet_names().first().cloned().ok_or_else(|| "has no sheet".to_string())?;
    let range = book.worksheet_range(&name).map_err(|e| format!("sheet '{name}' cannot be read ({e})"))?;
    let first = range.start().map(|(r, _)| r as usize).unwrap_or(0);
    let rows = range
        .rows()
        .enumerate()
        .map(|(i, r)| Row { number: first + i + 1, cells: r.iter().map(cell).collect() })
        .collect();
    Ok((rows, format!("sheet '{name}' of a spreadsheet")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delimiter_is_the_first_lines_and_rows_keep_their_numbers() {
        assert_eq!(delimiter("ФИО;Группа\nИванов;ИС-21"), b';');
        assert_eq!(delimiter("login\tname"), b'\t');
        assert_eq!(delimiter("# a comment; with a semicolon\nlogin,name"), b',');
        let rows = csv_rows("ФИО;Группа\n\n# left\n\"Иванов; Пётр\";ИС-21\n").unwrap();
        assert_eq!(rows.last().unwrap(), &Row { number: 4, cells: vec!["Иванов; Пётр".into(), "ИС-21".into()] });
        assert_eq!(cell(&Data::Float(42.0)), "42");
        assert_eq!(cell(&Data::String(" Петрова ".into())), "Петрова");
    }
}
