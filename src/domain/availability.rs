//! Whether an operator takes contacts at a given instant, and when that next changes: the admin's
//! `is_active`, the operator's own `availability` (with `away_until`), their weekly schedule in their time zone,
//! and their time off. Pure rules over what the store loaded and an instant from the [`super::Clock`].
//!
//! **Shifts.** A schedule is a list of weekly intervals; an interval belongs to the day it starts on, and one
//! whose end is not after its start ends the next day (`22:00`–`06:00`; `09:00`–`09:00` is 24 hours). Local times are turned into instants
//! with the time-zone database (chrono-tz): a time that happens twice (clocks going back) is its first
//! occurrence; a time that does not exist (clocks going forward) is the first minute that does, the moment the
//! clocks jump (in Europe/Berlin, 02:30 on the last Sunday of March is 03:00 CEST).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The operator's own switch, beside the admin's `is_active`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Availability {
    #[default]
    Available,
    /// Away until `away_until`, or until switched back when there is none.
    Away,
    Offline,
}

impl Availability {
    pub const NAMES: [&'static str; 3] = ["available", "away", "offline"];

    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Available => "available",
            Availability::Away => "away",
            Availability::Offline => "offline",
        }
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "available" => Ok(Availability::Available),
            "away" => Ok(Availability::Away),
            "offline" => Ok(Availability::Offline),
            _ => Err("must be one of available, away, offline".to_owned()),
        }
    }
}

/// An IANA time-zone name, known to the time-zone database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZoneName(Tz);

impl TimeZoneName {
    pub const UTC: TimeZoneName = TimeZoneName(Tz::UTC);

    pub fn parse(value: &str) -> Result<Self, String> {
        Tz::from_str(value)
            .map(TimeZoneName)
            .map_err(|_| "must be an IANA time-zone name, such as Europe/Berlin".to_owned())
    }

    pub fn tz(self) -> Tz {
        self.0
    }

    pub fn as_str(self) -> &'static str {
        self.0.name()
    }
}

/// A time of day, "HH:MM" (00:00 to 23:59).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeOfDay(NaiveTime);

impl TimeOfDay {
    pub fn parse(value: &str) -> Result<Self, String> {
        let refused = || "must be a time of day HH:MM, 00:00 to 23:59".to_owned();
        let bytes = value.as_bytes();
        if bytes.len() != 5 || bytes[2] != b':' {
            return Err(refused());
        }
        let hours: u32 = value[..2].parse().map_err(|_| refused())?;
        let minutes: u32 = value[3..].parse().map_err(|_| refused())?;
        NaiveTime::from_hms_opt(hours, minutes, 0)
            .filter(|_| {
                value[..2]
                    .bytes()
                    .chain(value[3..].bytes())
                    .all(|b| b.is_ascii_digit())
            })
            .map(TimeOfDay)
            .ok_or_else(refused)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}

/// A day of the week as the API spells it.
pub fn parse_day(value: &str) -> Result<Weekday, String> {
    match value {
        "mon" => Ok(Weekday::Mon),
        "tue" => Ok(Weekday::Tue),
        "wed" => Ok(Weekday::Wed),
        "thu" => Ok(Weekday::Thu),
        "fri" => Ok(Weekday::Fri),
        "sat" => Ok(Weekday::Sat),
        "sun" => Ok(Weekday::Sun),
        _ => Err("must be one of mon, tue, wed, thu, fri, sat, sun".to_owned()),
    }
}

pub fn day_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
    }
}

/// One weekly interval of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    /// The days it starts on, each once, Monday first.
    pub days: Vec<Weekday>,
    pub start: TimeOfDay,
    /// Not after `start`: the next day (equal to it: 24 hours later).
    pub end: TimeOfDay,
}

/// A shift as the API and the database spell it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShiftSpelling {
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
}

impl Shift {
    pub fn parse(spelling: &ShiftSpelling) -> Result<Self, (&'static str, String)> {
        if spelling.days.is_empty() {
            return Err(("days", "must name at least one day".to_owned()));
        }
        let mut days = spelling
            .days
            .iter()
            .map(|day| parse_day(day))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ("days", e))?;
        days.sort_by_key(|day| day.num_days_from_monday());
        days.dedup();
        let start = TimeOfDay::parse(&spelling.start).map_err(|e| ("start", e))?;
        let end = TimeOfDay::parse(&spelling.end).map_err(|e| ("end", e))?;
        Ok(Shift { days, start, end })
    }

    pub fn spelling(&self) -> ShiftSpelling {
        ShiftSpelling {
            days: self.days.iter().map(|d| day_name(*d).to_owned()).collect(),
            start: self.start.to_string(),
            end: self.end.to_string(),
        }
    }
}

