//! The hand-written RFC 3339 code agrees with a date library on what both can represent.

use sparkwing_contract::timefmt::{parse_rfc3339_nanos, unix_nanos_to_rfc3339};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// xorshift: a fixed sequence of test values without a random-number crate.
fn values(n: usize) -> impl Iterator<Item = i64> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n).map(move |i| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Years 0000..=9999 are about ±2.5e20 ns around 1970; i64 holds ±9.2e18 (1678..2262).
        let v = x as i64;
        match i % 4 {
            0 => v,
            1 => v / 1_000_000_000 * 1_000_000_000, // whole seconds
            2 => v / 1_000 * 1_000,                 // microseconds
            _ => v % 100_000_000_000_000_000,       // near 1970
        }
    })
}

#[test]
fn formatting_matches_the_library() {
    for n in values(200_000) {
        let lib = OffsetDateTime::from_unix_timestamp_nanos(i128::from(n))
            .unwrap()
            .format(&Rfc3339)
            .unwrap();
        assert_eq!(unix_nanos_to_rfc3339(n), lib, "{n}");
    }
}

#[test]
fn parsing_matches_the_library() {
    let offsets = ["Z", "+02:00", "-05:30", "+23:59", "-00:00"];
    for (i, n) in values(100_000).enumerate() {
        let mut text = unix_nanos_to_rfc3339(n);
        text.pop();
        text.push_str(offsets[i % offsets.len()]);
        let lib = OffsetDateTime::parse(&text, &Rfc3339)
            .ok()
            .map(|t| t.unix_timestamp_nanos() as i64);
        assert_eq!(parse_rfc3339_nanos(&text), lib, "{text}");
    }
}
