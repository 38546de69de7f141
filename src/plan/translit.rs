//! Latin letters for names that PVE and DNS take only in ASCII (pool ids, VM names).
//!
//! Cyrillic follows ICAO Doc 9303 (the table of Russian passports since 2014, which
//! students know from their own documents): `дмитрий` → `dmitrii`, `щукина` → `shchukina`.
//! Other scripts go through `deunicode`. The table is fixed here, so a name maps to the
//! same objects on every run and every version of `stand`.

/// ICAO Doc 9303, Russian, with the Ukrainian and Belarusian letters of the same table.
fn cyrillic(c: char) -> Option<&'static str> {
    Some(match c {
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' => "g",
        'д' => "d",
        'е' | 'ё' | 'э' => "e",
        'ж' => "zh",
        'з' => "z",
        'и' | 'й' | 'і' | 'ї' => "i",
        'к' => "k",
        'л' => "l",
        'м' => "m",
        'н' => "n",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'у' | 'ў' => "u",
        'ф' => "f",
        'х' => "kh",
        'ц' => "ts",
        'ч' => "ch",
        'ш' => "sh",
        'щ' => "shch",
        'ъ' | 'є' => "ie",
        'ы' => "y",
        'ь' => "",
        'ю' => "iu",
        'я' => "ia",
        'ґ' => "g",
        _ => return None,
    })
}

/// `s` in ASCII: Cyrillic by ICAO Doc 9303, other non-ASCII letters by `deunicode`.
pub fn latin(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        let lower: String = c.to_lowercase().collect();
        let mut chars = lower.chars();
        match (chars.next().and_then(cyrillic), chars.next()) {
            (Some(l), None) => out.push_str(l),
            _ => out.push_str(deunicode::deunicode_char(c).unwrap_or("")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::latin;

    #[test]
    fn russian_names_read_as_in_a_passport() {
        assert_eq!(latin("дмитрий"), "dmitrii");
        assert_eq!(latin("Щукина"), "shchukina");
        assert_eq!(latin("Юлия Ёлкина"), "iuliia elkina");
        assert_eq!(latin("Объедков"), "obieedkov");
        assert_eq!(latin("Хабибуллин"), "khabibullin");
        assert_eq!(latin("Цой"), "tsoi");
        assert_eq!(latin("ivanov"), "ivanov");
    }

    #[test]
    fn other_scripts_and_symbols() {
        assert_eq!(latin("José"), "Jose");
        assert_eq!(latin("Ґонта"), "gonta");
        assert_eq!(latin("Łukasz"), "Lukasz");
    }
}
