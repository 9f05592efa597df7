//! Loading what the domain needs from files: the calendar with a deployment's extra year
//! files and local overrides, and the policy. The domain parses and validates; this module
//! only reads the files and says which one was wrong.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Args;
use tousu_domain::calendar::Calendar;
use tousu_domain::policy::Policy;

/// Where the calendar and the policy come from.
#[derive(Debug, Clone, Default, Args)]
pub struct DomainFiles {
    /// A national year file to add to the shipped 2024–2026 data (e.g. 2027.toml once the
    /// State Council publishes it); may be repeated.
    #[arg(long = "calendar-year", value_name = "FILE")]
    pub calendar_years: Vec<PathBuf>,
    /// A local override file (a province's extra holiday or working day); may be repeated.
    #[arg(long = "calendar-override", value_name = "FILE")]
    pub calendar_overrides: Vec<PathBuf>,
    /// A policy file overriding the rule catalogue's defaults (TOML).
    #[arg(long = "policy", value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

fn read(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

impl DomainFiles {
    /// The shipped calendar with the configured year files and overrides, validated.
    pub fn calendar(&self) -> Result<Calendar> {
        let years =
            self.calendar_years.iter().map(|path| read(path, "calendar year file")).collect::<Result<Vec<_>>>()?;
        let texts: Vec<&str> = years.iter().map(String::as_str).collect();
        let mut calendar = Calendar::builtin_with_years(&texts).context("calendar data is not valid")?;
        for path in &self.calendar_overrides {
            let text = read(path, "calendar override file")?;
            calendar = calendar
                .with_override(&text)
                .with_context(|| format!("calendar override file {} is not valid", path.display()))?;
        }
        Ok(calendar)
    }

    /// The default policy, or the configured file's.
    pub fn policy(&self) -> Result<Policy> {
        match &self.policy {
            None => Ok(Policy::default()),
            Some(path) => {
                let text = read(path, "policy file")?;
                Policy::from_toml(&text).with_context(|| format!("policy file {} is not valid", path.display()))
            }
        }
    }
}
