//! RFC 3339 (UTC) rendering of Unix timestamps for error messages.
//!
//! Errors about expired keys, signatures and downgrades name times; this module turns
//! seconds since the epoch into `YYYY-MM-DDTHH:MM:SSZ` without pulling in a date crate.
//! The civil-date conversion is the well-known days-from-civil inverse (proleptic
//! Gregorian calendar), done in `i128` so no input can overflow.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats seconds since the Unix epoch (UTC) as RFC 3339, e.g. `2024-05-01T12:00:00Z`.
///
/// Works for any `i64`, including negative values (before 1970) and years beyond 9999
/// (printed with more digits).
pub fn format_unix_utc(secs: i64) -> String {
    let secs = i128::from(secs);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (hour, minute, second) = (rem / 3600, (rem % 3600) / 60, rem % 60);

    // Shift the epoch to 0000-03-01 so leap days fall at the end of a 400-year era.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// Formats a [`SystemTime`] as RFC 3339 in UTC, to whole seconds.
pub fn format_system_time(t: SystemTime) -> String {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let before = e.duration().as_secs();
            // Round towards minus infinity so a time 0.5 s before the epoch prints 23:59:59.
            let extra = u64::from(e.duration().subsec_nanos() > 0);
            i64::try_from(before.saturating_add(extra))
                .map(|v| -v)
                .unwrap_or(i64::MIN)
        }
    };
    format_unix_utc(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_dates() {
        assert_eq!(format_unix_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_unix_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_unix_utc(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format_unix_utc(253_402_300_799), "9999-12-31T23:59:59Z");
        // Extremes must not panic.
        let _ = format_unix_utc(i64::MAX);
        let _ = format_unix_utc(i64::MIN);
    }

    #[test]
    fn system_time() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(format_system_time(t), "2023-11-14T22:13:20Z");
        let before = UNIX_EPOCH - Duration::from_millis(500);
        assert_eq!(format_system_time(before), "1969-12-31T23:59:59Z");
    }
}
