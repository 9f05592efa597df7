//! `tousu calendar status|show|check|load`: the holiday calendar, official and provisional
//! (interpretation 21).
//!
//! `status` and `show` ask the server running on the data directory (through its local admin
//! socket) or the server given with `--server` and an operator's `--token`; without one they
//! answer from the configuration (the shipped year files and `--calendar-year` files) and the
//! schedules loaded into the data directory's log. `check` validates a year file on its own
//! and compares it with the provisional year it would replace. `load` loads a year file into
//! a running server, which records it in the log and recomputes the provisional deadlines
//! that looked at that year.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use chrono::{Datelike, NaiveDate};
use clap::{Args, Subcommand};
use tousu_api::client::Admin;
use tousu_api::pb;
use tousu_domain::calendar::provisional::{FIRST_PROVISIONAL_YEAR, LAST_PROVISIONAL_YEAR};
use tousu_domain::calendar::{Calendar, CalendarDay, CalendarDayKind, OfficialYear, YearKind};
use tousu_domain::holiday_schedule::{STREAM, ScheduleEvent, ScheduleFact};
use tousu_store::{Direction, EventStore, StreamFrom, StreamName};
use tousu_store_embedded::{EmbeddedStore, OpenError};

use crate::config::DEFAULT_DATA_DIR;
use crate::settings::DomainFiles;

/// Which server to address: the one running on the data directory, or another by address.
#[derive(Debug, Clone, Args)]
pub struct Server {
    /// The data directory: its server, through the local admin socket, when one runs on it;
    /// else the schedules loaded into its log [default: ./data].
    #[arg(long, env = "TOUSU_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A running server (`host:port`) instead, with `--token`.
    #[arg(long, env = "TOUSU_SERVER", value_name = "ADDR")]
    server: Option<String>,
    /// An operator's token, for `--server`.
    #[arg(long, env = "TOUSU_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl Server {
    fn data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// The admin client of the server addressed, if one runs.
    async fn admin(&self) -> Result<Option<Admin>> {
        if let Some(server) = &self.server {
            let Some(token) = &self.token else { bail!("--server needs --token (an operator's token)") };
            return Ok(Some(tousu_api::client::connect_admin(server, token).await?));
        }
        Ok(crate::projections::local_admin(&self.data_dir()).await)
    }
}

/// Which calendar to report on.
#[derive(Debug, Clone, Args)]
pub struct Source {
    #[command(flatten)]
    server: Server,
    #[command(flatten)]
    files: DomainFiles,
}

/// `tousu calendar` subcommands.
#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// The years with the State Council's schedule, the provisional years, and the warning when
    /// the last official year is ending.
    Status {
        #[command(flatten)]
        source: Source,
    },
    /// One year's holidays (放假), provisional make-up rest days (补休) and adjusted working
    /// days (调休上班).
    Show {
        /// The year.
        year: i32,
        #[command(flatten)]
        source: Source,
    },
    /// Validates a year file and compares it with the provisional year it would replace.
    Check {
        /// The year file (TOML; see docs/operations.md).
        file: PathBuf,
    },
    /// Loads a year file into a running server: recorded in the log, put in force, and the
    /// provisional deadlines that looked at that year recomputed.
    Load {
        /// The year file (TOML; see docs/operations.md).
        file: PathBuf,
        #[command(flatten)]
        server: Server,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the runtime")
}

pub fn run(command: CalendarCommand) -> Result<()> {
    match command {
        CalendarCommand::Status { source } => status(&source),
        CalendarCommand::Show { year, source } => show(year, &source),
        CalendarCommand::Check { file } => check(&file),
        CalendarCommand::Load { file, server } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read calendar year file {}", file.display()))?;
            let runtime = runtime()?;
            runtime.block_on(async {
                let Some(mut admin) = server.admin().await? else {
                    bail!(
                        "no server runs on {}: start it (the file is loaded into its log), or give the file at \
                         start with --calendar-year",
                        server.data_dir().display()
                    );
                };
                let request_id = format!("calendar-load-{}", file.display());
                let answer = admin
                    .load_calendar_year(pb::LoadCalendarYearRequest { request_id, text })
                    .await
                    .map_err(|status| anyhow::anyhow!("the server refused {}: {}", file.display(), status.message()))?
                    .into_inner();
                if answer.recorded {
                    println!(
                        "{}: the official schedule (version {}) is recorded and in force; the deadline reactor \
                         recomputes the provisional deadlines that looked at {} at its next pass",
                        answer.year, answer.version, answer.year
                    );
                } else {
                    println!(
                        "{}: this schedule (version {}) was already in force; nothing recorded",
                        answer.year, answer.version
                    );
                }
                Ok(())
            })
        }
    }
}

