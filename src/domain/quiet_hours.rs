//! Quiet hours: a company's nightly window (in its own time zone) when reminders are held back.

use chrono::{DateTime, Days, NaiveTime, TimeZone as _, Utc};
use chrono_tz::Tz;

/// An IANA time zone (`Africa/Dar_es_Salaam`), as a company stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(into = "String")]
#[schema(value_type = String, example = "Africa/Dar_es_Salaam")]
pub struct TimeZone(Tz);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?} (expected an IANA name such as Africa/Dar_es_Salaam)")]
pub struct UnknownTimeZone(pub String);

impl TimeZone {
    pub fn tz(self) -> Tz {
        self.0
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

impl std::str::FromStr for TimeZone {
    type Err = UnknownTimeZone;
    fn from_str(s: &str) -> Result<Self, UnknownTimeZone> {
        s.parse()
            .map(TimeZone)
            .map_err(|_| UnknownTimeZone(s.to_string()))
    }
}

impl TryFrom<String> for TimeZone {
    type Error = UnknownTimeZone;
    fn try_from(s: String) -> Result<Self, UnknownTimeZone> {
        s.parse()
    }
}

impl From<TimeZone> for String {
    fn from(tz: TimeZone) -> String {
        tz.name().to_string()
    }
}

impl std::fmt::Display for TimeZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A daily window `[start, end)` in local time; it crosses midnight when `start > end`
/// (the default 21:00-08:00). `start == end` means no quiet hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub tz: Tz,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// `None` if a message may go out at `now`; otherwise when the window ends.
    pub fn hold_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.start == self.end {
            return None;
        }
        let local = now.with_timezone(&self.tz);
        let t = local.time();
        let quiet = if self.start < self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        };
        if !quiet {
            return None;
        }
        // The window ends today at `end` if that is still ahead, else tomorrow.
        let day = if t < self.end {
            local.date_naive()
        } else {
            local.date_naive().checked_add_days(Days::new(1))?
        };
        let end_local = day.and_time(self.end);
        // Around a DST change take the earliest valid instant (TZ and KE have none).
        let end = self.tz.from_local_datetime(&end_local).earliest()?;
        Some(end.with_timezone(&Utc))
    }

    /// When the next window starts, at or after `after` (`None` without quiet hours).
    pub fn next_start(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.start == self.end {
            return None;
        }
        let local = after.with_timezone(&self.tz);
        let today = local.date_naive();
        [today, today.checked_add_days(Days::new(1))?]
            .into_iter()
            .filter_map(|day| {
                self.tz
                    .from_local_datetime(&day.and_time(self.start))
                    .earliest()
            })
            .map(|start| start.with_timezone(&Utc))
            .find(|start| *start >= after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_time_zone_is_an_error_not_dar_es_salaam() {
        let nairobi = TimeZone::try_from("Africa/Nairobi".to_string()).unwrap();
        assert_eq!(nairobi.tz(), chrono_tz::Africa::Nairobi);
        assert_eq!(
            serde_json::to_value(nairobi).unwrap(),
            serde_json::json!("Africa/Nairobi")
        );
        let err = TimeZone::try_from("Africa/Atlantis".to_string()).unwrap_err();
        assert_eq!(err, UnknownTimeZone("Africa/Atlantis".into()));
    }

    fn hours() -> QuietHours {
        QuietHours {
            tz: chrono_tz::Africa::Dar_es_Salaam,
            start: NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        }
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        // Dar es Salaam is UTC+3 all year.
        chrono_tz::Africa::Dar_es_Salaam
            .with_ymd_and_hms(2026, 11, 24, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_next_window_starts_at_nine_in_the_evening_local() {
        assert_eq!(hours().next_start(at(12, 0)), Some(at(21, 0)));
        assert_eq!(hours().next_start(at(21, 0)), Some(at(21, 0)));
        let tomorrow = chrono_tz::Africa::Dar_es_Salaam
            .with_ymd_and_hms(2026, 11, 25, 21, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(hours().next_start(at(21, 1)), Some(tomorrow));
        let none = QuietHours {
            end: hours().start,
            ..hours()
        };
        assert_eq!(none.next_start(at(12, 0)), None);
    }

    #[test]
    fn the_night_is_held_until_eight_local() {
        assert_eq!(hours().hold_until(at(12, 0)), None);
        assert_eq!(hours().hold_until(at(20, 59)), None);
        let next_morning = chrono_tz::Africa::Dar_es_Salaam
            .with_ymd_and_hms(2026, 11, 25, 8, 0, 0)
            .unwrap();
        assert_eq!(
            hours().hold_until(at(21, 0)),
            Some(next_morning.with_timezone(&Utc))
        );
        assert_eq!(
            hours().hold_until(at(23, 30)),
            Some(next_morning.with_timezone(&Utc))
        );
        assert_eq!(hours().hold_until(at(7, 59)), Some(at(8, 0)));
        assert_eq!(hours().hold_until(at(8, 0)), None);
    }

    #[test]
    fn a_window_within_one_day_and_no_window() {
        let lunch = QuietHours {
            start: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(14, 0, 0).unwrap(),
            ..hours()
        };
        assert_eq!(lunch.hold_until(at(13, 0)), Some(at(14, 0)));
        assert_eq!(lunch.hold_until(at(15, 0)), None);
        let none = QuietHours {
            end: hours().start,
            ..hours()
        };
        assert_eq!(none.hold_until(at(23, 0)), None);
    }
}
