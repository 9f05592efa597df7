//! `tousu.v1.ReadModels`: the query RPCs of the read models (watchlist, weekly summary,
//! overdue obligations, dashboard, bulletin), each answered from the live read model in one
//! read transaction, or, with `as_of`, from a replay of the log to that instant.
//!
//! A refusal names the rule the read model serves (`crate::rules`) where it names none of its
//! own.
//!
//! Who reads which read model is decided by [`tousu_app::Principal`] (`check_read_watchlist`,
//! `check_read_weekly_summary`, `overdue_restriction`, `check_read_shared_reports`); the
//! reasons are in `proto/tousu/v1/read_models.proto`. The role is checked before anything in
//! the request is looked at.
//!
//! Replays for `as_of` read the whole log up to the instant and hold a private copy of the
//! read model in memory, so they run one at a time: a second one waits for the first, within
//! its call's deadline. The permit travels with the replay's blocking task, so a call that
//! gives up does not let another replay start beside the one still running for it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};
use tousu_app::{App, AppError, Principal};
use tousu_domain::bulletin_approval::DraftAnchor;
use tousu_domain::calendar::Calendar;
use tousu_domain::deadline::EscalationLevel;
use tousu_domain::limits::{Echo, FIRST_YEAR, LAST_YEAR, PLACE_MAX_CHARS};
use tousu_domain::policy::Policy;
use tousu_projection::{SqlError, SqlTx};
use tousu_read_bulletin::BulletinDraft;
use tousu_read_overdue::{OverdueFilter, ReferralFilter, ReferralStatus};
use tousu_read_watchlist::{Flag, Scope, WatchlistFilter};
use tousu_read_weekly_summary::signing::AnchorSigner;
use tousu_store::EventStore;

use crate::auth::principal;
use crate::pb::read_models_server::ReadModels as ReadModelsRpc;
use crate::read::ReadModels;
use crate::read_views;
use crate::status::{invalid, naming_rule_of, to_status};
use crate::watchlist_cache::{CachedWatchlist, WatchlistCache, WatchlistKey};
use crate::{convert, own_writes, pb};

/// The default page size of a list.
const DEFAULT_PAGE: usize = 50;
/// The largest page size of a list.
const MAX_PAGE: usize = 500;

/// How long a live query waits for its read model to catch up with the log, so that a client
/// sees its own writes (as `Queries.ListComplaints` does).
const CATCH_UP: Duration = Duration::from_secs(2);

/// The read-model service.
pub struct ReadModelService<S> {
    app: Arc<App<S>>,
    read_models: Arc<ReadModels>,
    policy: Arc<Policy>,
    watchlist_cache: WatchlistCache,
    replays: Arc<Semaphore>,
    anchor_signer: Option<Arc<AnchorSigner>>,
}

impl<S> ReadModelService<S> {
    /// A service over the application (its clock, calendar and policy) and the read models.
    pub fn new(app: Arc<App<S>>, read_models: Arc<ReadModels>) -> Self
    where
        S: EventStore + 'static,
    {
        let policy = Arc::new(app.domain().policy.clone());
        ReadModelService {
            app,
            read_models,
            policy,
            watchlist_cache: WatchlistCache::default(),
            replays: Arc::new(Semaphore::new(1)),
            anchor_signer: None,
        }
    }

    /// The service signing the history anchor of every settled week it serves with `signer`
    /// (none: anchors are served unsigned).
    pub fn with_anchor_signer(self, signer: Option<Arc<AnchorSigner>>) -> Self {
        ReadModelService { anchor_signer: signer, ..self }
    }
}

/// The offset and size of the page a request asks for.
fn page(page_size: u32, page_token: &str) -> Result<(usize, usize), Status> {
    let size = match usize::try_from(page_size).unwrap_or(usize::MAX) {
        0 => DEFAULT_PAGE,
        size if size > MAX_PAGE => return Err(invalid("page_size", format!("at most {MAX_PAGE}"))),
        size => size,
    };
    let offset = if page_token.is_empty() {
        0
    } else {
        page_token.parse::<usize>().map_err(|_| invalid("page_token", "is not a token this service issued"))?
    };
    Ok((offset, size))
}

/// The token of the page after `offset + shown` of `total`; empty on the last page.
fn next_page_token(offset: usize, shown: usize, total: u64) -> String {
    let end = offset + shown;
    if (end as u64) < total { end.to_string() } else { String::new() }
}