/// The weekly schedule: the shifts an operator works. An empty one is never on shift.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schedule(pub Vec<Shift>);

impl Schedule {
    /// As stored: a JSON list of [`ShiftSpelling`].
    pub fn to_json(&self) -> String {
        let spelled: Vec<ShiftSpelling> = self.0.iter().map(Shift::spelling).collect();
        serde_json::to_string(&spelled).unwrap_or_else(|_| "[]".to_owned())
    }

    /// A stored schedule (see [`Schedule::to_json`]).
    pub fn parse(json: &str) -> Result<Self, String> {
        Self::from_json(json)
    }

    pub fn from_json(json: &str) -> Result<Self, String> {
        let spelled: Vec<ShiftSpelling> =
            serde_json::from_str(json).map_err(|e| format!("a stored schedule: {e}"))?;
        spelled
            .iter()
            .map(|s| {
                Shift::parse(s).map_err(|(field, e)| format!("a stored schedule's {field}: {e}"))
            })
            .collect::<Result<_, _>>()
            .map(Schedule)
    }

    /// The instants of the shifts that start on local dates `from` to `to` (inclusive).
    fn occurrences(
        &self,
        tz: Tz,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let mut found = Vec::new();
        let mut date = from;
        while date <= to {
            for shift in &self.0 {
                if shift.days.contains(&date.weekday()) {
                    let end_date = if shift.end > shift.start {
                        date
                    } else {
                        date + TimeDelta::days(1)
                    };
                    found.push((
                        instant(tz, date, shift.start),
                        instant(tz, end_date, shift.end),
                    ));
                }
            }
            date += TimeDelta::days(1);
        }
        found
    }
}

/// The instant a local date and time stand for (see the module's note on daylight saving).
fn instant(tz: Tz, date: NaiveDate, time: TimeOfDay) -> DateTime<Utc> {
    let mut local = date.and_time(time.0);
    // A gap is at most a few hours; a day is far more than enough.
    for _ in 0..=24 * 60 {
        if let Some(first) = tz.from_local_datetime(&local).earliest() {
            return first.to_utc();
        }
        local += TimeDelta::minutes(1);
    }
    date.and_time(time.0).and_utc()
}

/// A period of time off, `[starts_at, ends_at)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl Period {
    /// `ends_at` must be after `starts_at`.
    pub fn new(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> Result<Self, String> {
        if ends_at <= starts_at {
            return Err("must be after starts_at".to_owned());
        }
        Ok(Period { starts_at, ends_at })
    }

    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.starts_at <= at && at < self.ends_at
    }
}

/// Why an operator does not take contacts; the first that applies, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAccepting {
    Inactive,
    Away,
    Offline,
    OffShift,
    TimeOff,
}

impl NotAccepting {
    pub const NAMES: [&'static str; 5] = ["inactive", "away", "offline", "off_shift", "time_off"];

    pub fn as_str(self) -> &'static str {
        match self {
            NotAccepting::Inactive => "inactive",
            NotAccepting::Away => "away",
            NotAccepting::Offline => "offline",
            NotAccepting::OffShift => "off_shift",
            NotAccepting::TimeOff => "time_off",
        }
    }
}

/// What decides whether an operator takes contacts.
#[derive(Debug, Clone, Copy)]
pub struct Presence<'a> {
    pub is_active: bool,
    pub availability: Availability,
    pub away_until: Option<DateTime<Utc>>,
    pub timezone: TimeZoneName,
    /// `None`: always on shift.
    pub schedule: Option<&'a Schedule>,
    pub time_off: &'a [Period],
}

/// Whether the operator takes contacts at an instant, why not, and when that next changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepting {
    pub accepting: bool,
    pub because: Option<NotAccepting>,
    /// When `accepting` next flips by the schedule, time off or `away_until`; `None` when nothing scheduled
    /// changes it.
    pub next_change_at: Option<DateTime<Utc>>,
}

