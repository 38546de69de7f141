//! People's names as a roster gives them, and the logins `stand` makes of them:
//! `<surname>-<initials>@<realm>` in Latin letters (`Иванов Пётр Сергеевич` → `ivanov-ps@pve`).

use std::collections::BTreeMap;

/// A person's name in its parts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FullName {
    /// Surname.
    pub surname: String,
    /// Given name.
    pub first: String,
    /// Patronymic (Russian names), when given.
    pub patronymic: String,
}

impl FullName {
    /// A whole name in one cell. Cyrillic names, and any under a `ФИО` header, are written
    /// surname first (`Иванов Пётр Сергеевич`); Latin ones under `name` given name first
    /// (`Anna Smith`).
    pub fn parse(text: &str, surname_first: bool) -> FullName {
        let words: Vec<&str> = text.split_whitespace().collect();
        let cyrillic = text.chars().any(|c| matches!(c, 'А'..='я' | 'Ё' | 'ё'));
        match (surname_first || cyrillic, words.as_slice()) {
            (_, []) => FullName::default(),
            (_, [one]) => FullName { surname: one.to_string(), ..FullName::default() },
            (true, [surname, first, rest @ ..]) => {
                FullName { surname: surname.to_string(), first: first.to_string(), patronymic: rest.join(" ") }
            }
            (false, [first @ .., surname]) => {
                FullName { surname: surname.to_string(), first: first.join(" "), patronymic: String::new() }
            }
        }
    }

    /// `Иванов Пётр Сергеевич`.
    pub fn display(&self) -> String {
        [&self.surname, &self.first, &self.patronymic]
            .into_iter()
            .filter(|p| !p.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `Иванов П. С.`: a name that fits a narrow column.
    pub fn short(&self) -> String {
        let initial = |s: &str| s.chars().next().map(|c| format!(" {c}.")).unwrap_or_default();
        format!("{}{}{}", self.surname, initial(&self.first), initial(&self.patronymic))
    }

    /// PVE's `firstname` (given name and patronymic) and `lastname`.
    pub fn pve(&self) -> (String, String) {
        let first = [&self.first, &self.patronymic].into_iter().filter(|p| !p.is_empty()).cloned().collect::<Vec<_>>();
        (first.join(" "), self.surname.clone())
    }

    /// The name back from PVE's `firstname` and `lastname`.
    pub fn from_pve(firstname: &str, lastname: &str) -> FullName {
        let mut words = firstname.split_whitespace();
        let first = words.next().unwrap_or_default().to_string();
        FullName { surname: lastname.trim().to_string(), first, patronymic: words.collect::<Vec<_>>().join(" ") }
    }
}

/// A part of a name in the letters a PVE userid and a pool id can carry: Latin, lower case,
/// `-` between words (`Петрова-Водкина` → `petrova-vodkina`).
fn ascii(part: &str) -> String {
    let latin = crate::plan::latin(part).to_lowercase();
    let mut out = String::new();
    for c in latin.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') && (c == '-' || c.is_whitespace()) {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// Logins made from names, unique within a roster: the first `ivanov-ps`, the next
/// `ivanov-ps-2`, then `-3`, in the roster's order, so the same roster gives the same logins
/// on every run.
#[derive(Debug, Default)]
pub struct Logins {
    taken: BTreeMap<String, usize>,
}

impl Logins {
    /// The login of `name` in `realm`; `None` when the name has no letters to make one of.
    pub fn make(&mut self, name: &FullName, realm: &str) -> Option<String> {
        let surname = ascii(&name.surname);
        if surname.is_empty() {
            return None;
        }
        let initials: String = [&name.first, &name.patronymic]
            .into_iter()
            .flat_map(|p| p.split_whitespace())
            .filter_map(|w| ascii(w).chars().next())
            .collect();
        let base = if initials.is_empty() { surname } else { format!("{surname}-{initials}") };
        let n = self.taken.entry(base.clone()).or_insert(0);
        *n += 1;
        let login = if *n == 1 { base } else { format!("{base}-{n}") };
        Some(format!("{login}@{realm}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_latin_logins_unique_in_roster_order() {
        let ivanov = FullName::parse("Иванов Пётр Сергеевич", false);
        assert_eq!(
            ivanov,
            FullName {
                surname: "Иванов".into(), first: "Пётр".into(), patronymic: "Сергеевич".into()
            }
        );
        assert_eq!((ivanov.display(), ivanov.short()), ("Иванов Пётр Сергеевич".into(), "Иванов П. С.".into()));
        assert_eq!(ivanov.pve(), ("Пётр Сергеевич".into(), "Иванов".into()));
        assert_eq!(FullName::from_pve("Пётр Сергеевич", "Иванов"), ivanov);
        assert_eq!(FullName::parse("Anna Maria Smith", false).surname, "Smith");
        assert_eq!(FullName::parse("Smith Anna", true).surname, "Smith");
        let mut logins = Logins::default();
        assert_eq!(logins.make(&ivanov, "pve").as_deref(), Some("ivanov-ps@pve"));
        let namesake = FullName::parse("Иванов Павел Семёнович", false);
        assert_eq!(logins.make(&namesake, "pve").as_deref(), Some("ivanov-ps-2@pve"));
        let hyphen = FullName::parse("Петрова-Водкина Анна", false);
        assert_eq!(logins.make(&hyphen, "pve").as_deref(), Some("petrova-vodkina-a@pve"));
        assert_eq!(logins.make(&FullName::parse("Щукина Юлия", false), "pve").as_deref(), Some("shchukina-i@pve"));
        assert_eq!(logins.make(&FullName::parse("123", false), "pve").as_deref(), Some("123@pve"));
        assert_eq!(logins.make(&FullName::default(), "pve"), None);
    }
}