/// The `as_of` instant of a request: never after the server's clock, which records the log.
fn as_of(principal: &Principal, value: Option<prost_types::Timestamp>) -> Result<Option<DateTime<Utc>>, Status> {
    let Some(instant) = convert::optional_instant("as_of", value)? else { return Ok(None) };
    // Replays run one at a time: only those who audit the history may ask for one.
    principal.check_replay().map_err(to_status)?;
    let instant = instant.to_utc();
    if instant > Utc::now() {
        return Err(invalid("as_of", "is after the server's clock; leave it unset for the live read model"));
    }
    Ok(Some(instant))
}

fn optional_flag(field: &'static str, value: i32) -> Result<Option<Flag>, Status> {
    match pb::WatchlistFlag::try_from(value) {
        Ok(pb::WatchlistFlag::Unspecified) => Ok(None),
        Ok(pb::WatchlistFlag::ExitEligible) => Ok(Some(Flag::ExitEligible)),
        Ok(pb::WatchlistFlag::DowngradeDue) => Ok(Some(Flag::DowngradeDue)),
        Ok(pb::WatchlistFlag::GradeReviewDue) => Ok(Some(Flag::GradeReviewDue)),
        Ok(pb::WatchlistFlag::KeySupervision) => Ok(Some(Flag::KeySupervision)),
        Err(_) => Err(invalid(field, format!("{value} is not a known value"))),
    }
}

fn scope(field: &'static str, value: i32) -> Result<Scope, Status> {
    match pb::WatchlistScope::try_from(value) {
        Ok(pb::WatchlistScope::Unspecified | pb::WatchlistScope::Flagged) => Ok(Scope::Flagged),
        Ok(pb::WatchlistScope::Every) => Ok(Scope::Every),
        Err(_) => Err(invalid(field, format!("{value} is not a known value"))),
    }
}

fn optional_level(field: &'static str, value: i32) -> Result<Option<EscalationLevel>, Status> {
    match pb::EscalationLevel::try_from(value) {
        Ok(pb::EscalationLevel::Unspecified) => Ok(None),
        Ok(pb::EscalationLevel::Reminder) => Ok(Some(EscalationLevel::Reminder)),
        Ok(pb::EscalationLevel::DistrictLeadership) => Ok(Some(EscalationLevel::DistrictLeadership)),
        Ok(pb::EscalationLevel::DisciplineOrgan) => Ok(Some(EscalationLevel::DisciplineOrgan)),
        Err(_) => Err(invalid(field, format!("{value} is not a known value"))),
    }
}

fn optional_verdict(field: &'static str, value: i32) -> Result<Option<pb::BulletinVerdict>, Status> {
    match pb::BulletinVerdict::try_from(value) {
        Ok(pb::BulletinVerdict::Unspecified) => Ok(None),
        Ok(verdict) => Ok(Some(verdict)),
        Err(_) => Err(invalid(field, format!("{value} is not a known value"))),
    }
}

/// A week's summary as the read model answers it (interpretation 26): as issued to the
/// commission, or computed when asked.
enum WeekAnswer {
    Issued(Box<tousu_read_weekly_summary::IssuedSummary>),
    Computed(tousu_read_weekly_summary::WeeklySummary),
}

/// The first day of a month written YYYY-MM.
fn month(field: &'static str, text: &str) -> Result<NaiveDate, Status> {
    let well_formed = text.len() == 7 && text.as_bytes()[4] == b'-';
    well_formed
        .then(|| NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| invalid(field, format!("{} is not a month YYYY-MM", Echo(text))))
        .and_then(|first| {
            if (FIRST_YEAR..=LAST_YEAR).contains(&first.year()) {
                Ok(first)
            } else {
                Err(invalid(field, format!("{text} lies outside the years {FIRST_YEAR} to {LAST_YEAR}")))
            }
        })
}

