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
fn listing(names: &[&str]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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