/// How many days of shifts are looked at for the next change: every weekly shift boundary is within them.
const HORIZON_DAYS: i64 = 8;

impl Presence<'_> {
    /// Why the operator does not take contacts at `at`; `None`: they do.
    pub fn not_accepting_because(&self, at: DateTime<Utc>) -> Option<NotAccepting> {
        if !self.is_active {
            return Some(NotAccepting::Inactive);
        }
        match self.availability {
            Availability::Away if self.away_until.is_none_or(|until| at < until) => {
                return Some(NotAccepting::Away);
            }
            Availability::Offline => return Some(NotAccepting::Offline),
            _ => {}
        }
        if let Some(schedule) = self.schedule {
            let tz = self.timezone.tz();
            let today = at.with_timezone(&tz).date_naive();
            let on_shift = schedule
                .occurrences(tz, today - TimeDelta::days(1), today)
                .iter()
                .any(|(start, end)| *start <= at && at < *end);
            if !on_shift {
                return Some(NotAccepting::OffShift);
            }
        }
        if self.time_off.iter().any(|period| period.contains(at)) {
            return Some(NotAccepting::TimeOff);
        }
        None
    }

    pub fn accepting_at(&self, at: DateTime<Utc>) -> bool {
        self.not_accepting_because(at).is_none()
    }

    /// The whole answer at `now`.
    pub fn at(&self, now: DateTime<Utc>) -> Accepting {
        let because = self.not_accepting_because(now);
        let accepting = because.is_none();
        // Inactive and offline change only by hand, and so does away without an end.
        let by_hand = matches!(
            because,
            Some(NotAccepting::Inactive | NotAccepting::Offline)
        ) || (because == Some(NotAccepting::Away) && self.away_until.is_none());
        let next_change_at = if by_hand {
            None
        } else {
            self.boundaries_after(now)
                .into_iter()
                .find(|at| self.accepting_at(*at) != accepting)
        };
        Accepting {
            accepting,
            because,
            next_change_at,
        }
    }

    /// Every instant after `now` at which something that decides may change, in order (shifts: the coming
    /// [`HORIZON_DAYS`]).
    fn boundaries_after(&self, now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut found: Vec<DateTime<Utc>> = Vec::new();
        if self.availability == Availability::Away {
            found.extend(self.away_until);
        }
        for period in self.time_off {
            found.extend([period.starts_at, period.ends_at]);
        }
        if let Some(schedule) = self.schedule {
            let tz = self.timezone.tz();
            let today = now.with_timezone(&tz).date_naive();
            for (start, end) in schedule.occurrences(
                tz,
                today - TimeDelta::days(1),
                today + TimeDelta::days(HORIZON_DAYS),
            ) {
                found.extend([start, end]);
            }
        }
        // Time off and away_until count however far ahead; the schedule repeats weekly, so a week and a day
        // of its boundaries show whether it ever changes anything.
        found.retain(|at| now < *at);
        found.sort();
        found.dedup();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn shift(days: &[&str], start: &str, end: &str) -> Shift {
        Shift::parse(&ShiftSpelling {
            days: days.iter().map(|d| d.to_string()).collect(),
            start: start.to_owned(),
            end: end.to_owned(),
        })
        .unwrap()
    }

    fn presence<'a>(
        schedule: Option<&'a Schedule>,
        tz: &str,
        time_off: &'a [Period],
    ) -> Presence<'a> {
        Presence {
            is_active: true,
            availability: Availability::Available,
            away_until: None,
            timezone: TimeZoneName::parse(tz).unwrap(),
            schedule,
            time_off,
        }
    }

    #[test]
    fn times_of_day_are_hh_mm() {
        assert!(TimeOfDay::parse("09:00").is_ok());
        assert!(TimeOfDay::parse("23:59").is_ok());
        for bad in [
            "25:00", "9:00", "09:60", "24:00", "0900", "+9:00", "09:0x", "",
        ] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shifts_refuse_bad_days_and_empty_intervals() {
        let spelled = |days: &[&str], start: &str, end: &str| ShiftSpelling {
            days: days.iter().map(|d| d.to_string()).collect(),
            start: start.to_owned(),
            end: end.to_owned(),
        };
        assert_eq!(
            Shift::parse(&spelled(&["funday"], "09:00", "18:00"))
                .unwrap_err()
                .0,
            "days"
        );
        assert_eq!(
            Shift::parse(&spelled(&[], "09:00", "18:00")).unwrap_err().0,
            "days"
        );
        // Equal start and end: a whole day, Monday 2026-06-01 09:00 to Tuesday 09:00.
        let whole_day = Schedule(vec![
            Shift::parse(&spelled(&["mon"], "09:00", "09:00")).unwrap(),
        ]);
        let p = presence(Some(&whole_day), "UTC", &[]);
        assert!(p.accepting_at(at("2026-06-02T08:59:00Z")));
        assert_eq!(
            p.at(at("2026-06-01T10:00:00Z")).next_change_at,
            Some(at("2026-06-02T09:00:00Z"))
        );
        let schedule = Schedule(vec![shift(&["tue", "mon", "mon"], "22:00", "06:00")]);
        assert_eq!(Schedule::from_json(&schedule.to_json()).unwrap(), schedule);
        assert_eq!(schedule.0[0].days, vec![Weekday::Mon, Weekday::Tue]);
    }

    #[test]
    fn the_reasons_come_in_order() {
        let schedule = Schedule(vec![]);
        let time_off =
            [Period::new(at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z")).unwrap()];
        let now = at("2026-06-01T12:00:00Z");
        let mut p = presence(Some(&schedule), "UTC", &time_off);
        p.is_active = false;
        p.availability = Availability::Away;
        assert_eq!(p.not_accepting_because(now), Some(NotAccepting::Inactive));
        p.is_active = true;
        assert_eq!(p.not_accepting_because(now), Some(NotAccepting::Away));
        p.availability = Availability::Offline;
        assert_eq!(p.not_accepting_because(now), Some(NotAccepting::Offline));
        p.availability = Availability::Available;
        assert_eq!(p.not_accepting_because(now), Some(NotAccepting::OffShift));
        p.schedule = None;
        assert_eq!(p.not_accepting_because(now), Some(NotAccepting::TimeOff));
        p.time_off = &[];
        assert_eq!(
            p.at(now),
            Accepting {
                accepting: true,
                because: None,
                next_change_at: None
            }
        );
    }

    #[test]
    fn away_ends_at_away_until() {
        let mut p = presence(None, "UTC", &[]);
        p.availability = Availability::Away;
        p.away_until = Some(at("2026-06-01T13:00:00Z"));
        let lunch = p.at(at("2026-06-01T12:00:00Z"));
        assert_eq!(lunch.because, Some(NotAccepting::Away));
        assert_eq!(lunch.next_change_at, Some(at("2026-06-01T13:00:00Z")));
        assert!(p.accepting_at(at("2026-06-01T13:00:00Z")));
        assert_eq!(p.at(at("2026-06-01T13:00:00Z")).next_change_at, None);
        p.away_until = None;
        assert_eq!(p.at(at("2026-06-01T12:00:00Z")).next_change_at, None);
    }

    #[test]
    fn a_shift_starts_and_ends() {
        let schedule = Schedule(vec![shift(
            &["mon", "tue", "wed", "thu", "fri"],
            "09:00",
            "18:00",
        )]);
        let p = presence(Some(&schedule), "UTC", &[]);
        // Monday 2026-06-01.
        let before = p.at(at("2026-06-01T08:59:00Z"));
        assert_eq!(before.because, Some(NotAccepting::OffShift));
        assert_eq!(before.next_change_at, Some(at("2026-06-01T09:00:00Z")));
        let during = p.at(at("2026-06-01T09:00:00Z"));
        assert!(during.accepting);
        assert_eq!(during.next_change_at, Some(at("2026-06-01T18:00:00Z")));
        // Friday evening: next Monday.
        let weekend = p.at(at("2026-06-05T18:00:00Z"));
        assert!(!weekend.accepting);
        assert_eq!(weekend.next_change_at, Some(at("2026-06-08T09:00:00Z")));
    }

    #[test]
    fn a_night_shift_crosses_midnight_and_belongs_to_its_first_day() {
        let schedule = Schedule(vec![shift(&["fri"], "22:00", "06:00")]);
        let p = presence(Some(&schedule), "UTC", &[]);
        assert!(!p.accepting_at(at("2026-06-05T21:59:00Z")));
        assert!(p.accepting_at(at("2026-06-05T23:00:00Z")));
        // Saturday early morning is Friday's shift.
        let saturday = p.at(at("2026-06-06T05:00:00Z"));
        assert!(saturday.accepting);
        assert_eq!(saturday.next_change_at, Some(at("2026-06-06T06:00:00Z")));
        assert!(
            !p.accepting_at(at("2026-06-06T23:00:00Z")),
            "Saturday has no shift of its own"
        );
    }

    #[test]
    fn adjacent_shifts_make_one_stretch() {
        let schedule = Schedule(vec![
            shift(&["mon"], "09:00", "12:00"),
            shift(&["mon"], "12:00", "18:00"),
        ]);
        let p = presence(Some(&schedule), "UTC", &[]);
        let morning = p.at(at("2026-06-01T10:00:00Z"));
        assert_eq!(morning.next_change_at, Some(at("2026-06-01T18:00:00Z")));
    }

    #[test]
    fn shifts_follow_daylight_saving_in_their_time_zone() {
        // Berlin: CET (+01) until 2026-03-29 02:00, then CEST (+02); back to CET on 2026-10-25 03:00.
        let schedule = Schedule(vec![shift(&["sat", "sun", "mon"], "09:00", "18:00")]);
        let p = presence(Some(&schedule), "Europe/Berlin", &[]);
        let saturday = p.at(at("2026-03-28T12:00:00Z"));
        assert_eq!(saturday.next_change_at, Some(at("2026-03-28T17:00:00Z")));
        let sunday = p.at(at("2026-03-28T20:00:00Z"));
        assert_eq!(
            sunday.next_change_at,
            Some(at("2026-03-29T07:00:00Z")),
            "09:00 CEST"
        );
        // A start that does not exist is the moment the clocks jump; one that repeats, its first occurrence.
        let gap = Schedule(vec![shift(&["sun"], "02:30", "04:00")]);
        let p = presence(Some(&gap), "Europe/Berlin", &[]);
        assert_eq!(
            p.at(at("2026-03-28T23:00:00Z")).next_change_at,
            Some(at("2026-03-29T01:00:00Z"))
        );
        let repeated = Schedule(vec![shift(&["sun"], "02:30", "05:00")]);
        let p = presence(Some(&repeated), "Europe/Berlin", &[]);
        assert_eq!(
            p.at(at("2026-10-24T22:00:00Z")).next_change_at,
            Some(at("2026-10-25T00:30:00Z")),
            "02:30 CEST, the first of the two"
        );
    }

    #[test]
    fn time_off_starts_and_ends() {
        let time_off =
            [Period::new(at("2026-06-02T00:00:00Z"), at("2026-06-03T00:00:00Z")).unwrap()];
        let p = presence(None, "UTC", &time_off);
        let before = p.at(at("2026-06-01T12:00:00Z"));
        assert_eq!(before.next_change_at, Some(at("2026-06-02T00:00:00Z")));
        let during = p.at(at("2026-06-02T12:00:00Z"));
        assert_eq!(during.because, Some(NotAccepting::TimeOff));
        assert_eq!(during.next_change_at, Some(at("2026-06-03T00:00:00Z")));
        assert!(Period::new(at("2026-06-02T00:00:00Z"), at("2026-06-02T00:00:00Z")).is_err());
    }

    #[test]
    fn time_off_far_ahead_is_the_next_change() {
        let time_off =
            [Period::new(at("2026-09-01T00:00:00Z"), at("2026-09-15T00:00:00Z")).unwrap()];
        let p = presence(None, "UTC", &time_off);
        assert_eq!(
            p.at(at("2026-06-01T12:00:00Z")).next_change_at,
            Some(at("2026-09-01T00:00:00Z"))
        );
    }

    #[test]
    fn time_off_outside_shifts_changes_nothing_next() {
        let schedule = Schedule(vec![shift(&["mon"], "09:00", "18:00")]);
        let time_off =
            [Period::new(at("2026-06-01T19:00:00Z"), at("2026-06-01T20:00:00Z")).unwrap()];
        let p = presence(Some(&schedule), "UTC", &time_off);
        assert_eq!(
            p.at(at("2026-06-01T18:30:00Z")).next_change_at,
            Some(at("2026-06-08T09:00:00Z"))
        );
    }
}
