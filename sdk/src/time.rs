//! The login's time in the forms rules need, without a clock and without dependencies: RFC 3339
//! text to and from milliseconds since the Unix epoch, and the day of the week, by civil-from-days
//! arithmetic (proleptic Gregorian calendar, UTC or a fixed offset).
//!
//! A module has no clock: the time a rule reads is [`Event::login_time`](crate::Event::login_time),
//! the same for every rule of the login.
//!
//! ```
//! use claimsmith_sdk::time::{self, Weekday};
//!
//! let ms = time::parse_rfc3339("2026-12-04T17:30:00+01:00").unwrap();
//! assert_eq!(time::format_rfc3339(ms), "2026-12-04T16:30:00.000Z");
//! assert_eq!(time::weekday(ms, 0), Weekday::Friday);
//! // Ten hours ahead of UTC it is already Saturday.
//! assert_eq!(time::weekday(ms, 10 * 60), Weekday::Saturday);
//! ```

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl Weekday {
    /// Whether it is Saturday or Sunday.
    pub fn is_weekend(self) -> bool {
        matches!(self, Weekday::Saturday | Weekday::Sunday)
    }

    /// The English name (`Monday`).
    pub fn name(self) -> &'static str {
        match self {
            Weekday::Monday => "Monday",
            Weekday::Tuesday => "Tuesday",
            Weekday::Wednesday => "Wednesday",
            Weekday::Thursday => "Thursday",
            Weekday::Friday => "Friday",
            Weekday::Saturday => "Saturday",
            Weekday::Sunday => "Sunday",
        }
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month 1–12, day 1–31) of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day of the week at `ms` milliseconds since the epoch, in a zone `offset_minutes` ahead of
/// UTC (`0` for UTC, `-300` for UTC−05:00).
pub fn weekday(ms: i64, offset_minutes: i32) -> Weekday {
    let local = ms + i64::from(offset_minutes) * 60_000;
    // 1970-01-01 was a Thursday.
    match (local.div_euclid(DAY_MS) + 3).rem_euclid(7) {
        0 => Weekday::Monday,
        1 => Weekday::Tuesday,
        2 => Weekday::Wednesday,
        3 => Weekday::Thursday,
        4 => Weekday::Friday,
        5 => Weekday::Saturday,
        _ => Weekday::Sunday,
    }
}

/// The hour of the day (0–23) at `ms`, in a zone `offset_minutes` ahead of UTC.
pub fn hour(ms: i64, offset_minutes: i32) -> u32 {
    let local = ms + i64::from(offset_minutes) * 60_000;
    (local.rem_euclid(DAY_MS) / 3_600_000) as u32
}

/// `ms` since the epoch as RFC 3339 in UTC, with milliseconds: `2026-12-04T16:30:00.000Z`.
pub fn format_rfc3339(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(DAY_MS));
    let in_day = ms.rem_euclid(DAY_MS);
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// Milliseconds since the epoch of an RFC 3339 date-time (`2026-12-04T16:30:00Z`,
/// `2026-12-04t16:30:00.5+01:00`; fractions past milliseconds are truncated), or of a bare date
/// (`2026-12-04`, midnight UTC). `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month as u32) as i64 {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    if b.len() == 10 {
        return Some(days * DAY_MS);
    }
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, m, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // A leap second reads as the last second of its minute.
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut milli = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &b[start..i.min(start + 3)];
        milli = digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0'))
            * 10_i64.pow(3 - digits.len() as u32);
    }
    let offset = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let oh = i64::from(h1 - b'0') * 10 + i64::from(h2 - b'0');
            let om = i64::from(m1 - b'0') * 10 + i64::from(m2 - b'0');
            if oh > 23 || om > 59 {
                return None;
            }
            let minutes = oh * 60 + om;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let s = s.min(59);
    Some(days * DAY_MS + ((h * 60 + m - offset) * 60 + s) * 1000 + milli)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_round_trip_across_four_centuries() {
        for days in -200_000..200_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
    }

    #[test]
    fn rfc3339_parses_and_formats() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("1969-12-31T19:00:00-05:00"), Some(0));
        assert_eq!(parse_rfc3339("2026-12-04"), Some(1_796_342_400_000));
        let ms = 1_796_405_400_123;
        assert_eq!(format_rfc3339(ms), "2026-12-04T17:30:00.123Z");
        assert_eq!(parse_rfc3339(&format_rfc3339(ms)), Some(ms));
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-12-04T24:00:00Z",
            "2026-12-04T10:00:00",
            "2026-12-04T10:00:00.Z",
            "2026-12-04T10:00:00+1:00",
            "yesterday",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn weekdays_and_hours_follow_the_offset() {
        // 2026-12-04 was a Friday; 23:30 UTC.
        let ms = parse_rfc3339("2026-12-04T23:30:00Z").unwrap();
        assert_eq!(weekday(ms, 0), Weekday::Friday);
        assert_eq!(weekday(ms, 60), Weekday::Saturday);
        assert_eq!(weekday(ms, -24 * 60), Weekday::Thursday);
        assert_eq!(hour(ms, 0), 23);
        assert_eq!(hour(ms, 60), 0);
        assert_eq!(weekday(0, 0), Weekday::Thursday);
        assert_eq!(weekday(-1, 0), Weekday::Wednesday);
        assert!(Weekday::Sunday.is_weekend() && !Weekday::Monday.is_weekend());
    }
}
