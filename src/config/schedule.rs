//! Cron schedules: parsed once, here, when the settings are read.

use chrono::Timelike;
use serde::Deserialize;
use std::time::Duration;

/// A validated cron schedule, evaluated in UTC.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Schedule {
    /// The expression with seconds (6 fields), as the scheduler takes it.
    pub expr: String,
    cron: croner::Cron,
}

impl TryFrom<String> for Schedule {
    type Error = String;

    fn try_from(expr: String) -> Result<Self, String> {
        Self::parse(&expr)
    }
}

impl Schedule {
    /// Parses a 6-field (with seconds) or 5-field cron expression.
    pub fn parse(expr: &str) -> Result<Self, String> {
        let expr = expr.split_whitespace().collect::<Vec<_>>().join(" ");
        let expr = match expr.split(' ').count() {
            5 => format!("0 {expr}"),
            6 => expr,
            n => return Err(format!("cron needs 5 or 6 fields, got {n}")),
        };
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&expr)
            .map_err(|e| format!("invalid cron expression: {}", e.to_string().to_lowercase()))?;
        Ok(Self { expr, cron })
    }

    /// The parsed expression, which the scheduler runs on as it is (not parsed again).
    pub fn cron(&self) -> &croner::Cron {
        &self.cron
    }

    /// The next firing strictly after `after`, on a whole second (croner carries the fraction
    /// of `after` over into what it finds).
    pub fn next_after(
        &self,
        after: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        let whole = after.with_nanosecond(0)?;
        self.cron.find_next_occurrence(&whole, false).ok()
    }

    /// The typical period between firings, from the next two occurrences.
    pub fn period(&self) -> Duration {
        let now = chrono::Utc::now();
        let a = self.next_after(now);
        let b = a.and_then(|a| self.next_after(a));
        match (a, b) {
            (Some(a), Some(b)) => (b - a).to_std().unwrap_or(Duration::from_secs(60)),
            _ => Duration::from_secs(60),
        }
    }
}
