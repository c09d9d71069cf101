//! Timestamps: parsing the forms the exports use, and formatting them back.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant, in microseconds since 1970-01-01 00:00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC).
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

impl Timestamp {
    /// Parses `YYYY-MM-DD HH:MM:SS` or ISO 8601 (`T` separator, optional fraction, optional
    /// `Z` or `±HH:MM` / `±HHMM`). A value without offset is UTC. `None` when it is not a valid
    /// instant.
    ///
    /// ```
    /// use tier_core::Timestamp;
    /// let a = Timestamp::parse("2019-05-13 14:23:41").unwrap();
    /// let b = Timestamp::parse("2019-05-13T16:23:41.000+02:00").unwrap();
    /// assert_eq!(a, b);
    /// assert_eq!(a.to_string(), "2019-05-13T14:23:41Z");
    /// assert!(Timestamp::parse("2019-02-30 00:00:00").is_none());
    /// ```
    pub fn parse(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 19 {
            return None;
        }
        let year = digits(&b[0..4])? as i64;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        let hour = digits(&b[11..13])?;
        let minute = digits(&b[14..16])?;
        let second = digits(&b[17..19])?;
        if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T' | b't') {
            return None;
        }
        if b[13] != b':' || b[16] != b':' {
            return None;
        }
        if year < 1
            || !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let mut rest = &b[19..];
        let mut micros = 0i64;
        if let Some((&b'.', frac)) = rest.split_first() {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 || n > 9 {
                return None;
            }
            for (i, &c) in frac[..n].iter().enumerate() {
                if i < 6 {
                    micros = micros * 10 + (c - b'0') as i64;
                }
            }
            for _ in n..6 {
                micros *= 10;
            }
            rest = &frac[n..];
        }
        let offset_seconds = match rest {
            [] | [b'Z'] | [b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, tail @ ..] => {
                let h = digits(&[*h1, *h2])? as i64;
                let m = match tail {
                    [] => 0,
                    [b':', m1, m2] | [m1, m2] => digits(&[*m1, *m2])? as i64,
                    _ => return None,
                };
                if h > 23 || m > 59 {
                    return None;
                }
                let off = h * 3600 + m * 60;
                if *sign == b'-' {
                    -off
                } else {
                    off
                }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month as i64, day as i64);
        let secs = days * 86_400 + hour as i64 * 3600 + minute as i64 * 60 + second as i64
            - offset_seconds;
        Some(Timestamp(secs * 1_000_000 + micros))
    }

    /// Microseconds since PostgreSQL's epoch, as binary COPY wants them.
    pub fn pg_micros(self) -> i64 {
        self.0 - PG_EPOCH_OFFSET_MICROS
    }

    /// Seconds since the Unix epoch, with the fraction.
    pub fn unix_seconds(self) -> f64 {
        self.0 as f64 / 1e6
    }
}

/// Days between the Unix epoch and PostgreSQL's (2000-01-01).
pub const PG_EPOCH_OFFSET_DAYS: i32 = 10_957;

/// Parses a calendar date `YYYY-MM-DD` to days since 1970-01-01; `None` when it is not a valid
/// date.
pub fn parse_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])? as i64;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month as i64, day as i64) as i32)
}

/// Formats days since 1970-01-01 as `YYYY-MM-DD`.
pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

impl Timestamp {
    /// `YYYY-MM-DD HH:MM:SS` in UTC, the form the exports use (without the fraction).
    ///
    /// ```
    /// let t = tier_core::Timestamp::parse("2019-05-13T16:23:41+02:00").unwrap();
    /// assert_eq!(t.naive_utc(), "2019-05-13 14:23:41");
    /// ```
    pub fn naive_utc(self) -> String {
        self.date_time(' ')
    }

    fn date_time(self, separator: char) -> String {
        let secs = self.0.div_euclid(1_000_000);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        format!(
            "{y:04}-{m:02}-{d:02}{separator}{:02}:{:02}:{:02}",
            sod / 3600,
            sod / 60 % 60,
            sod % 60
        )
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, with a fraction only when there is one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.date_time('T'))?;
        let micros = self.0.rem_euclid(1_000_000);
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        f.write_str("Z")
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse(&s).ok_or_else(|| serde::de::Error::custom("invalid timestamp"))
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let base = Timestamp::parse("2019-05-13 14:23:41").unwrap();
        assert_eq!(base.0, 1_557_757_421_000_000);
        for s in [
            "2019-05-13T14:23:41",
            "2019-05-13T14:23:41Z",
            "2019-05-13T14:23:41.000Z",
            "2019-05-13T15:23:41+01:00",
            "2019-05-13T13:23:41-0100",
        ] {
            assert_eq!(Timestamp::parse(s), Some(base), "{s}");
        }
        assert_eq!(
            Timestamp::parse("2019-05-13T14:23:41.5Z").unwrap().0,
            base.0 + 500_000
        );
        assert_eq!(
            Timestamp::parse("2000-01-01 00:00:00").unwrap().pg_micros(),
            0
        );
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "2019-05-13",
            "2019-13-01 00:00:00",
            "2019-02-29 00:00:00",
            "2019-05-13 24:00:00",
            "2019-05-13 14:23:41 ",
            "2019-05-13 14:23:41.",
            "2019-05-13 14:23:41+1",
            "2019/05/13 14:23:41",
            "0000-01-01 00:00:00",
            "yesterday at noon!!",
        ] {
            assert_eq!(Timestamp::parse(s), None, "{s}");
        }
        assert!(Timestamp::parse("2020-02-29 00:00:00").is_some());
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "1969-12-31T23:59:59.000001Z",
            "2019-05-13T14:23:41Z",
            "2400-02-29T00:00:00Z",
        ] {
            assert_eq!(Timestamp::parse(s).unwrap().to_string(), s);
        }
    }
}

#[cfg(test)]
mod examples {
    #[test]
    fn parse_date_takes_calendar_dates_only() {
        use super::parse_date;
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2000-01-01"), Some(10_957));
        assert!(parse_date("2019-02-29").is_none());
        assert!(parse_date("2019-05-13 00:00:00").is_none());
    }

    #[test]
    fn format_date_writes_iso_days() {
        assert_eq!(super::format_date(18_000), "2019-04-14");
    }
}
