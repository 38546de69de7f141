//! "Did you mean": the closest of what exists to a name that does not.

/// The candidate closest to `input`, if one is close enough to be a typo of it.
pub fn did_you_mean<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(input, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// At most 20 names, then how many more.
pub fn listing(names: &[&str]) -> String {
    match names.len() {
        0..=20 => names.join(", "),
        n => format!("{}, and {} more", names[..20].join(", "), n - 20),
    }
}

/// `head`, then the likely meant one of `list` and the list itself (or `none`).
fn with_suggestion(head: String, input: &str, list: &[&str], label: &str, none: &str) -> String {
    let mut msg = head;
    if let Some(m) = did_you_mean(input, list.iter().copied()) {
        msg.push_str(&format!(" (did you mean '{m}'?)"));
    }
    match list.is_empty() {
        true => msg.push_str(&format!("; {none}")),
        false => msg.push_str(&format!("; {label}: {}", listing(list))),
    }
    msg
}

/// `lab 'lab4' does not exist (did you mean 'lab3'?); labs: lab1, lab3`.
pub fn not_found<'a>(what: &str, input: &str, existing: impl IntoIterator<Item = &'a str>) -> String {
    let list: Vec<&str> = existing.into_iter().collect();
    let head = format!("{what} '{input}' does not exist");
    with_suggestion(head, input, &list, &format!("{what}s"), &format!("there are no {what}s"))
}

/// `lab lab3 has no student 'ivanov' (did you mean 'ivanov@pve'?); its students: ...`.
pub fn not_in_lab<'a>(lab: &str, student: &str, students: impl IntoIterator<Item = &'a str>) -> String {
    let list: Vec<&str> = students.into_iter().collect();
    let head = format!("lab {lab} has no student '{student}'");
    with_suggestion(head, student, &list, "its students", "it has no students")
}

/// The students `--only` names, as the lab calls them: by the full id (`щукина@pve`), by the
/// name without its realm (`щукина`), or by that name in Latin letters (`shchukina`, as its
/// pool and VMs are named). A name that fits no student is an error with the closest one and
/// the lab's students; one that fits several asks for the full id.
pub fn resolve_students(lab: &str, asked: &[String], students: &[&str]) -> Result<Vec<String>, String> {
    let name_of = |s: &str| s.split_once('@').map_or(s, |(n, _)| n).to_lowercase();
    let mut out: Vec<String> = Vec::new();
    for a in asked {
        let wanted = a.to_lowercase();
        let matches: Vec<&str> = match students.iter().find(|s| **s == a.as_str()) {
            Some(exact) => vec![*exact],
            None => students
                .iter()
                .copied()
                .filter(|s| {
                    s.to_lowercase() == wanted
                        || name_of(s) == wanted
                        || crate::plan::latin(&name_of(s)) == crate::plan::latin(&wanted)
                })
                .collect(),
        };
        match matches.as_slice() {
            [one] if out.iter().any(|o| o == one) => {}
            [one] => out.push(one.to_string()),
            [] => {
                // A typo of a name in Latin letters is matched against the Latin names too.
                let latin: Vec<(String, &str)> =
                    students.iter().map(|s| (crate::plan::latin(&name_of(s)), *s)).collect();
                let meant = did_you_mean(a, students.iter().copied()).or_else(|| {
                    let best = did_you_mean(&crate::plan::latin(&wanted), latin.iter().map(|(l, _)| l.as_str()))?;
                    latin.iter().find(|(l, _)| l == best).map(|(_, s)| *s)
                });
                let mut msg = format!("lab {lab} has no student '{a}'");
                if let Some(m) = meant {
                    msg.push_str(&format!(" (did you mean '{m}'?)"));
                }
                match students.is_empty() {
                    true => msg.push_str("; it has no students"),
                    false => msg.push_str(&format!("; its students: {}", listing(students))),
                }
                return Err(msg);
            }
            many => {
                return Err(format!(
                    "'{a}' is the name of several students of lab {lab}: {}; give one in full",
                    many.join(", ")
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_student_is_found_by_id_by_name_and_by_name_in_latin_letters() {
        let class = ["щукина@pve", "ivanov@pve", "ivanov@ldap", "petrova@pve"];
        let found =
            |asked: &[&str]| resolve_students("lab3", &asked.iter().map(|a| a.to_string()).collect::<Vec<_>>(), &class);
        assert_eq!(found(&["щукина"]).unwrap(), ["щукина@pve"]);
        assert_eq!(found(&["shchukina", "Щукина@pve", "petrova"]).unwrap(), ["щукина@pve", "petrova@pve"]);
        assert_eq!(found(&["ivanov@ldap"]).unwrap(), ["ivanov@ldap"]);
        let e = found(&["ivanov"]).unwrap_err();
        assert_eq!(
            e,
            "'ivanov' is the name of several students of lab lab3: ivanov@pve, ivanov@ldap; give one in full"
        );
        let e = found(&["shchukna"]).unwrap_err();
        assert!(
            e.starts_with("lab lab3 has no student 'shchukna' (did you mean 'щукина@pve'?); its students: "),
            "{e}"
        );
        assert!(found(&["zzz"]).unwrap_err().starts_with("lab lab3 has no student 'zzz'; its students:"));
    }

    #[test]
    fn typos_find_the_name_and_strangers_do_not() {
        assert_eq!(did_you_mean("lab4", ["lab3", "exam"]), Some("lab3"));
        assert_eq!(did_you_mean("ivanvo@pve", ["ivanov@pve", "petrova@pve"]), Some("ivanov@pve"));
        assert_eq!(did_you_mean("ivanov", ["ivanov@pve", "petrova@pve"]), Some("ivanov@pve"));
        assert_eq!(did_you_mean("zzz", ["lab3"]), None);
        assert_eq!(
            not_found("lab", "lab4", ["lab3", "exam"]),
            "lab 'lab4' does not exist (did you mean 'lab3'?); labs: lab3, exam"
        );
        let many: Vec<String> = (1..=25).map(|i| format!("s{i}@pve")).collect();
        let msg = not_in_lab("lab1", "x@pve", many.iter().map(String::as_str));
        assert!(msg.ends_with("s20@pve, and 5 more"), "{msg}");
    }
}
