//! RFC 3339 timestamps, always written in UTC, as the records use them.
//!
//! Written out here rather than taken from a date library: every process that records a run
//! (the pipeline binary included, whose cold build users wait for) needs only these few
//! conversions between Unix time and the proleptic Gregorian calendar.

/// Nanoseconds per second.
const NANOS: i64 = 1_000_000_000;
/// Seconds per day.
const DAY: i64 = 86_400;
/// What a timestamp outside years 0000–9999 is written as (RFC 3339 has four-digit years).
const EPOCH_TEXT: &str = "1970-01-01T00:00:00Z";

/// Now, formatted as RFC 3339 UTC with nanoseconds (`2026-04-20T09:31:12.123456789Z`).
pub fn now_rfc3339() -> String {
    unix_nanos_to_rfc3339(now_unix_nanos())
}

/// Unix nanoseconds → RFC 3339 UTC: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the fraction only when
/// non-zero and without trailing zeros.
pub fn unix_nanos_to_rfc3339(nanos: i64) -> String {
    let secs = nanos.div_euclid(NANOS);
    let sub = nanos.rem_euclid(NANOS);
    let days = secs.div_euclid(DAY);
    let of_day = secs.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return EPOCH_TEXT.to_string();
    }
    // Written digit by digit: records and log lines stamp every event, and two `format!` calls
    // cost ten times this.
    let mut s = String::with_capacity(30);
    push_digits(&mut s, y, 4);
    s.push('-');
    push_digits(&mut s, m, 2);
    s.push('-');
    push_digits(&mut s, d, 2);
    s.push('T');
    push_digits(&mut s, of_day / 3600, 2);
    s.push(':');
    push_digits(&mut s, of_day % 3600 / 60, 2);
    s.push(':');
    push_digits(&mut s, of_day % 60, 2);
    if sub != 0 {
        let (mut frac, mut digits) = (sub, 9);
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        s.push('.');
        push_digits(&mut s, frac, digits);
    }
    s.push('Z');
    s
}

/// Appends `value` (not negative) as exactly `width` decimal digits, zero-padded.
fn push_digits(s: &mut String, value: i64, width: u32) {
    let mut div = 10i64.pow(width.saturating_sub(1));
    while div > 0 {
        s.push(char::from(b'0' + (value / div % 10) as u8));
        div /= 10;
    }
}

/// Parses an RFC 3339 timestamp (`T` or `t` between date and time, an optional fraction of any
/// length of which the first nine digits count, `Z`, `z` or `±HH:MM`) into Unix nanoseconds.
pub fn parse_rfc3339_nanos(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-')
        && at(7, b'-')
        && (at(10, b'T') || at(10, b't'))
        && at(13, b':')
        && at(16, b':'))
    {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut sub = 0i64;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                sub = sub * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            sub *= 10;
        }
    }
    let offset_secs = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        &sign @ (b'+' | b'-') if i + 6 == b.len() && at(i + 3, b':') => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let secs =
        days_from_civil(year, month, day) * DAY + hour * 3600 + minute * 60 + second - offset_secs;
    secs.checked_mul(NANOS)?.checked_add(sub)
}

/// Current Unix time in nanoseconds.
pub fn now_unix_nanos() -> i64 {
    let now = std::time::SystemTime::now();
    match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// The UTC calendar fields of Unix nanoseconds: `(year, month, day, hour, minute, second)`.
pub fn utc_fields(nanos: i64) -> (i64, i64, i64, i64, i64, i64) {
    let secs = nanos.div_euclid(NANOS);
    let (y, m, d) = civil_from_days(secs.div_euclid(DAY));
    let of_day = secs.rem_euclid(DAY);
    (y, m, d, of_day / 3600, of_day % 3600 / 60, of_day % 60)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (`civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_nanos() {
        let n = 1_776_677_472_123_456_789;
        let s = unix_nanos_to_rfc3339(n);
        assert_eq!(s, "2026-04-20T09:31:12.123456789Z");
        assert_eq!(parse_rfc3339_nanos(&s), Some(n));
    }

    #[test]
    fn fractions_are_trimmed_and_absent_when_zero() {
        assert_eq!(unix_nanos_to_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            unix_nanos_to_rfc3339(1_500_000_000),
            "1970-01-01T00:00:01.5Z"
        );
        assert_eq!(unix_nanos_to_rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(
            unix_nanos_to_rfc3339(951_782_400 * NANOS),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn offsets_and_long_fractions_parse() {
        let z = parse_rfc3339_nanos("2026-04-20T09:31:12Z").unwrap();
        assert_eq!(parse_rfc3339_nanos("2026-04-20T11:31:12+02:00"), Some(z));
        assert_eq!(parse_rfc3339_nanos("2026-04-20t04:01:12-05:30z"), None);
        assert_eq!(parse_rfc3339_nanos("2026-04-20t04:01:12-05:30"), Some(z));
        assert_eq!(
            parse_rfc3339_nanos("2026-04-20T09:31:12.1234567891234Z"),
            Some(z + 123_456_789)
        );
        assert_eq!(
            parse_rfc3339_nanos("2026-04-20T09:31:12.5z"),
            Some(z + 500_000_000)
        );
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for bad in [
            "",
            "2026-04-20",
            "2026-04-20T09:31:12",
            "2026-04-20 09:31:12Z",
            "2026-13-20T09:31:12Z",
            "2026-02-29T09:31:12Z",
            "2026-04-31T09:31:12Z",
            "2026-04-20T24:00:00Z",
            "2026-04-20T09:60:00Z",
            "2026-04-20T09:31:12.Z",
            "2026-04-20T09:31:12+2:00",
            "2026-04-20T09:31:12+02:00x",
            "2026-04-20T09:31:12ZZ",
            "２026-04-20T09:31:12Z",
            "+026-04-20T09:31:12Z",
        ] {
            assert_eq!(parse_rfc3339_nanos(bad), None, "{bad}");
        }
        assert!(parse_rfc3339_nanos("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn the_calendar_agrees_with_itself_over_every_day_of_ten_millennia() {
        let first = days_from_civil(0, 1, 1);
        let last = days_from_civil(9999, 12, 31);
        let mut expect = (0, 1, 1);
        for z in first..=last {
            let got = civil_from_days(z);
            assert_eq!(got, expect, "day {z}");
            assert_eq!(days_from_civil(got.0, got.1, got.2), z);
            let (y, m, d) = expect;
            expect = if d < days_in_month(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
        assert_eq!(first, -719_528);
        assert_eq!(
            unix_nanos_to_rfc3339(i64::MAX),
            "2262-04-11T23:47:16.854775807Z"
        );
        assert_eq!(
            unix_nanos_to_rfc3339(i64::MIN),
            "1677-09-21T00:12:43.145224192Z"
        );
    }
}
