//! Which column of a roster is what, by its header, in Russian or English.

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// The student's login (`userid`, `логин`).
    Login,
    /// The whole name (`ФИО`, `name`).
    FullName,
    /// Surname (`Фамилия`).
    Surname,
    /// Given name (`Имя`).
    FirstName,
    /// Patronymic (`Отчество`).
    Patronymic,
    /// The group or class (`Группа`).
    Group,
}

/// A header as compared: lower case, `ё` as `е`, dots, colons, `№` and extra spaces gone.
fn normalize(header: &str) -> String {
    let lower = header.to_lowercase().replace('ё', "е");
    let kept: String = lower.chars().map(|c| if ".:№*_".contains(c) { ' ' } else { c }).collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The column a header names, if it is one a roster has.
pub fn classify(header: &str) -> Option<Column> {
    let h = normalize(header);
    let h = h.as_str();
    Some(match h {
        "login"
        | "userid"
        | "user id"
        | "user"
        | "username"
        | "user name"
        | "account"
        | "логин"
        | "учетная запись"
        | "пользователь"
        | "имя пользователя"
        | "логин pve" => Column::Login,
        "фио"
        | "ф и о"
        | "full name"
        | "fullname"
        | "name"
        | "student"
        | "student name"
        | "студент"
        | "обучающийся"
        | "учащийся"
        | "фио студента"
        | "фио обучающегося"
        | "фио учащегося" => Column::FullName,
        "фамилия" | "surname" | "last name" | "lastname" | "family name" => Column::Surname,
        "имя" | "first name" | "firstname" | "given name" => Column::FirstName,
        "отчество" | "patronymic" | "middle name" => Column::Patronymic,
        "группа" | "group" | "класс" | "class" | "поток" | "учебная группа" => {
            Column::Group
        }
        _ => return None,
    })
}

/// The columns of a header row: each kind at its first index.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Columns {
    /// `Login`.
    pub login: Option<usize>,
    /// `FullName`.
    pub full_name: Option<usize>,
    /// `Surname`.
    pub surname: Option<usize>,
    /// `FirstName`.
    pub first_name: Option<usize>,
    /// `Patronymic`.
    pub patronymic: Option<usize>,
    /// `Group`.
    pub group: Option<usize>,
}

impl Columns {
    /// The columns `cells` name; `None` when they name neither logins nor names (not a
    /// header row).
    pub fn of(cells: &[String]) -> Option<Columns> {
        let mut c = Columns::default();
        for (i, cell) in cells.iter().enumerate() {
            let Some(kind) = classify(cell) else { continue };
            let slot = match kind {
                Column::Login => &mut c.login,
                Column::FullName => &mut c.full_name,
                Column::Surname => &mut c.surname,
                Column::FirstName => &mut c.first_name,
                Column::Patronymic => &mut c.patronymic,
                Column::Group => &mut c.group,
            };
            slot.get_or_insert(i);
        }
        (c.login.is_some() || c.full_name.is_some() || c.surname.is_some()).then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_in_russian_and_english_name_their_columns() {
        assert_eq!(classify("Учётная запись"), Some(Column::Login));
        assert_eq!(classify("Ф.И.О."), Some(Column::FullName));
        assert_eq!(classify("  ФИО студента "), Some(Column::FullName));
        assert_eq!(classify("Last name"), Some(Column::Surname));
        assert_eq!(classify("Группа"), Some(Column::Group));
        assert_eq!(classify("Имя пользователя"), Some(Column::Login));
        assert_eq!(classify("Оценка"), None);
        let header: Vec<String> = ["№", "Фамилия", "Имя", "Отчество", "Группа"].map(String::from).to_vec();
        let c = Columns::of(&header).unwrap();
        assert_eq!(
            (c.surname, c.first_name, c.patronymic, c.group, c.login),
            (Some(1), Some(2), Some(3), Some(4), None)
        );
        assert_eq!(Columns::of(&["Список группы ИС-21".to_string()]), None, "a title is not a header");
    }
}
