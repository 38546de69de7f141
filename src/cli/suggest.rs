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

/// `"x" does not exist`, followed by what does and the likely meant one.
pub fn not_found<'a>(what: &str, input: &str, existing: impl IntoIterator<Item = &'a str> + Clone) -> String {
    let list: Vec<&str> = existing.clone().into_iter().collect();
    let mut msg = format!("{what} '{input}' does not exist");
    if let Some(m) = did_you_mean(input, existing) {
        msg.push_str(&format!(" (did you mean '{m}'?)"));
    }
    if list.is_empty() {
        msg.push_str(&format!("; there are no {what}s"));
    } else {
        msg.push_str(&format!("; {what}s: {}", list.join(", ")));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_the_name_and_strangers_do_not() {
        assert_eq!(did_you_mean("lab4", ["lab3", "exam"]), Some("lab3"));
        assert_eq!(did_you_mean("ivanvo@pve", ["ivanov@pve", "petrova@pve"]), Some("ivanov@pve"));
        assert_eq!(did_you_mean("zzz", ["lab3"]), None);
        assert_eq!(
            not_found("lab", "lab4", ["lab3", "exam"]),
            "lab 'lab4' does not exist (did you mean 'lab3'?); labs: lab3, exam"
        );
    }
}