/// The calendar without a server: the configuration, then the schedules the data directory's
/// log records (the log is read only when no server holds it).
fn offline_calendar(source: &Source) -> Result<(Calendar, String)> {
    let mut calendar = source.files.calendar()?;
    let data_dir = source.server.data_dir();
    let events = data_dir.join("events");
    if !events.exists() {
        return Ok((calendar, "the configuration (no log in the data directory)".to_owned()));
    }
    let store = match EmbeddedStore::open(&events) {
        Ok(store) => store,
        Err(OpenError::Locked { .. }) => {
            return Ok((
                calendar,
                "the configuration (the log is held by a server without its admin socket)".to_owned(),
            ));
        }
        Err(error) => return Err(error).with_context(|| format!("cannot open the event log in {}", events.display())),
    };
    let runtime = runtime()?;
    let stream = StreamName::new(STREAM).context("the calendar stream's name")?;
    let recorded = runtime.block_on(store.read_stream(&stream, Direction::Forwards, StreamFrom::Start, 10_000))?;
    for event in recorded {
        let event: ScheduleEvent = serde_json::from_slice(&event.event.payload)
            .with_context(|| format!("event {} of the calendar stream does not decode", event.revision))?;
        let ScheduleFact::OfficialYearLoaded { year, text, .. } = event.fact else { continue };
        let official = OfficialYear::read(&text).with_context(|| format!("the schedule of {year} in the log"))?;
        if calendar.year_version(year) == Some(official.version()) {
            continue;
        }
        calendar = calendar
            .with_official_year(official)
            .with_context(|| format!("the schedule of {year} in the log contradicts the configured calendar"))?;
    }
    runtime.block_on(store.close()).context("the event log did not close cleanly")?;
    Ok((calendar, format!("the configuration and the log in {}", data_dir.display())))
}

fn status(source: &Source) -> Result<()> {
    let runtime = runtime()?;
    let answer = runtime.block_on(async {
        match source.server.admin().await? {
            Some(mut admin) => Ok::<_, anyhow::Error>(Some(
                admin
                    .get_calendar_status(pb::GetCalendarStatusRequest {})
                    .await
                    .map_err(|status| anyhow::anyhow!("the server refused: {}", status.message()))?
                    .into_inner(),
            )),
            None => Ok(None),
        }
    })?;
    let status = match answer {
        Some(status) => (status, "the running server".to_owned()),
        None => {
            let (calendar, from) = offline_calendar(source)?;
            let today = chrono::Utc::now().with_timezone(&tousu_domain::calendar::shanghai()).date_naive();
            let warn_days = source.files.policy()?.calendar.warn_days_before_last_official_day;
            let warning = calendar.schedule_warning(today, warn_days);
            let status = pb::CalendarStatus {
                official_years: calendar
                    .years()
                    .filter_map(|year| calendar.year_status(year))
                    .map(|status| pb::CalendarYear {
                        year: status.year,
                        kind: status.kind.as_str().to_owned(),
                        version: status.version,
                        sources: status.sources,
                    })
                    .collect(),
                last_official_year: calendar.last_official_year().unwrap_or(0),
                provisional_from: FIRST_PROVISIONAL_YEAR,
                provisional_to: LAST_PROVISIONAL_YEAR,
                warning: warning.map(|warning| warning.to_string()).unwrap_or_default(),
                warning_days_left: warning.map_or(0, |warning| warning.days_left),
            };
            (status, from)
        }
    };
    let (status, from) = status;
    println!("calendar of {from}");
    println!("official years (the State Council's schedule):");
    for year in &status.official_years {
        println!("  {}  {:<24} {}", year.year, year.version, year.sources.join("; "));
    }
    println!(
        "provisional years (暂定): every other year from {} to {}, computed from the statutory holidays of the \
         全国年节及纪念日放假办法 as in force since 2025, with make-up days for those on a weekend",
        status.provisional_from, status.provisional_to
    );
    if status.warning.is_empty() {
        println!("no warning: the last official year is {}", status.last_official_year);
    } else {
        println!("warning: {}", status.warning);
    }
    Ok(())
}

