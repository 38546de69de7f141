//! Lab expiry: `lab(#{ expires: "2026-12-31" })`. The date is recorded in the lab group's
//! marker (`expires=2026-12-31`); the students' PVE accounts expire after that day (PVE
//! refuses the login of a user past `expire`, Unix seconds, 0 = never:
//! pve-access-control `check_user_enabled`). Days are UTC days.

use time::macros::format_description;
use time::{Date, OffsetDateTime};

/// A lab's expiry date, `YYYY-MM-DD`.
pub fn parse(text: &str) -> Result<Date, String> {
    Date::parse(text, format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("'{text}' is not a date: write it as YYYY-MM-DD, e.g. \"2026-12-31\""))
}

/// The `expire` of an account that works through `date` (UTC): the first second after it.
pub fn account_expire(date: Date) -> u64 {
    date.next_day().map(|d| d.midnight().assume_utc().unix_timestamp().max(0) as u64).unwrap_or(0)
}

/// The `expire` a student of these labs gets: the last of their dates, or 0 (never) when
/// one of the labs has none.
pub fn account_expire_of<'a>(dates: impl IntoIterator<Item = Option<&'a str>>) -> u64 {
    let mut last = 0;
    for d in dates {
        match d.and_then(|d| parse(d).ok()) {
            Some(date) => last = last.max(account_expire(date)),
            None => return 0,
        }
    }
    last
}

/// Whether a lab that expires on `expires` is past it on `today`.
pub fn is_past(expires: &str, today: Date) -> bool {
    parse(expires).is_ok_and(|d| today > d)
}

/// Today's date (UTC); the edges pass it to what decides.
pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_works_through_the_last_day_and_a_lab_without_a_date_never_expires() {
        let d = parse("2026-12-31").unwrap();
        assert_eq!(account_expire(d), 1_798_761_600, "2027-01-01T00:00:00Z");
        assert_eq!(account_expire_of([Some("2026-12-31"), Some("2026-06-30")]), 1_798_761_600);
        assert_eq!(account_expire_of([Some("2026-12-31"), None]), 0);
        assert!(parse("31.12.2026").unwrap_err().contains("YYYY-MM-DD"));
        assert!(parse("2026-02-30").is_err());
        assert!(is_past("2026-12-31", parse("2027-01-01").unwrap()));
        assert!(!is_past("2026-12-31", d));
    }
}
