//! Names and secrets: DNS-safe VM names, userid and lab name checks, passwords.

use std::sync::LazyLock;

use rand::Rng;
use regex::Regex;

use super::translit::latin;

static USERID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[^\s:/@]{1,60}@[A-Za-z][A-Za-z0-9.\-_]{1,31}$").expect("userid regex"));

/// Whether `s` is a PVE userid `name@realm`.
pub fn valid_userid(s: &str) -> bool {
    USERID.is_match(s)
}

/// Whether `s` can name a lab (it becomes part of pool ids and tags).
pub fn valid_lab_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// A DNS-safe name: lowercase letters, digits and `-`, at most 63 characters; non-ASCII
/// letters transliterated (`дмитрий` → `dmitrii`, see [`latin`]).
pub fn dns_safe(s: &str) -> String {
    let mut out = String::new();
    for c in latin(s).chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed: String = out.trim_matches('-').chars().take(63).collect();
    trimmed.trim_end_matches('-').to_string()
}

/// Letters and digits without look-alikes (no 0/O, 1/l/I).
pub const PASSWORD_ALPHABET: &str = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// A password from the operating system's CSPRNG.
pub fn generate_password(len: usize) -> String {
    let alphabet: Vec<char> = PASSWORD_ALPHABET.chars().collect();
    let mut rng = rand::rngs::OsRng;
    (0..len).map(|_| alphabet[rng.gen_range(0..alphabet.len())]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userids_and_names() {
        assert!(valid_userid("student1@pve") && valid_userid("ivan.petrov@pam"));
        assert!(!valid_userid("student1") && !valid_userid("a b@pve") && !valid_userid("x@1bad"));
        assert_eq!(dns_safe("Web Server_1@pve"), "web-server-1-pve");
        assert_eq!(dns_safe("--a--"), "a");
        assert_eq!(dns_safe("gw-дмитрий"), "gw-dmitrii");
        assert_eq!(dns_safe("Анна-Мария"), "anna-mariia");
        assert!(valid_lab_name("lab3") && !valid_lab_name("Lab 3"));
    }

    #[test]
    fn passwords_are_long_random_and_unambiguous() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let p = generate_password(12);
            assert_eq!(p.len(), 12);
            assert!(p.chars().all(|c| PASSWORD_ALPHABET.contains(c)));
            assert!(seen.insert(p), "10,000 passwords are distinct");
        }
    }
}
