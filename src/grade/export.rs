//! The grade sheet in the gradebooks' own formats: Moodle's CSV grade import and a
//! spreadsheet (`.xlsx`) an instructor opens or uploads anywhere.

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::sheet::{GradeSheet, number};

/// The login Moodle knows a student by: the userid without its realm (`ivanov-ps@pve` →
/// `ivanov-ps`).
fn username(userid: &str) -> &str {
    userid.rsplit_once('@').map_or(userid, |(name, _)| name)
}

impl GradeSheet {
    /// The sheet as Moodle's CSV grade import takes it (Grades → Import → CSV file; see
    /// <https://docs.moodle.org/en/Grade_import>): a header row, one row per student,
    /// `username` to map to Moodle's "username", the names to check the mapping by, then one
    /// column per criterion and `total`, each mapped to a grade item. Points use a decimal
    /// point, which Moodle reads whatever its language (it replaces only the language's own
    /// decimal separator).
    pub fn to_moodle_csv(&self) -> Result<String, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["username".to_string(), "lastname".into(), "firstname".into()];
        header.extend(self.criteria.iter().map(|c| c.title.clone()));
        header.push("total".into());
        w.write_record(&header)?;
        for r in &self.stands {
            let (first, last) = r.name.as_ref().map(|n| n.pve()).unwrap_or_default();
            let mut line = vec![username(&r.user).to_string(), last, first];
            line.extend(r.marks.iter().map(|m| number(m.points)));
            line.push(number(r.total));
            w.write_record(&line)?;
        }
        let bytes = w.into_inner().map_err(|e| e.into_error())?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The sheet as a one-sheet workbook: `student`, `name`, one column per criterion
    /// (headed by its title and points), `total`, `max`, and the hints of what failed.
    pub fn to_xlsx(&self) -> Result<Vec<u8>, XlsxError> {
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        sheet.set_name(sheet_name(&self.lab))?;
        let bold = Format::new().set_bold();
        let wrap = Format::new().set_text_wrap();
        let mut header = vec!["student".to_string(), "name".into()];
        header.extend(self.criteria.iter().map(|c| format!("{} ({})", c.title, number(c.points))));
        header.extend(["total".into(), "max".into(), "hints".into()]);
        for (col, title) in header.iter().enumerate() {
            sheet.write_string_with_format(0, col as u16, title, &bold)?;
        }
        for (i, r) in self.stands.iter().enumerate() {
            let row = i as u32 + 1;
            sheet.write_string(row, 0, &r.user)?;
            sheet.write_string(row, 1, r.name.as_ref().map(|n| n.display()).unwrap_or_default())?;
            for (j, m) in r.marks.iter().enumerate() {
                sheet.write_number(row, 2 + j as u16, m.points)?;
            }
            let after = 2 + r.marks.len() as u16;
            sheet.write_number(row, after, r.total)?;
            sheet.write_number(row, after + 1, r.max)?;
            let hints = self.hints(r);
            if !hints.is_empty() {
                sheet.write_string_with_format(row, after + 2, hints, &wrap)?;
            }
        }
        sheet.set_freeze_panes(1, 2)?;
        sheet.autofit();
        book.save_to_buffer()
    }

    /// What a student should fix, one line per criterion missed (or why it was not checked).
    fn hints(&self, r: &super::Row) -> String {
        r.marks
            .iter()
            .filter(|m| !m.passed)
            .filter_map(|m| {
                let why = m.hint.as_deref().or(m.reason.as_deref())?;
                Some(format!("{}: {why}", m.title))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A worksheet's name: at most 31 characters, none of `[]:*?/\`.
fn sheet_name(lab: &str) -> String {
    lab.chars().filter(|c| !"[]:*?/\\".contains(*c)).take(31).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moodle_usernames_have_no_realm_and_sheet_names_fit_excel() {
        assert_eq!(username("ivanov-ps@pve"), "ivanov-ps");
        assert_eq!(username("plain"), "plain");
        assert_eq!(sheet_name("lab3"), "lab3");
        assert_eq!(sheet_name(&"x".repeat(40)).len(), 31);
    }
}