impl<S: EventStore + 'static> ReadModelService<S> {
    /// Runs `query` on read model `name`: live (after waiting briefly for the model to catch
    /// up with the log), or as of an instant by a replay. Answers with the snapshot it read.
    async fn run<T: Send + 'static>(
        &self,
        name: &'static str,
        as_of: Option<DateTime<Utc>>,
        query: impl FnOnce(&mut dyn SqlTx, &str) -> Result<T, SqlError> + Send + 'static,
    ) -> Result<(T, pb::ReadModelSnapshot), Status> {
        match as_of {
            None => {
                let head = self.app.store().head().await.map_err(|error| to_status(AppError::from(error)))?;
                if let Some(head) = head {
                    self.read_models.wait_for(name, head.0, CATCH_UP).await;
                }
                let (answer, checkpoint) = self.read_models.query(name, query).await?;
                Ok((answer, read_views::snapshot(name, &checkpoint, false)))
            }
            Some(until) => {
                let permit = self
                    .replays
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Status::unavailable("the server is shutting down"))?;
                let (answer, checkpoint) = self
                    .read_models
                    .query_as_of(name, until, move |tx, prefix| {
                        let answer = query(tx, prefix);
                        drop(permit);
                        answer
                    })
                    .await?;
                Ok((answer, read_views::snapshot(name, &checkpoint, true)))
            }
        }
    }

    /// The evaluation instant: the one asked for, else `as_of`, else now.
    fn instant(&self, at: Option<DateTime<FixedOffset>>, as_of: Option<DateTime<Utc>>) -> DateTime<FixedOffset> {
        at.or(as_of.map(|as_of| as_of.with_timezone(&tousu_domain::calendar::shanghai())))
            .unwrap_or_else(|| self.app.now())
    }

    /// The whole watchlist for a filter at the default instant, from the cache unless the
    /// cached list predates the caller's own writes (`own_writes`: the position they reached).
    async fn cached_watchlist(
        &self,
        key: WatchlistKey,
        own_writes: Option<u64>,
    ) -> Result<(Arc<CachedWatchlist>, bool), Status> {
        let filter = WatchlistFilter {
            district: key.district.clone(),
            flag: key.flag,
            scope: if key.every { Scope::Every } else { Scope::Flagged },
            offset: 0,
            limit: None,
        };
        let policy = self.policy.clone();
        let at = self.app.now();
        self.watchlist_cache
            .get(key, own_writes, || async move {
                let (page, snapshot) = self
                    .run(tousu_read_watchlist::NAME, None, move |tx, prefix| {
                        tousu_read_watchlist::query(tx, prefix, at, &filter, &policy)
                    })
                    .await?;
                Ok(CachedWatchlist {
                    at: convert::timestamp(page.at),
                    entries: page.entries.iter().map(read_views::watchlist_entry).collect(),
                    snapshot,
                })
            })
            .await
    }
}

#[tonic::async_trait]
impl<S: EventStore + 'static> ReadModelsRpc for ReadModelService<S> {
    async fn get_watchlist(
        &self,
        request: Request<pb::GetWatchlistRequest>,
    ) -> Result<Response<pb::GetWatchlistResponse>, Status> {
        naming_rule_of::<pb::GetWatchlistRequest, _>(self.watchlist(request)).await
    }

    async fn get_watchlist_company(
        &self,
        request: Request<pb::GetWatchlistCompanyRequest>,
    ) -> Result<Response<pb::WatchlistCompany>, Status> {
        naming_rule_of::<pb::GetWatchlistCompanyRequest, _>(self.watchlist_company(request)).await
    }

    async fn get_weekly_summary(
        &self,
        request: Request<pb::GetWeeklySummaryRequest>,
    ) -> Result<Response<pb::WeeklySummary>, Status> {
        naming_rule_of::<pb::GetWeeklySummaryRequest, _>(self.weekly_summary(request)).await
    }

    async fn list_weeks(
        &self,
        request: Request<pb::ListWeeksRequest>,
    ) -> Result<Response<pb::ListWeeksResponse>, Status> {
        naming_rule_of::<pb::ListWeeksRequest, _>(self.weeks(request)).await
    }

    async fn list_overdue(
        &self,
        request: Request<pb::ListOverdueRequest>,
    ) -> Result<Response<pb::ListOverdueResponse>, Status> {
        naming_rule_of::<pb::ListOverdueRequest, _>(self.overdue(request)).await
    }

    async fn list_referrals(
        &self,
        request: Request<pb::ListReferralsRequest>,
    ) -> Result<Response<pb::ListReferralsResponse>, Status> {
        naming_rule_of::<pb::ListReferralsRequest, _>(self.referrals(request)).await
    }

    async fn get_dashboard(
        &self,
        request: Request<pb::GetDashboardRequest>,
    ) -> Result<Response<pb::Dashboard>, Status> {
        naming_rule_of::<pb::GetDashboardRequest, _>(self.dashboard(request)).await
    }

    async fn get_bulletin(&self, request: Request<pb::GetBulletinRequest>) -> Result<Response<pb::Bulletin>, Status> {
        naming_rule_of::<pb::GetBulletinRequest, _>(self.bulletin(request)).await
    }

    async fn approve_bulletin(
        &self,
        request: Request<pb::ApproveBulletinRequest>,
    ) -> Result<Response<pb::ApprovedBulletin>, Status> {
        naming_rule_of::<pb::ApproveBulletinRequest, _>(self.approve(request)).await
    }

    async fn get_approved_bulletin(
        &self,
        request: Request<pb::GetApprovedBulletinRequest>,
    ) -> Result<Response<pb::ApprovedBulletin>, Status> {
        naming_rule_of::<pb::GetApprovedBulletinRequest, _>(self.approved(request)).await
    }
}

