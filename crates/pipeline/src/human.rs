//! Durations written for the people who read logs.

use std::time::Duration;

/// A duration as a person reads it: `0s`, `850ms`, `4.2s`, `3m10s`, `2h5m`, `3d4h`.
///
/// Sub-second durations keep milliseconds, durations under a minute one decimal, and
/// longer ones the two largest units, which is all a log reader needs.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        let tenths = (ms + 50) / 100;
        return if tenths.is_multiple_of(10) {
            format!("{}s", tenths / 10)
        } else {
            format!("{}.{}s", tenths / 10, tenths % 10)
        };
    }
    let s = d.as_secs();
    let (big, small, bu, su) = if s < 3600 {
        (s / 60, s % 60, "m", "s")
    } else if s < 86_400 {
        (s / 3600, s % 3600 / 60, "h", "m")
    } else {
        (s / 86_400, s % 86_400 / 3600, "d", "h")
    };
    if small == 0 {
        format!("{big}{bu}")
    } else {
        format!("{big}{bu}{small}{su}")
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration;
    use std::time::Duration;

    #[test]
    fn durations_read_like_a_person_writes_them() {
        for (ms, want) in [
            (0, "0s"),
            (1, "1ms"),
            (850, "850ms"),
            (1000, "1s"),
            (4_200, "4.2s"),
            (4_249, "4.2s"),
            (59_900, "59.9s"),
            (60_000, "1m"),
            (190_000, "3m10s"),
            (3_600_000, "1h"),
            (7_500_000, "2h5m"),
            (86_400_000, "1d"),
            (273_600_000, "3d4h"),
        ] {
            assert_eq!(human_duration(Duration::from_millis(ms)), want, "{ms} ms");
        }
    }
}