fn show(year: i32, source: &Source) -> Result<()> {
    let runtime = runtime()?;
    let answer = runtime.block_on(async {
        match source.server.admin().await? {
            Some(mut admin) => Ok::<_, anyhow::Error>(Some(
                admin
                    .get_calendar_year(pb::GetCalendarYearRequest { year })
                    .await
                    .map_err(|status| anyhow::anyhow!("the server refused: {}", status.message()))?
                    .into_inner(),
            )),
            None => Ok(None),
        }
    })?;
    let (kind, version, sources, days) = match answer {
        Some(answer) => {
            let year_status = answer.year.unwrap_or_default();
            let days = answer
                .days
                .into_iter()
                .map(|day| (day.date, day.kind, day.name))
                .collect::<Vec<(String, String, String)>>();
            (year_status.kind, year_status.version, year_status.sources, days)
        }
        None => {
            let (calendar, _) = offline_calendar(source)?;
            let (Some(status), Some(days)) = (calendar.year_status(year), calendar.days_of_year(year)) else {
                bail!(
                    "{year} has no official schedule and lies outside the provisional calendar's \
                     {FIRST_PROVISIONAL_YEAR}–{LAST_PROVISIONAL_YEAR}"
                );
            };
            let days =
                days.into_iter().map(|day| (day.date.to_string(), day.kind.label_zh().to_owned(), day.name)).collect();
            (status.kind.as_str().to_owned(), status.version, status.sources, days)
        }
    };
    let label = if kind == YearKind::Provisional.as_str() { "provisional (暂定)" } else { "official" };
    println!("{year}: {label}, version {version}");
    for source in &sources {
        println!("  source: {source}");
    }
    for (date, kind, name) in days {
        let weekday = date.parse::<NaiveDate>().map(|date| weekday_zh(date.weekday())).unwrap_or("");
        println!("  {date} {weekday}  {kind:<4}  {name}");
    }
    Ok(())
}

fn weekday_zh(weekday: chrono::Weekday) -> &'static str {
    match weekday {
        chrono::Weekday::Mon => "周一",
        chrono::Weekday::Tue => "周二",
        chrono::Weekday::Wed => "周三",
        chrono::Weekday::Thu => "周四",
        chrono::Weekday::Fri => "周五",
        chrono::Weekday::Sat => "周六",
        chrono::Weekday::Sun => "周日",
    }
}

/// Validates a year file and prints how it differs from the provisional year: the rest days
/// only it has (the notice's longer blocks), those only the provisional calendar has (make-up
/// days the notice placed elsewhere), and its adjusted working days.
fn check(file: &std::path::Path) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read calendar year file {}", file.display()))?;
    let official = OfficialYear::read(&text).with_context(|| format!("{} is not a valid year file", file.display()))?;
    let year = official.year();
    println!("{}: a valid year file for {year}, version {}", file.display(), official.version());
    println!("  source: {}", official.source());
    let provisional_calendar = Calendar::builtin().context("the shipped calendar is not valid")?;
    let Some(provisional_days) = provisional_calendar
        .days_of_year(year)
        .filter(|_| provisional_calendar.year_kind(year) == Some(YearKind::Provisional))
    else {
        println!("  (no provisional year to compare with: {year} is shipped, or outside 2025–2100)");
        return Ok(());
    };
    let shipped = Calendar::builtin().context("the shipped calendar is not valid")?;
    let with_file = shipped.with_official_year(official).context("the file cannot replace the provisional year")?;
    let official_days = with_file.days_of_year(year).unwrap_or_default();
    let rest = |days: &[CalendarDay]| -> Vec<NaiveDate> {
        days.iter().filter(|day| day.kind != CalendarDayKind::AdjustedWorkingDay).map(|day| day.date).collect()
    };
    let (official_rest, provisional_rest) = (rest(&official_days), rest(&provisional_days));
    let name_of = |days: &[CalendarDay], date: NaiveDate| {
        days.iter().find(|day| day.date == date).map(|day| day.name.clone()).unwrap_or_default()
    };
    println!("compared with the provisional {year} (statutory days and make-up days of the 放假办法):");
    let mut differences = 0;
    for date in official_rest.iter().filter(|date| !provisional_rest.contains(date)) {
        // Weekend days inside a notice's block rest provisionally too; only working days count.
        if provisional_calendar.is_working_day(*date).unwrap_or(false) {
            println!(
                "  + {date} {} rests in the file ({})",
                weekday_zh(date.weekday()),
                name_of(&official_days, *date)
            );
            differences += 1;
        }
    }
    for date in provisional_rest.iter().filter(|date| with_file.is_working_day(**date).unwrap_or(false)) {
        println!(
            "  - {date} {} rests provisionally ({}), works in the file",
            weekday_zh(date.weekday()),
            name_of(&provisional_days, *date)
        );
        differences += 1;
    }
    for day in official_days.iter().filter(|day| day.kind == CalendarDayKind::AdjustedWorkingDay) {
        println!("  * {} {} is worked in exchange (调休上班, {})", day.date, weekday_zh(day.date.weekday()), day.name);
        differences += 1;
    }
    if differences == 0 {
        println!("  no difference: deadlines computed provisionally keep their due instants");
    } else {
        println!(
            "  {differences} difference(s): provisional deadlines that looked at these days get new due instants once \
             the file is loaded"
        );
    }
    Ok(())
}