/// The RPCs, each refusing with no rule of its own; [`ReadModelsRpc`] names the RPC's.
impl<S: EventStore + 'static> ReadModelService<S> {
    async fn watchlist(
        &self,
        request: Request<pb::GetWatchlistRequest>,
    ) -> Result<Response<pb::GetWatchlistResponse>, Status> {
        let principal = principal(&request)?;
        principal.check_read_watchlist().map_err(to_status)?;
        let own_writes = own_writes::position(&request, &principal);
        let m = request.into_inner();
        let district = convert::text_filter("district", m.district, PLACE_MAX_CHARS)?;
        let flag = optional_flag("flag", m.flag)?;
        let scope = scope("scope", m.scope)?;
        let (offset, size) = page(m.page_size, &m.page_token)?;
        let at = convert::optional_instant("at", m.at)?;
        let as_of = as_of(&principal, m.as_of)?;
        if at.is_none() && as_of.is_none() {
            let key = WatchlistKey { district, flag, every: scope == Scope::Every };
            let (list, cached) = self.cached_watchlist(key, own_writes).await?;
            let entries: Vec<pb::WatchlistEntry> = list.entries.iter().skip(offset).take(size).cloned().collect();
            let total = list.entries.len() as u64;
            return Ok(Response::new(pb::GetWatchlistResponse {
                at: Some(list.at),
                next_page_token: next_page_token(offset, entries.len(), total),
                entries,
                total,
                snapshot: Some(pb::ReadModelSnapshot { cached, ..list.snapshot.clone() }),
            }));
        }
        let at = self.instant(at, as_of);
        let filter = WatchlistFilter { district, flag, scope, offset, limit: Some(size) };
        let policy = self.policy.clone();
        let (page, snapshot) = self
            .run(tousu_read_watchlist::NAME, as_of, move |tx, prefix| {
                tousu_read_watchlist::query(tx, prefix, at, &filter, &policy)
            })
            .await?;
        Ok(Response::new(pb::GetWatchlistResponse {
            at: Some(convert::timestamp(page.at)),
            next_page_token: next_page_token(offset, page.entries.len(), page.total as u64),
            entries: page.entries.iter().map(read_views::watchlist_entry).collect(),
            total: page.total as u64,
            snapshot: Some(snapshot),
        }))
    }

    async fn watchlist_company(
        &self,
        request: Request<pb::GetWatchlistCompanyRequest>,
    ) -> Result<Response<pb::WatchlistCompany>, Status> {
        let principal = principal(&request)?;
        principal.check_read_watchlist().map_err(to_status)?;
        let m = request.into_inner();
        let uscc = convert::uscc("uscc", &m.uscc)?;
        let at = convert::optional_instant("at", m.at)?;
        let as_of = as_of(&principal, m.as_of)?;
        let at = self.instant(at, as_of);
        let policy = self.policy.clone();
        let code = uscc.to_string();
        let (detail, snapshot) = self
            .run(tousu_read_watchlist::NAME, as_of, move |tx, prefix| {
                tousu_read_watchlist::company(tx, prefix, &code, at, &policy)
            })
            .await?;
        let detail = detail.ok_or_else(|| to_status(AppError::NotFound { what: "company", id: uscc.to_string() }))?;
        Ok(Response::new(read_views::watchlist_company(&detail, at, snapshot)))
    }

    async fn weekly_summary(
        &self,
        request: Request<pb::GetWeeklySummaryRequest>,
    ) -> Result<Response<pb::WeeklySummary>, Status> {
        let principal = principal(&request)?;
        principal.check_read_weekly_summary().map_err(to_status)?;
        let m = request.into_inner();
        let week = convert::date("week_start", &m.week_start)?;
        let district = convert::text_filter("district", m.district, PLACE_MAX_CHARS)?;
        let at = convert::optional_instant("at", m.at)?;
        let as_of = as_of(&principal, m.as_of)?;
        // Interpretation 26: a past week's city-wide summary, once issued to the commission, is
        // answered as issued (replayed with `as_of`, as issued by then); any other is computed.
        // One query of the read model (one replay with `as_of`) answers either.
        let at = self.instant(at, as_of);
        let (answer, snapshot) = self
            .run(tousu_read_weekly_summary::NAME, as_of, move |tx, prefix| {
                if district.is_none() {
                    let monday = week - chrono::TimeDelta::days(i64::from(week.weekday().num_days_from_monday()));
                    if let Some(issued) = tousu_read_weekly_summary::issued_week(tx, prefix, monday)? {
                        return Ok(WeekAnswer::Issued(Box::new(issued)));
                    }
                }
                tousu_read_weekly_summary::week(tx, prefix, week, district.as_deref(), at).map(WeekAnswer::Computed)
            })
            .await?;
        let summary = match answer {
            WeekAnswer::Computed(summary) => summary,
            WeekAnswer::Issued(issued) => {
                let summary: tousu_read_weekly_summary::WeeklySummary = serde_json::from_value(issued.summary.clone())
                    .map_err(|error| {
                        Status::internal(format!("the issued summary of {week} does not decode: {error}"))
                    })?;
                let signer = self.anchor_signer.as_deref();
                return Ok(Response::new(read_views::issued_weekly_summary(&summary, &issued, snapshot, signer)));
            }
        };
        // A week's anchor is signed once the week is over by the clock that records the log
        // (and, replayed, before the instant replayed to), not merely by the `at` a client asks
        // about: a signature must never cover a week that events may still join.
        let over = summary.week_end.to_utc() <= as_of.unwrap_or_else(Utc::now);
        let signer = self.anchor_signer.as_deref().filter(|_| over);
        Ok(Response::new(read_views::weekly_summary(&summary, snapshot, signer)))
    }

    async fn weeks(&self, request: Request<pb::ListWeeksRequest>) -> Result<Response<pb::ListWeeksResponse>, Status> {
        let principal = principal(&request)?;
        principal.check_read_weekly_summary().map_err(to_status)?;
        let m = request.into_inner();
        let district = convert::text_filter("district", m.district, PLACE_MAX_CHARS)?;
        let as_of = as_of(&principal, m.as_of)?;
        let (weeks, snapshot) = self
            .run(tousu_read_weekly_summary::NAME, as_of, move |tx, prefix| {
                tousu_read_weekly_summary::weeks(tx, prefix, district.as_deref())
            })
            .await?;
        Ok(Response::new(pb::ListWeeksResponse {
            week_starts: weeks.into_iter().map(read_views::week_start).collect(),
            snapshot: Some(snapshot),
        }))
    }

    async fn overdue(
        &self,
        request: Request<pb::ListOverdueRequest>,
    ) -> Result<Response<pb::ListOverdueResponse>, Status> {
        let principal = principal(&request)?;
        let restriction = principal.overdue_restriction().map_err(to_status)?;
        let m = request.into_inner();
        let mut body = convert::optional_body("body", m.body)?;
        // Handlers and street offices read what their own body owes, and nothing else.
        if let Some(own) = restriction {
            if body.is_some_and(|asked| asked != own) {
                return Err(to_status(AppError::PermissionDenied {
                    role: principal.role,
                    action: format!("read the overdue obligations of another body than {own}"),
                }));
            }
            body = Some(own);
        }
        let level = optional_level("level", m.level)?;
        let district = convert::text_filter("district", m.district, PLACE_MAX_CHARS)?;
        let (offset, size) = page(m.page_size, &m.page_token)?;
        let at = convert::optional_instant("at", m.at)?;
        let as_of = as_of(&principal, m.as_of)?;
        let at = self.instant(at, as_of);
        let filter = OverdueFilter { body, level, district };
        let (calendar, policy): (Arc<Calendar>, _) = (self.app.calendar(), self.policy.clone());
        let ((rows, total), snapshot) = self
            .run(tousu_read_overdue::NAME, as_of, move |tx, prefix| {
                tousu_read_overdue::overdue(tx, prefix, at, &filter, &calendar, &policy, offset as u64, size as u64)
            })
            .await?;
        Ok(Response::new(pb::ListOverdueResponse {
            at: Some(convert::timestamp(at)),
            next_page_token: next_page_token(offset, rows.len(), total),
            obligations: rows.iter().map(read_views::overdue_obligation).collect(),
            total,
            snapshot: Some(snapshot),
        }))
    }

    /// ACC-2, interpretation 9: the recommendations to refer and their decisions.
    async fn referrals(
        &self,
        request: Request<pb::ListReferralsRequest>,
    ) -> Result<Response<pb::ListReferralsResponse>, Status> {
        let principal = principal(&request)?;
        principal.check_read_referrals().map_err(to_status)?;
        let m = request.into_inner();
        let status = match pb::ReferralStatus::try_from(m.status) {
            Ok(pb::ReferralStatus::Unspecified) => None,
            Ok(pb::ReferralStatus::Pending) => Some(ReferralStatus::Pending),
            Ok(pb::ReferralStatus::Referred) => Some(ReferralStatus::Referred),
            Ok(pb::ReferralStatus::Dismissed) => Some(ReferralStatus::Dismissed),
            Err(_) => return Err(invalid("status", format!("{} is not a known value", m.status))),
        };
        let body = convert::optional_body("body", m.body)?;
        let as_of = as_of(&principal, m.as_of)?;
        let filter = ReferralFilter { status, body };
        let (rows, snapshot) = self
            .run(tousu_read_overdue::NAME, as_of, move |tx, prefix| tousu_read_overdue::referrals(tx, prefix, &filter))
            .await?;
        let count = |wanted: ReferralStatus| rows.iter().filter(|row| row.status == wanted).count() as u64;
        Ok(Response::new(pb::ListReferralsResponse {
            pending: count(ReferralStatus::Pending),
            referred: count(ReferralStatus::Referred),
            dismissed: count(ReferralStatus::Dismissed),
            referrals: rows.iter().map(read_views::referral).collect(),
            snapshot: Some(snapshot),
        }))
    }

    async fn dashboard(&self, request: Request<pb::GetDashboardRequest>) -> Result<Response<pb::Dashboard>, Status> {
        let principal = principal(&request)?;
        principal.check_read_shared_reports().map_err(to_status)?;
        let m = request.into_inner();
        let at = convert::optional_instant("at", m.at)?;
        let as_of = as_of(&principal, m.as_of)?;
        let at = self.instant(at, as_of);
        let (dashboard, snapshot) = self
            .run(tousu_read_leads::NAME, as_of, move |tx, prefix| tousu_read_leads::dashboard(tx, prefix, at))
            .await?;
        Ok(Response::new(read_views::dashboard(&dashboard, snapshot)))
    }

    async fn bulletin(&self, request: Request<pb::GetBulletinRequest>) -> Result<Response<pb::Bulletin>, Status> {
        let principal = principal(&request)?;
        principal.check_read_shared_reports().map_err(to_status)?;
        let m = request.into_inner();
        let first = month("month", &m.month)?;
        let verdict = optional_verdict("verdict", m.verdict)?;
        let (offset, size) = page(m.page_size, &m.page_token)?;
        let as_of = as_of(&principal, m.as_of)?;
        let (calendar, policy): (Arc<Calendar>, _) = (self.app.calendar(), self.policy.clone());
        let (entries, snapshot) = self
            .run(tousu_read_bulletin::NAME, as_of, move |tx, prefix| {
                tousu_read_bulletin::month(tx, prefix, first, &policy, &calendar)
            })
            .await?;
        let matching: Vec<&tousu_read_bulletin::BulletinEntry> = entries
            .iter()
            .filter(|entry| verdict.is_none_or(|verdict| read_views::verdict_to_pb(&entry.verdict) == verdict))
            .collect();
        let total = matching.len() as u64;
        let page: Vec<pb::BulletinEntry> =
            matching.into_iter().skip(offset).take(size).map(read_views::bulletin_entry).collect();
        let approved = self.app.approved_bulletins().await.map_err(to_status)?.months.contains_key(&first);
        Ok(Response::new(pb::Bulletin {
            approved,
            month: first.format("%Y-%m").to_string(),
            next_page_token: next_page_token(offset, page.len(), total),
            entries: page,
            total,
            criteria: Some(read_views::bulletin_criteria(&self.policy.bulletin)),
            snapshot: Some(snapshot),
        }))
    }
}

