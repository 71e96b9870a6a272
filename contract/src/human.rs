//! Durations and byte sizes as people read them, the same in every command and console line.

use std::time::Duration;

/// `850ms`, `12.3s`, `4m05s`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// [`duration`] of a millisecond count; a negative one (a clock that went back) is `-`.
pub fn duration_ms(ms: i64) -> String {
    match u64::try_from(ms) {
        Ok(ms) => duration(Duration::from_millis(ms)),
        Err(_) => "-".into(),
    }
}

/// `512 B`, `1.5 KiB`, `120.0 MiB`, `2.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(12_340), "12.3s");
        assert_eq!(duration_ms(245_000), "4m05s");
        assert_eq!(duration_ms(-5), "-");
        assert_eq!(duration(Duration::from_millis(1_000)), "1.0s");
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(2 << 30), "2.0 GiB");
        assert_eq!(bytes(3 << 40), "3.0 TiB");
    }
}
