//! RFC 3339 timestamps, always UTC, as the records use them.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, formatted as RFC 3339 UTC with nanoseconds (`2026-04-20T09:31:12.123456789Z`).
pub fn now_rfc3339() -> String {
    format_rfc3339(OffsetDateTime::now_utc())
}

/// Formats a timestamp as RFC 3339 UTC.
pub fn format_rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

/// Unix nanoseconds → RFC 3339 UTC.
pub fn unix_nanos_to_rfc3339(nanos: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(nanos as i128)
        .map(format_rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

/// Parses an RFC 3339 timestamp into Unix nanoseconds.
pub fn parse_rfc3339_nanos(s: &str) -> Option<i64> {
    OffsetDateTime::parse(s, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() as i64)
}

/// Current Unix time in nanoseconds.
pub fn now_unix_nanos() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
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
}
