//! Alert levels per check (CPU, memory, disk, processing time, error rate, cache hit rate):
//! each sample is compared with its ALERT_* threshold, and an episode is announced once when
//! it starts and once when it clears. An alert clears only once the value is 10 % of the
//! threshold back on the good side (hysteresis), so a value wobbling around the threshold
//! sends nothing more. The monitoring loop (`monitor`) feeds it; the reports read it.

use std::sync::Mutex;

use crate::config::AlertThresholds;

/// The band an alert must leave before it clears, as a share of its threshold.
const HYSTERESIS: f64 = 0.1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    Cpu,
    Memory,
    Disk,
    ProcessingTime,
    ErrorRate,
    CacheHitRate,
    /// Age of the oldest accepted update not yet answered.
    IntakeAge,
    /// Records left out of the store since the last check (spill file at its bound,
    /// refused for good, lost).
    RecordsLeftOut,
}

impl Check {
    pub const ALL: [Check; 8] = [
        Check::Cpu,
        Check::Memory,
        Check::Disk,
        Check::ProcessingTime,
        Check::ErrorRate,
        Check::CacheHitRate,
        Check::IntakeAge,
        Check::RecordsLeftOut,
    ];

    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            Check::Cpu => "cpu",
            Check::Memory => "memory",
            Check::Disk => "disk",
            Check::ProcessingTime => "processing_time",
            Check::ErrorRate => "error_rate",
            Check::CacheHitRate => "cache_hit_rate",
            Check::IntakeAge => "intake_age",
            Check::RecordsLeftOut => "records_left_out",
        }
    }

    pub fn describe(self, value: f64) -> String {
        match self {
            Check::Cpu => format!("CPU {value:.0}%"),
            Check::Memory => format!("memory {value:.0}% of MEMORY_LIMIT_MB"),
            Check::Disk => format!("disk {value:.0}% full"),
            Check::ProcessingTime => format!("processing time {value:.1} s on average"),
            Check::ErrorRate => format!("error rate {value:.0}%"),
            Check::CacheHitRate => format!("cache hit rate {value:.0}%"),
            Check::IntakeAge => format!("oldest accepted update unanswered for {value:.0} s"),
            Check::RecordsLeftOut => format!(
                "{value:.0} records left out of the store (spill file at RECORD_SPILL_MAX_MB, \
                 or refused for good: see the dead-letter file)"
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Clear,
    Warning,
    Critical,
}

/// A check's thresholds: breached above them, or below them (`below`).
#[derive(Debug, Clone, Copy)]
struct Rule {
    check: Check,
    warning: f64,
    critical: Option<f64>,
    below: bool,
}

impl Rule {
    fn rules(t: &AlertThresholds) -> [Rule; 8] {
        let above = |check, warning, critical| Rule {
            check,
            warning,
            critical,
            below: false,
        };
        [
            above(Check::Cpu, t.cpu_warn, Some(t.cpu_crit)),
            above(Check::Memory, t.memory_warn, Some(t.memory_crit)),
            above(Check::Disk, t.disk_warn, None),
            above(Check::ProcessingTime, t.processing_seconds, None),
            above(Check::ErrorRate, t.error_rate, None),
            Rule {
                check: Check::CacheHitRate,
                warning: t.cache_hit_min,
                critical: None,
                below: true,
            },
            above(Check::IntakeAge, t.intake_age_seconds, None),
            // Any record left out is worth an alert.
            above(Check::RecordsLeftOut, 0.5, None),
        ]
    }

    /// Entering a level takes crossing its threshold; staying in it only takes not being
    /// back past the hysteresis band.
    fn breached(&self, value: f64, threshold: f64, held: bool) -> bool {
        if self.below {
            let band = if held {
                (threshold * HYSTERESIS).min(100.0 - threshold).max(0.0)
            } else {
                0.0
            };
            value < threshold + band
        } else {
            let band = if held { threshold * HYSTERESIS } else { 0.0 };
            value > threshold - band
        }
    }

    fn level(&self, value: f64, current: Level) -> Level {
        let critical = self
            .critical
            .is_some_and(|c| self.breached(value, c, current >= Level::Critical));
        if critical {
            Level::Critical
        } else if self.breached(value, self.warning, current >= Level::Warning) {
            Level::Warning
        } else {
            Level::Clear
        }
    }
}

/// What a change of level calls for.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Raised(Level),
    Cleared,
}

/// Each check's level; the monitor updates it, the reports read it.
pub struct Alerts {
    rules: [Rule; 8],
    levels: Mutex<[Level; 8]>,
}

impl Alerts {
    pub fn new(thresholds: &AlertThresholds) -> Alerts {
        Alerts {
            rules: Rule::rules(thresholds),
            levels: Mutex::new([Level::Clear; 8]),
        }
    }

    /// Each check and whether its alert is raised.
    pub fn alerts(&self) -> Vec<(Check, bool)> {
        let levels = *self.levels.lock().unwrap_or_else(|p| p.into_inner());
        Check::ALL
            .iter()
            .zip(levels)
            .map(|(&check, level)| (check, level != Level::Clear))
            .collect()
    }

    /// Applies one sample (`None`: not enough data to judge) and says what to announce.
    pub fn update(&self, values: &[(Check, Option<f64>)]) -> Vec<(Check, f64, Notice)> {
        let mut levels = self.levels.lock().unwrap_or_else(|p| p.into_inner());
        let mut notices = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let Some(value) = values
                .iter()
                .find(|(check, _)| *check == rule.check)
                .and_then(|(_, value)| *value)
            else {
                continue;
            };
            let before = levels[index];
            let after = rule.level(value, before);
            levels[index] = after;
            let notice = match (before, after) {
                (b, a) if a > b => Some(Notice::Raised(a)),
                (_, Level::Clear) if before != Level::Clear => Some(Notice::Cleared),
                // Critical back to warning: still one episode; logged only.
                _ => None,
            };
            if let Some(notice) = notice {
                notices.push((rule.check, value, notice));
            } else if after < before {
                tracing::info!(check = rule.check.name(), value, "alert eased to a warning");
            }
        }
        notices
    }

    pub fn threshold(&self, check: Check, level: Level) -> f64 {
        let rule = self.rules.iter().find(|rule| rule.check == check);
        match (rule, level) {
            (Some(rule), Level::Critical) => rule.critical.unwrap_or(rule.warning),
            (Some(rule), _) => rule.warning,
            (None, _) => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds() -> AlertThresholds {
        AlertThresholds {
            cpu_warn: 80.0,
            cpu_crit: 95.0,
            memory_warn: 80.0,
            memory_crit: 95.0,
            disk_warn: 80.0,
            processing_seconds: 15.0,
            error_rate: 10.0,
            cache_hit_min: 70.0,
            intake_age_seconds: 120.0,
        }
    }

    fn notices(monitor: &Alerts, check: Check, value: f64) -> Vec<Notice> {
        monitor
            .update(&[(check, Some(value))])
            .into_iter()
            .map(|(_, _, notice)| notice)
            .collect()
    }

    #[test]
    fn one_message_per_episode_despite_flapping() {
        let monitor = Alerts::new(&thresholds());
        assert!(notices(&monitor, Check::Cpu, 50.0).is_empty());
        assert_eq!(
            notices(&monitor, Check::Cpu, 85.0),
            [Notice::Raised(Level::Warning)]
        );
        // Around the threshold, inside the band: nothing more.
        for value in [79.0, 81.0, 75.0, 83.0, 73.0] {
            assert!(notices(&monitor, Check::Cpu, value).is_empty(), "{value}");
        }
        assert_eq!(
            notices(&monitor, Check::Cpu, 97.0),
            [Notice::Raised(Level::Critical)]
        );
        assert!(notices(&monitor, Check::Cpu, 90.0).is_empty());
        // Down to a warning: the same episode.
        assert!(notices(&monitor, Check::Cpu, 84.0).is_empty());
        assert_eq!(notices(&monitor, Check::Cpu, 60.0), [Notice::Cleared]);
        assert!(notices(&monitor, Check::Cpu, 60.0).is_empty());
        assert_eq!(monitor.alerts()[0], (Check::Cpu, false));
    }

    #[test]
    fn a_minimum_alerts_below_it_and_no_data_changes_nothing() {
        let monitor = Alerts::new(&thresholds());
        assert_eq!(
            notices(&monitor, Check::CacheHitRate, 50.0),
            [Notice::Raised(Level::Warning)]
        );
        assert!(monitor.update(&[(Check::CacheHitRate, None)]).is_empty());
        assert!(notices(&monitor, Check::CacheHitRate, 72.0).is_empty());
        assert_eq!(
            notices(&monitor, Check::CacheHitRate, 80.0),
            [Notice::Cleared]
        );
    }

    #[test]
    fn a_zero_threshold_raises_on_any_value_and_clears_at_zero() {
        let monitor = Alerts::new(&AlertThresholds {
            processing_seconds: 0.0,
            ..thresholds()
        });
        assert_eq!(
            notices(&monitor, Check::ProcessingTime, 0.2),
            [Notice::Raised(Level::Warning)]
        );
        assert_eq!(
            notices(&monitor, Check::ProcessingTime, 0.0),
            [Notice::Cleared]
        );
    }
}