/// PUB-1, interpretation 23: approving a month's bulletin, and reading it as approved.
impl<S: EventStore + 'static> ReadModelService<S> {
    async fn approve(
        &self,
        request: Request<pb::ApproveBulletinRequest>,
    ) -> Result<Response<pb::ApprovedBulletin>, Status> {
        let principal = principal(&request)?;
        principal.check_approve_bulletin().map_err(to_status)?;
        let m = request.get_ref().clone();
        let request_id = convert::request_id(&m.request_id)?;
        let first = month("month", &m.month)?;
        // The draft as it stands, and the history anchor of the log the read models have
        // applied: the running anchor of the latest week, which covers every event so far.
        let (calendar, policy): (Arc<Calendar>, _) = (self.app.calendar(), self.policy.clone());
        let criteria = policy.bulletin.clone();
        let (entries, _) = self
            .run(tousu_read_bulletin::NAME, None, move |tx, prefix| {
                tousu_read_bulletin::month(tx, prefix, first, &policy, &calendar)
            })
            .await?;
        let now = self.app.now();
        let (anchor, _) = self
            .run(tousu_read_weekly_summary::NAME, None, move |tx, prefix| {
                tousu_read_weekly_summary::latest_anchor(tx, prefix, now)
            })
            .await?;
        let anchor = anchor.map(|anchor| DraftAnchor {
            position: anchor.position,
            events: anchor.events,
            sha256: anchor.sha256,
        });
        let draft = serde_json::to_value(BulletinDraft { entries, criteria })
            .map_err(|error| Status::internal(format!("the bulletin does not serialise: {error}")))?;
        let written = self
            .app
            .approve_bulletin(&principal, &request_id, first, draft, anchor, m.note)
            .await
            .map_err(to_status)?;
        own_writes::record(&request, &principal, written.position);
        self.approved_month(first).await
    }

    async fn approved(
        &self,
        request: Request<pb::GetApprovedBulletinRequest>,
    ) -> Result<Response<pb::ApprovedBulletin>, Status> {
        let principal = principal(&request)?;
        principal.check_read_shared_reports().map_err(to_status)?;
        let first = month("month", &request.get_ref().month)?;
        self.approved_month(first).await
    }

    /// The approved bulletin of the month starting on `first`, or `NOT_FOUND`.
    async fn approved_month(&self, first: NaiveDate) -> Result<Response<pb::ApprovedBulletin>, Status> {
        let state = self.app.approved_bulletins().await.map_err(to_status)?;
        let month = first.format("%Y-%m").to_string();
        let Some(approved) = state.months.get(&first) else {
            return Err(to_status(AppError::NotFound { what: "approved bulletin", id: month }));
        };
        let draft: BulletinDraft = serde_json::from_value(approved.bulletin.clone())
            .map_err(|error| Status::internal(format!("the approved bulletin of {month} does not decode: {error}")))?;
        Ok(Response::new(pb::ApprovedBulletin {
            month,
            entries: draft.entries.iter().map(read_views::bulletin_entry).collect(),
            criteria: Some(read_views::bulletin_criteria(&draft.criteria)),
            approved_by: approved.approved_by.clone(),
            approved_at: Some(convert::timestamp(approved.approved_at)),
            note: approved.note.clone(),
            anchor: approved.anchor.as_ref().map(|anchor| pb::HistoryAnchor {
                position: anchor.position,
                events: anchor.events,
                sha256: anchor.sha256.clone(),
                settled: true,
                ..Default::default()
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_written_yyyy_mm() {
        assert_eq!(month("month", "2026-11").expect("a month"), NaiveDate::from_ymd_opt(2026, 11, 1).expect("date"));
        for bad in ["2026-13", "2026-1", "2026-11-01", "202611", "", "2026/11"] {
            let status = month("month", bad).expect_err(bad);
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn pages_default_to_fifty_and_refuse_more_than_five_hundred() {
        assert_eq!(page(0, "").expect("default"), (0, DEFAULT_PAGE));
        assert_eq!(page(10, "20").expect("a page"), (20, 10));
        assert_eq!(page(501, "").expect_err("too large").code(), tonic::Code::InvalidArgument);
        assert_eq!(page(10, "x").expect_err("not a token").code(), tonic::Code::InvalidArgument);
        assert_eq!(next_page_token(20, 10, 31), "30");
        assert_eq!(next_page_token(20, 10, 30), "");
    }
}
