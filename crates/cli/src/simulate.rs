//! `tousu simulate`: a realistic city driven through the real gRPC API of an in-process node
//! whose clock the simulation moves, so that a newcomer finds every read model filled.
//!
//! The city is generated from the seed: districts of 福州 with their streets and residential
//! communities (小区), property-management companies with valid unified social credit codes and
//! a skewed share of the complaints (a few draw most), and residents who complain once or
//! again. Each simulated day leads arrive by every channel, and each lead is taken along the
//! procedure by the principals who would act on it: 住建's registrars classify (sometimes
//! wrongly, sometimes splitting the complaint), notify urgent matters and transfer; the bodies
//! accept or return (住建 reviews each return, interpretation 27), re-grade, plan and report progress on major matters, verify, file, extend
//! and decide penalties, record findings, give feedback and sign; the street offices
//! countersign 住建's closures; the city level cancels or sends back; 12345 follows its leads
//! up and the dissatisfied ones reopen. Each body keeps its own pace, so deadlines are met and
//! missed, and at every day's end the deadline reactor runs over read models that have caught
//! up and escalates what is late; on working evenings 住建's official refers or dismisses the
//! recommendations to refer recorded the days before (interpretation 9). On the company side, credit ratings and black listings are
//! recorded, and what a company's stream asks for (surveys, downgrades, fee standards,
//! refunds) is done, mostly in time, with refusals to rectify and an exit procedure where a
//! company becomes eligible.
//!
//! Two random streams seeded by `--seed`, one for the city and its leads and one for the
//! companies, decide everything in a fixed order (commands of one instant run concurrently,
//! but their answers are taken in the order they were planned). The same arguments give the
//! same city, and the same leads with the same commands at the same business instants; what
//! the companies are asked to do follows the conditions tousu records on their streams, which
//! depend a little on how its reactor happened to batch the counts.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use chrono::{DateTime, Datelike as _, FixedOffset, Months, NaiveDate, NaiveTime, TimeDelta, Weekday};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinSet;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tousu_api::ServerOptions;
use tousu_api::client::Bearer;
use tousu_api::pb;
use tousu_api::pb::complaint_commands_client::ComplaintCommandsClient;
use tousu_api::pb::enterprise_commands_client::EnterpriseCommandsClient;
use tousu_api::pb::queries_client::QueriesClient;
use tousu_api::pb::read_models_client::ReadModelsClient;
use tousu_app::tokens::{self, TokenRegistry};
use tousu_app::{DomainSetup, ManualClock};
use tousu_domain::actor::Role;
use tousu_domain::calendar::{Calendar, Period, shanghai};
use tousu_domain::identity::IdentitySecret;
use tousu_domain::ids::{BodyCode, Uscc};
use tousu_domain::policy::Policy;
use tousu_domain::taxonomy::Taxonomy;
use tousu_projection::{ReadStoreAddress, WorkerState};
use tousu_store::EventStore as _;
use tousu_store_embedded::EmbeddedStore;

use crate::node::{Node, NodeConfig};

/// Arguments of `tousu simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The data directory to write the simulated history to; it must be new or empty.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// The first simulated day.
    #[arg(long, value_name = "YYYY-MM-DD", default_value = "2026-03-02")]
    from: NaiveDate,
    /// How many days to simulate; the last may not be after 2100-07-31, so that periods
    /// started on it still end inside the calendar (official through 2026, provisional from
    /// 2027 to 2100: interpretation 21).
    #[arg(long, value_name = "N", default_value_t = 120)]
    days: u32,
    /// How many property-management companies the city has.
    #[arg(long, value_name = "N", default_value_t = 300)]
    companies: usize,
    /// Leads registered on an average working day (rest days bring a few 12345 leads).
    #[arg(long, value_name = "N", default_value_t = 60)]
    leads_per_day: u32,
    /// The seed of the city and of everything that happens in it.
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
    /// The address the node's gRPC server listens on while the simulation drives it.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The node's log filter, e.g. `info` to see every escalation.
    #[arg(long, value_name = "FILTER", default_value = "warn")]
    log: String,
}

/// The last day a simulation may reach. The calendar is official through 2026 and
/// provisional to 2100 (interpretation 21), and a period started on the last simulated day
/// must still be computable: a penalty case filed then runs 90 days (PEN-1), a refund order 90
/// days (GRD-4), a progress report a month (HDL-2), and the deadline reactor counts working
/// days up to the day it runs.
fn last_allowed_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(tousu_domain::calendar::provisional::LAST_PROVISIONAL_YEAR, 7, 31).expect("a valid date")
}

/// The name of the file the tokens are written to, in the data directory.
const TOKENS_FILE: &str = "simulation-tokens.txt";

pub fn run(args: SimulateArgs) -> Result<()> {
    let calendar = Calendar::builtin().context("the shipped calendar is not valid")?;
    check_span(&args, &calendar)?;
    check_data_dir(&args.data_dir)?;
    if args.companies < 5 {
        bail!("--companies {} is too few for a city: give at least 5", args.companies);
    }
    if args.leads_per_day == 0 {
        bail!("--leads-per-day must be at least 1");
    }
    init_logging(&args.log)?;
    fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
    let taxonomy = Taxonomy::builtin().context("the shipped taxonomy is not valid")?;
    let mut rng = Rng::new(args.seed);
    let city = City::generate(&mut rng, args.companies, &taxonomy);
    let issued = issue_tokens(&args.data_dir, &city)?;
    let domain = DomainSetup::new(
        calendar.clone(),
        Policy::default(),
        taxonomy,
        new_identity_secret(&args.data_dir.join("identity.key"))?,
    );
    let events_dir = args.data_dir.join("events");
    let store = EmbeddedStore::open(&events_dir)
        .with_context(|| format!("cannot create the event log in {}", events_dir.display()))?;
    let registry = Arc::new(TokenRegistry::open(&args.data_dir).context("cannot read the token file")?);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    let started = Instant::now();
    let report = runtime.block_on(async {
        let clock = Arc::new(ManualClock::new(at(args.from, NaiveTime::from_hms_opt(8, 0, 0).expect("a time"))));
        let config = NodeConfig {
            data_dir: args.data_dir.clone(),
            listen: args.listen,
            server: ServerOptions::default(),
            read_store: ReadStoreAddress::Sqlite(args.data_dir.join("read")),
            external_projections: Vec::new(),
            deadline_interval: None,
            shutdown_grace: Duration::from_secs(10),
            // `tousu serve` creates the data directory's signing key when it serves the city.
            anchor_signer: None,
            cache_limits: tousu_app::CacheLimits::default(),
        };
        let node = Node::start(config, store, domain, registry, clock.clone()).await?;
        eprintln!(
            "simulating {} days from {} in {} through the API at {}",
            args.days,
            args.from,
            args.data_dir.display(),
            node.address
        );
        let simulated = simulate(&args, &node, clock, city, calendar, rng, &issued).await;
        // Stop the node cleanly whatever happened, so the log is closed and can be served.
        let stopped = node.stop().await;
        let report = simulated?;
        stopped?;
        Ok::<_, anyhow::Error>(report)
    })?;
    report.print(&args, started.elapsed(), &issued);
    Ok(())
}

/// Refuses a span the shipped calendar cannot carry.
fn check_span(args: &SimulateArgs, calendar: &Calendar) -> Result<()> {
    if args.days == 0 {
        bail!("--days must be at least 1");
    }
    let first_year = calendar.years().next().unwrap_or(2024);
    if args.from.year() < first_year {
        bail!("--from {}: the calendar has data from {first_year} only", args.from);
    }
    let last = args.from + TimeDelta::days(i64::from(args.days) - 1);
    let limit = last_allowed_day();
    if last > limit {
        bail!(
            "--from {} with --days {} ends on {last}, after {limit}: the provisional calendar ends with {}, and \
             periods started near a run's end (90 days for a penalty case or a refund, a month for a progress \
             report) must still end inside it; start earlier or simulate fewer days",
            args.from,
            args.days,
            limit.year()
        );
    }
    Ok(())
}

/// Refuses a data directory that already holds something, naming an existing event log.
fn check_data_dir(dir: &Path) -> Result<()> {
    let events = dir.join("events");
    if events.exists() {
        bail!(
            "{} already holds an event log ({}): tousu simulate writes a new history; give it a new or empty directory",
            dir.display(),
            events.display()
        );
    }
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if let Some(entry) = entries.next() {
                let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
                bail!(
                    "{} is not empty (it holds {}): tousu simulate writes a new history; give it a new or empty directory",
                    dir.display(),
                    entry.file_name().to_string_lossy()
                );
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", dir.display())),
    }
}

fn init_logging(filter: &str) -> Result<()> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let targets: tracing_subscriber::filter::Targets =
        filter.parse().with_context(|| format!("log filter {filter:?} is not valid"))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::registry()
        .with(targets)
        .with(tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr))
        .try_init()
        .context("logging already initialised")
}

/// A new random identity secret in the data directory, readable by the owner only, where
/// `tousu serve --data-dir` finds it afterwards.
fn new_identity_secret(path: &Path) -> Result<IdentitySecret> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|error| anyhow!("no randomness from the system: {error}"))?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create identity secret {}", path.display()))?;
    file.write_all(&secret)?;
    file.sync_all()?;
    Ok(IdentitySecret::new(secret.to_vec()))
}

// ---------------------------------------------------------------------------------------------
// Randomness
// ---------------------------------------------------------------------------------------------

/// SplitMix64: small, fast, and the same sequence for the same seed on every platform, which
/// is all a reproducible simulation needs (no cryptographic use).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x7f4a_7c15_9e37_79b9)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, probability: f64) -> bool {
        self.unit() < probability
    }

    /// Uniform in [low, high).
    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Uniform in [0, n).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in [low, high], both included.
    fn int(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// An index drawn with the given cumulative weights.
    fn cumulative(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0.0);
        let target = self.unit() * total;
        cumulative.partition_point(|&c| c <= target).min(cumulative.len() - 1)
    }

    /// A duration of `low` to `high` days.
    fn days(&mut self, low: f64, high: f64) -> TimeDelta {
        TimeDelta::seconds((self.between(low, high) * 86_400.0) as i64)
    }

    /// A duration of `low` to `high` minutes.
    fn minutes(&mut self, low: u64, high: u64) -> TimeDelta {
        TimeDelta::minutes(self.int(low, high) as i64)
    }
}

/// Running sums of weights, for [`Rng::cumulative`].
fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut sum = 0.0;
    weights
        .into_iter()
        .map(|weight| {
            sum += weight;
            sum
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The city
// ---------------------------------------------------------------------------------------------

/// The districts of the city with their administrative division codes, their share of the
/// complaints and their streets and townships (real names of 福州).
const DISTRICTS: &[(&str, &str, f64, &[&str])] = &[
    (
        "鼓楼区",
        "350102",
        1.3,
        &[
            "东街街道",
            "南街街道",
            "温泉街道",
            "水部街道",
            "五凤街道",
            "鼓东街道",
            "鼓西街道",
            "安泰街道",
            "华大街道",
            "洪山镇",
        ],
    ),
    (
        "台江区",
        "350103",
        1.0,
        &[
            "瀛洲街道",
            "后洲街道",
            "义洲街道",
            "新港街道",
            "上海街道",
            "苍霞街道",
            "茶亭街道",
            "洋中街道",
            "鳌峰街道",
            "宁化街道",
        ],
    ),
    (
        "仓山区",
        "350104",
        1.2,
        &[
            "仓前街道",
            "东升街道",
            "对湖街道",
            "临江街道",
            "三叉街街道",
            "上渡街道",
            "下渡街道",
            "金山街道",
            "盖山镇",
            "城门镇",
        ],
    ),
    ("晋安区", "350111", 1.0, &["茶园街道", "王庄街道", "象园街道", "岳峰镇", "鼓山镇", "新店镇", "宦溪镇"]),
    ("马尾区", "350105", 0.35, &["罗星街道", "马尾镇", "亭江镇"]),
    ("长乐区", "350112", 0.4, &["吴航街道", "航城街道", "营前街道", "首占镇"]),
];

const COMMUNITY_PREFIXES: &[&str] = &[
    "福苑", "金山", "榕城", "闽江", "鼓山", "屏山", "乌山", "于山", "温泉", "东湖", "西湖", "左海", "江滨", "融信",
    "阳光", "世纪", "锦江", "华林", "五四", "湖东", "杨桥", "白马", "洪山", "凤凰", "紫阳", "茶亭", "鳌峰", "双湖",
    "上渡", "金港", "永安", "万寿", "三盛", "海润", "正祥", "丽景", "香樟", "翠湖", "桂湖", "樱花", "鹭岭", "岳峰",
    "象园", "王庄", "罗星", "吴航", "首占", "建新", "盖山", "城门", "螺洲", "淮安", "仓前", "梅峰", "龙腾", "福新",
    "南江", "北峰", "西园", "东方",
];

const COMMUNITY_SUFFIXES: &[&str] = &[
    "小区", "花园", "新村", "苑", "公寓", "家园", "华庭", "雅居", "名城", "广场", "山庄", "佳园", "世家", "府", "新城",
    "里",
];

const COMPANY_SYLLABLES: &[&str] = &[
    "榕", "闽", "福", "鑫", "恒", "嘉", "华", "瑞", "盛", "泰", "安", "康", "宏", "信", "达", "兴", "润", "源", "宸",
    "锦", "昌", "隆", "和", "茂", "祥", "裕", "丰", "佳", "悦", "诚",
];

const COMPANY_SUFFIXES: &[(&str, f64)] = &[
    ("物业服务有限公司", 0.5),
    ("物业管理有限公司", 0.3),
    ("物业管理服务有限公司", 0.08),
    ("城市服务有限公司", 0.06),
    ("物业服务集团有限公司", 0.06),
];

const SURNAMES: &[&str] = &[
    "林", "陈", "黄", "张", "李", "王", "吴", "刘", "郑", "杨", "何", "许", "郭", "周", "罗", "徐", "谢", "蔡", "曾",
    "游", "江", "叶", "邱", "苏", "高", "潘", "魏", "朱", "卢", "方", "余", "翁", "杜", "詹", "陆", "薛", "庄", "程",
    "傅", "萧",
];

const GIVEN_NAMES: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞",
    "平", "刚", "桂英", "华", "建华", "志强", "婷", "晨", "宇", "浩", "欣", "颖", "玲", "鑫", "斌", "建国", "淑珍",
    "凤英", "玉兰", "海燕", "秀兰", "丹", "萍", "红", "宁", "琳", "帆", "晓东", "雪梅", "慧", "俊", "峰", "文斌",
    "雅琴", "国平", "丽华",
];

const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156", "157", "158",
    "159", "176", "177", "180", "181", "182", "183", "185", "186", "187", "188", "189", "191", "199",
];

/// The 31 characters of a unified social credit code, in value order (GB 32100-2015).
const USCC_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// The check character GB 32100-2015 calls for after the first 17 characters: weights are
/// 3^i mod 31 for positions 1 to 17.
fn uscc_check_character(first_17: &[u8]) -> char {
    let mut weight = 1u32;
    let mut sum = 0u32;
    for byte in first_17 {
        let value = USCC_ALPHABET.iter().position(|c| c == byte).unwrap_or(0) as u32;
        sum += value * weight;
        weight = weight * 3 % 31;
    }
    char::from(USCC_ALPHABET[((31 - sum % 31) % 31) as usize])
}

/// The check character of an 18-digit resident ID number (GB 11643, ISO 7064 MOD 11-2).
fn id_check_character(first_17: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = first_17.bytes().zip(WEIGHTS).map(|(digit, weight)| u32::from(digit - b'0') * weight).sum();
    char::from(b"10X98765432"[(sum % 11) as usize])
}

struct District {
    name: &'static str,
    code: &'static str,
    streets: &'static [&'static str],
}

struct Community {
    name: String,
    district: usize,
    street: usize,
    /// Residents who have complained, as indices into [`City::residents`].
    residents: Vec<usize>,
}

struct Resident {
    name: String,
    contact: String,
    id_number: String,
}

/// A company and what the simulation knows and has done about it.
struct Company {
    uscc: String,
    name: String,
    communities: Vec<usize>,
    /// How well it serves, 0 to 1: drives survey results and ratings.
    quality: f64,
    /// The chance that a complaint about it is found substantiated.
    substantiation: f64,
    /// The grade its communities start at (1 is the highest).
    base_grade: u8,
    /// Leads registered about it so far.
    leads_registered: u32,
    /// Whether its stream exists: a lead about it was registered before the last day's end,
    /// when tousu's reactor had counted it.
    has_stream: bool,
    /// Communities with a substantiated finding.
    substantiated_in: BTreeSet<usize>,
    /// Current grade of communities downgraded by the simulation.
    grades: HashMap<String, u8>,
    /// Company deadlines (by sequence number) already given to someone to meet.
    taken_deadlines: HashSet<u32>,
    refusals: u32,
    exit_planned: bool,
    /// The conditions GetEnterprise showed last.
    conditions: Vec<String>,
    exit_started: bool,
}

struct CategoryChoice {
    code: String,
    body: BodyCode,
    text: String,
    /// Interpretation 22: a substantiated lead of it is the company's responsibility by default.
    attributable: bool,
}

struct City {
    districts: Vec<District>,
    communities: Vec<Community>,
    companies: Vec<Company>,
    company_weights: Vec<f64>,
    residents: Vec<Resident>,
    used_contacts: HashSet<String>,
    categories: Vec<CategoryChoice>,
    category_weights: Vec<f64>,
}

impl City {
    fn generate(rng: &mut Rng, n_companies: usize, taxonomy: &Taxonomy) -> City {
        let districts: Vec<District> =
            DISTRICTS.iter().map(|(name, code, _, streets)| District { name, code, streets }).collect();
        let district_weights = cumulative(DISTRICTS.iter().map(|(_, _, weight, _)| *weight));

        // About two and a half communities per company, spread over the streets.
        let n_streets: usize = districts.iter().map(|district| district.streets.len()).sum();
        let per_street = (n_companies * 5 / 2).div_ceil(n_streets).max(3);
        let mut names = HashSet::new();
        let mut communities = Vec::new();
        for (district_index, district) in districts.iter().enumerate() {
            for street in 0..district.streets.len() {
                for _ in 0..per_street {
                    let name = loop {
                        let candidate = format!("{}{}", rng.pick(COMMUNITY_PREFIXES), rng.pick(COMMUNITY_SUFFIXES));
                        let candidate = if names.contains(&candidate) {
                            format!("{candidate}{}期", ["二", "三", "四", "五"][rng.below(4)])
                        } else {
                            candidate
                        };
                        if names.insert(candidate.clone()) {
                            break candidate;
                        }
                    };
                    communities.push(Community { name, district: district_index, street, residents: Vec::new() });
                }
            }
        }

        // Companies: a Zipf-like share of the complaints, so a few draw most. The heavier the
        // share, the worse the service, on average.
        let mut company_names = HashSet::new();
        let mut codes = HashSet::new();
        let mut unassigned: Vec<Vec<usize>> = vec![Vec::new(); districts.len()];
        for (index, community) in communities.iter().enumerate() {
            unassigned[community.district].push(index);
        }
        for pool in &mut unassigned {
            // Deal the communities in a random order.
            for i in (1..pool.len()).rev() {
                let j = rng.below(i + 1);
                pool.swap(i, j);
            }
        }
        let suffix_weights = cumulative(COMPANY_SUFFIXES.iter().map(|(_, weight)| *weight));
        let mut companies = Vec::with_capacity(n_companies);
        let mut weights = Vec::with_capacity(n_companies);
        for rank in 0..n_companies {
            let home = rng.cumulative(&district_weights);
            let name = loop {
                let prefix = if rng.chance(0.5) { "福州" } else { "" };
                let candidate = format!(
                    "{prefix}{}{}{}",
                    rng.pick(COMPANY_SYLLABLES),
                    rng.pick(COMPANY_SYLLABLES),
                    COMPANY_SUFFIXES[rng.cumulative(&suffix_weights)].0
                );
                if company_names.insert(candidate.clone()) {
                    break candidate;
                }
            };
            let uscc = loop {
                let mut first_17 = format!("91{}", districts[home].code).into_bytes();
                for _ in 0..9 {
                    first_17.push(*rng.pick(USCC_ALPHABET));
                }
                let check = uscc_check_character(&first_17);
                let code = format!("{}{check}", String::from_utf8_lossy(&first_17));
                if codes.insert(code.clone()) {
                    debug_assert!(code.parse::<Uscc>().is_ok(), "{code} has a valid check character");
                    break code;
                }
            };
            let badness = 1.0 / (1.0 + rank as f64 / 8.0);
            let heavy = rank < n_companies / 20;
            let wanted = if heavy { rng.int(5, 10) } else { rng.int(1, 4) } as usize;
            let mut owned = Vec::new();
            for _ in 0..wanted {
                let district = if rng.chance(0.8) { home } else { rng.cumulative(&district_weights) };
                let pool = if unassigned[district].is_empty() {
                    unassigned.iter_mut().max_by_key(|pool| pool.len()).expect("districts")
                } else {
                    &mut unassigned[district]
                };
                if let Some(community) = pool.pop() {
                    owned.push(community);
                }
            }
            if owned.is_empty() {
                // Every community is taken: share one (a company taking over part of an estate).
                owned.push(rng.below(communities.len()));
            }
            weights.push(1.0 / ((rank + 1) as f64).powf(1.05));
            companies.push(Company {
                uscc,
                name,
                communities: owned,
                quality: (0.93 - 0.5 * badness + rng.between(-0.06, 0.06)).clamp(0.3, 0.98),
                substantiation: (0.35 + 0.45 * badness).min(0.85),
                base_grade: rng.int(1, 3) as u8,
                leads_registered: 0,
                has_stream: false,
                substantiated_in: BTreeSet::new(),
                grades: HashMap::new(),
                taken_deadlines: HashSet::new(),
                refusals: 0,
                exit_planned: false,
                conditions: Vec::new(),
                exit_started: false,
            });
        }

        let mut categories = Vec::new();
        let mut category_weights = Vec::new();
        for category in taxonomy.categories() {
            category_weights.push(category_weight(category.code.as_str()));
            categories.push(CategoryChoice {
                code: category.code.as_str().to_owned(),
                body: category.body,
                text: category.text_zh.clone(),
                attributable: category.attributable,
            });
        }
        City {
            districts,
            communities,
            companies,
            company_weights: cumulative(weights),
            residents: Vec::new(),
            used_contacts: HashSet::new(),
            categories,
            category_weights: cumulative(category_weights),
        }
    }

    /// Interpretation 22: whether an estate is unmanaged (失管小区, no property-management
    /// company): one in 40, fixed by its number. Its leads name no company and count against
    /// none, although the simulation files them under the company whose estates surround it.
    fn is_unmanaged(&self, community: usize) -> bool {
        community % 40 == 7
    }

    fn place(&self, community: usize) -> pb::Place {
        let community = &self.communities[community];
        let district = &self.districts[community.district];
        pb::Place {
            community: community.name.clone(),
            district: district.name.to_owned(),
            street: district.streets[community.street].to_owned(),
        }
    }

    /// A new resident of a community: a name, a mobile number (a landline now and then) and,
    /// for a few, the ID number they give every time.
    fn new_resident(&mut self, rng: &mut Rng, community: usize) -> usize {
        let name = format!("{}{}", rng.pick(SURNAMES), rng.pick(GIVEN_NAMES));
        let contact = loop {
            let candidate = if rng.chance(0.08) {
                format!("0591-8{:07}", rng.int(0, 9_999_999))
            } else {
                format!("{}{:08}", rng.pick(MOBILE_PREFIXES), rng.int(0, 99_999_999))
            };
            if self.used_contacts.insert(candidate.clone()) {
                break candidate;
            }
        };
        let id_number = if rng.chance(0.05) {
            let district = self.districts[self.communities[community].district].code;
            let birth =
                NaiveDate::from_ymd_opt(rng.int(1950, 2000) as i32, rng.int(1, 12) as u32, rng.int(1, 28) as u32)
                    .expect("a valid date");
            let first_17 = format!("{district}{}{:03}", birth.format("%Y%m%d"), rng.int(1, 999));
            format!("{first_17}{}", id_check_character(&first_17))
        } else {
            String::new()
        };
        self.residents.push(Resident { name, contact, id_number });
        let index = self.residents.len() - 1;
        self.communities[community].residents.push(index);
        index
    }

    /// A category of another body than `body`.
    fn category_of_another_body(&self, rng: &mut Rng, body: BodyCode) -> usize {
        loop {
            let index = rng.cumulative(&self.category_weights);
            if self.categories[index].body != body {
                return index;
            }
        }
    }

    /// The district of a company's first community: where its street office sits for company
    /// matters.
    fn company_district(&self, company: usize) -> usize {
        self.communities[self.companies[company].communities[0]].district
    }
}

/// How often matters of a category are complained about, relative to each other.
fn category_weight(code: &str) -> f64 {
    match code {
        "ZJ-1-1" => 3.0,
        "ZJ-1-2" => 8.0,
        "ZJ-1-3" => 10.0,
        "ZJ-1-4" => 5.0,
        "ZJ-1-5" => 6.0,
        "ZJ-1-6" => 2.0,
        "ZJ-1-7" => 1.0,
        "ZJ-1-8" => 3.0,
        "ZJ-2-1" => 5.0,
        "ZJ-2-2" | "ZJ-2-3" => 3.0,
        "ZJ-2-4" => 2.0,
        "ZJ-OTHER" => 1.5,
        "FG-1" => 2.0,
        "FG-2" => 4.0,
        "SJ-2-1" | "SJ-3-1" => 4.0,
        "SJ-2-2" => 1.5,
        "SJ-1" => 1.0,
        "XF-6" => 3.5,
        "XF-7" => 1.5,
        "ZR-1" => 1.2,
        "GA-2" => 2.0,
        "NY-3" => 1.2,
        "WT-1" => 1.5,
        "ZF-1" => 5.0,
        "JB-5" | "JB-10" => 1.2,
        "JB-7" => 1.5,
        "JB-2" | "JB-9" | "ZR-2" | "GA-1" | "SQ-2" | "SJ-3-2" => 1.0,
        "SQ-3" => 1.5,
        code if code.ends_with("-OTHER") => 0.2,
        code if code.starts_with("XZ") => 0.4,
        _ => 0.6,
    }
}

/// What a resident would say about a matter of the category.
fn complaint_text(code: &str, rng: &mut Rng, fallback: &str) -> String {
    let options: &[&str] = match code {
        "ZJ-1-1" => &[
            "楼顶防水层破损，雨天顶楼住户家中严重漏水，物业迟迟不维修",
            "外墙瓷砖大面积脱落，楼下行人有被砸风险，物业未处理",
        ],
        "ZJ-1-2" => {
            &["电梯频繁故障停运，物业维修不及时", "二次供水加压泵损坏，高层住户停水多日", "楼道照明损坏数周无人修理"]
        }
        "ZJ-1-3" => &["小区垃圾清运不及时，楼道堆满杂物，气味难闻", "化粪池堵塞外溢，物业不清理"],
        "ZJ-1-4" => &["小区绿化带无人修剪，杂草丛生", "绿地被毁坏后物业未补种"],
        "ZJ-1-5" => &["小区门禁形同虚设，外来车辆随意进出乱停乱放", "夜间无人巡逻，电动车多次被盗"],
        "ZJ-1-6" => &["邻居装修违规拆改承重墙，物业不制止"],
        "ZJ-1-7" => &["物业拒绝向业主公开小区物业档案资料"],
        "ZJ-1-8" => &["小区内有人违规搭建，物业未及时劝阻和报告"],
        "ZJ-2-1" => &["物业擅自将小区架空层出租经营", "物业在电梯轿厢内发布广告，收益去向不明"],
        "ZJ-2-2" => &["小区公共收益账目从未公示"],
        "ZJ-2-3" => &["物业侵占地面停车位收益，拒不向业主说明"],
        "ZJ-2-4" => &["专项维修资金使用情况不公示，业主质疑被挪用"],
        "FG-1" => &["物业收费标准未公示，业主不清楚收费依据"],
        "FG-2" => &["物业擅自上调停车管理费，未说明依据", "电梯费收费标准不明，业主质疑重复收费"],
        "FG-3" => &["地下人防工程被排入生活污水"],
        "FG-4" => &["人防工程出入口被违章建筑堵塞"],
        "FG-5" => &["通往人防工程口部的道路被杂物堵塞"],
        "FG-7" => &["物业擅自改造人防工程设施出租"],
        "FG-8" => &["人防工程内存放大量易燃物品"],
        "SJ-1" => &["物业公司营业执照已过期仍在经营"],
        "SJ-2-1" => &["物业乱收费，收费项目未明码标价", "物业强制收取装修保证金"],
        "SJ-2-2" => &["物业代收水电费时加收手续费"],
        "SJ-3-1" => &["电梯维保记录造假，电梯多次困人", "电梯年检标志过期仍在运行"],
        "SJ-3-2" => &["电梯安全管理员无证上岗"],
        "SJ-4" => &["小区宣传栏广告内容虚假宣传"],
        "XF-1" => &["高层楼内动火作业无人监护、无公告"],
        "XF-2" => &["外墙广告牌遮挡排烟窗"],
        "XF-3" => &["外墙保温层破损脱落，无警示标识"],
        "XF-4" => &["消防控制室夜间无人值班"],
        "XF-5" => &["消防设施停用维修未公告，也无应急措施"],
        "XF-6" => &["楼道内停放电动自行车并私拉电线充电", "电动车在楼梯间充电，物业劝阻无效"],
        "XF-7" => &["小区消防通道被长期占用，物业不管", "消火栓无水，灭火器过期"],
        "XF-8" => &["消防水泵接合器被绿化遮挡圈占"],
        "ZR-1" => &["小区内有人违章搭建", "顶楼业主私建阳光房"],
        "ZR-2" => &["一楼住户擅自在外墙开门"],
        "ZR-3" => &["开发商迟迟不办理不动产权证"],
        "GA-1" => &["保安人员无证上岗，监控长期损坏"],
        "GA-2" => &["高空抛物屡禁不止", "有住户饲养大型犬不拴绳，威胁住户安全"],
        "NY-1" => &["直供电小区有人私拉电线违章用电"],
        "NY-2" => &["发现有住户窃电"],
        "NY-3" => &["充电桩报装迟迟不予办理"],
        "NY-4" => &["小区电容量不足，夏季频繁跳闸停电"],
        "WT-1" => &["自来水浑浊发黄、有异味", "二次供水水箱长期未清洗"],
        "ZF-1" => &["物业在小区内违规占道经营", "小区内违法搭建长期未被查处"],
        "JB-2" => &["业委会选举迟迟无法开展，请街道指导"],
        "JB-3" => &["物业服务质量差，请街道组织评价考核"],
        "JB-4" => &["业委会换届未进行审计"],
        "JB-5" => &["维修资金使用申请长期未审核", "小区公共收益收支不透明"],
        "JB-6" => &["新旧物业交接混乱，公共资产去向不明"],
        "JB-7" => &["小区重点难点问题反映多次无人解决"],
        "JB-8" => &["业委会决定违反规定，请街道责令改正"],
        "JB-9" => &["老旧小区失管，无人提供物业服务"],
        "JB-10" => &["物业擅自改变物业管理用房用途"],
        "SQ-1" => &["业委会与物业矛盾激化，社区未协调"],
        "SQ-2" => &["物业相关问题反映到社区后无人跟进"],
        "SQ-3" => &["新能源汽车充电桩报装，社区不配合出具意见"],
        code if code.starts_with("XZ") => &["12345工单办理情况长期未反馈"],
        code if code.starts_with("ZJ") => &["物业服务质量差，与合同约定严重不符"],
        _ => &[],
    };
    if options.is_empty() { fallback.to_owned() } else { (*rng.pick(options)).to_owned() }
}

/// The chance that a matter of the category endangers a building's use or someone's safety.
fn urgency_chance(code: &str) -> f64 {
    match code {
        "ZJ-1-1" => 0.25,
        "SJ-3-1" => 0.2,
        "ZJ-1-2" | "GA-2" | "NY-4" | "WT-1" => 0.1,
        code if code.starts_with("XF") => 0.15,
        _ => 0.02,
    }
}

/// The chance that a lead of the category carries a penalty matter (PEN-1).
fn penalty_chance(code: &str, body: BodyCode) -> f64 {
    match (code, body) {
        ("ZF-1", _) => 0.5,
        (code, BodyCode::FG) if !matches!(code, "FG-1" | "FG-2") => 0.4,
        ("ZR-3", _) | ("NY-3", _) | ("NY-4", _) => 0.0,
        (_, BodyCode::SJ | BodyCode::XF | BodyCode::ZR) => 0.25,
        (_, BodyCode::GA | BodyCode::NY | BodyCode::FG) => 0.12,
        ("ZJ-2-3" | "ZJ-2-4", BodyCode::ZJ) => 0.1,
        _ => 0.0,
    }
}

/// How fast a body handles its leads: days from the transfer to the signed closure when in
/// time, and the chance of being late.
fn pace(body: BodyCode) -> (f64, f64, f64) {
    match body {
        BodyCode::SJ | BodyCode::XZ => (1.5, 5.0, 0.04),
        BodyCode::ZJ => (2.0, 6.0, 0.08),
        BodyCode::FG | BodyCode::WT => (2.0, 6.0, 0.10),
        BodyCode::XF | BodyCode::SQ => (2.0, 6.5, 0.12),
        BodyCode::JB => (2.5, 6.5, 0.2),
        BodyCode::ZR | BodyCode::NY => (3.0, 6.5, 0.22),
        BodyCode::GA => (3.0, 6.5, 0.25),
        BodyCode::ZF => (3.0, 6.5, 0.3),
    }
}

fn diligent(body: BodyCode) -> bool {
    matches!(body, BodyCode::SJ | BodyCode::XZ | BodyCode::ZJ | BodyCode::FG)
}

fn pb_body(body: BodyCode) -> pb::Body {
    pb::Body::from_str_name(&format!("BODY_{body}")).unwrap_or(pb::Body::Unspecified)
}

// ---------------------------------------------------------------------------------------------
// Principals and their clients
// ---------------------------------------------------------------------------------------------

/// Someone in the city who acts through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Who {
    /// One of 住建's registrars (受理窗口).
    RegistrarZj(usize),
    /// The 12345 hotline's registrar.
    RegistrarXz,
    /// The 12345 hotline's follow-up caller (回访).
    FollowUp,
    /// A department's handler.
    Handler(BodyCode),
    /// A district's street offices.
    StreetOffice(usize),
    /// A district's residents' committees.
    Community(usize),
    /// The city-level counterpart of a body.
    Reviewer(BodyCode),
    /// The district discipline inspection commission.
    Auditor,
    /// 住建's deputy director, who decides the recommendations to refer (interpretation 9).
    Official,
}

const ZJ_REGISTRARS: [&str; 3] = ["王敏", "陈峰", "李静"];

impl Who {
    fn everyone(city: &City) -> Vec<Who> {
        let mut everyone: Vec<Who> = (0..ZJ_REGISTRARS.len()).map(Who::RegistrarZj).collect();
        everyone.extend([Who::RegistrarXz, Who::FollowUp, Who::Auditor, Who::Official]);
        everyone.extend(
            BodyCode::ALL.into_iter().filter(|body| !matches!(body, BodyCode::JB | BodyCode::SQ)).map(Who::Handler),
        );
        everyone.extend((0..city.districts.len()).map(Who::StreetOffice));
        everyone.extend((0..city.districts.len()).map(Who::Community));
        everyone.extend(BodyCode::ALL.into_iter().map(Who::Reviewer));
        everyone
    }

    fn role(self) -> Role {
        match self {
            Who::RegistrarZj(_) | Who::RegistrarXz => Role::Registrar,
            Who::FollowUp | Who::Handler(_) => Role::Handler,
            Who::StreetOffice(_) | Who::Community(_) => Role::StreetOffice,
            Who::Reviewer(_) => Role::CityReviewer,
            Who::Auditor => Role::Auditor,
            Who::Official => Role::Official,
        }
    }

    fn body(self) -> Option<BodyCode> {
        match self {
            Who::RegistrarZj(_) | Who::Official => Some(BodyCode::ZJ),
            Who::RegistrarXz | Who::FollowUp => Some(BodyCode::XZ),
            Who::Handler(body) | Who::Reviewer(body) => Some(body),
            Who::StreetOffice(_) => Some(BodyCode::JB),
            Who::Community(_) => Some(BodyCode::SQ),
            Who::Auditor => None,
        }
    }

    fn person(self, city: &City) -> String {
        match self {
            Who::RegistrarZj(n) => format!("区住建局受理窗口·{}", ZJ_REGISTRARS[n % ZJ_REGISTRARS.len()]),
            Who::RegistrarXz => "12345热线·黄丽".to_owned(),
            Who::FollowUp => "12345回访·郑婷".to_owned(),
            Who::Handler(body) => match body {
                BodyCode::ZJ => "市住建局物业科·林涛",
                BodyCode::FG => "市发改委价格科·郑雯",
                BodyCode::SJ => "市市场监管局·黄晓东",
                BodyCode::XF => "市消防救援支队·吴刚",
                BodyCode::ZR => "市自然资源局·陈静",
                BodyCode::GA => "市公安局治安支队·刘洋",
                BodyCode::NY => "市能源局·许斌",
                BodyCode::WT => "市卫健委·高颖",
                BodyCode::XZ => "市行政服务中心·何丽",
                BodyCode::ZF => "市城管执法局·罗军",
                BodyCode::JB | BodyCode::SQ => "街道社区",
            }
            .to_owned(),
            Who::StreetOffice(district) => {
                format!(
                    "{}街道办·{}",
                    city.districts[district].name,
                    ["张伟", "林芳", "陈斌", "郑丽", "黄磊", "吴静"][district % 6]
                )
            }
            Who::Community(district) => {
                format!(
                    "{}社区居委会·{}",
                    city.districts[district].name,
                    ["许婷", "周杰", "游敏", "叶华", "邱萍", "苏宁"][district % 6]
                )
            }
            Who::Reviewer(body) => format!("市级{body}审核·{}", ["方正", "翁清", "杜明", "詹宁"][body as usize % 4]),
            Who::Auditor => "区纪委监委·周敏".to_owned(),
            Who::Official => "区住建局分管副局长·林建国".to_owned(),
        }
    }

    /// Who handles a lead of a body in a district.
    fn handler_of(body: BodyCode, district: usize) -> Who {
        match body {
            BodyCode::JB => Who::StreetOffice(district),
            BodyCode::SQ => Who::Community(district),
            body => Who::Handler(body),
        }
    }
}

/// A token issued for a principal.
struct Issued {
    who: Who,
    person: String,
    token: String,
}

/// Issues a token for every principal into the data directory and writes them all, with who
/// they are, to `simulation-tokens.txt` (readable by the owner only).
fn issue_tokens(data_dir: &Path, city: &City) -> Result<Vec<Issued>> {
    let mut issued = Vec::new();
    for who in Who::everyone(city) {
        let person = who.person(city);
        let token = tokens::issue(data_dir, &person, who.body(), who.role())
            .with_context(|| format!("cannot issue a token for {person}"))?;
        issued.push(Issued { who, person, token: token.token });
    }
    let path = data_dir.join(TOKENS_FILE);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let mut text = String::from(
        "# Bearer tokens of the simulated city's principals (tousu simulate); keep this file private.\n\
         # role\tbody\tperson\ttoken\n",
    );
    for entry in &issued {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            entry.who.role().as_str(),
            entry.who.body().map_or("-", BodyCode::as_str),
            entry.person,
            entry.token
        ));
    }
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(issued)
}

type Authed = InterceptedService<Channel, Bearer>;

/// The clients of one principal.
#[derive(Clone)]
struct Clients {
    complaints: ComplaintCommandsClient<Authed>,
    enterprises: EnterpriseCommandsClient<Authed>,
    queries: QueriesClient<Authed>,
    read_models: ReadModelsClient<Authed>,
}

async fn connect_clients(address: SocketAddr, issued: &[Issued]) -> Result<HashMap<Who, Clients>> {
    let url = format!("http://{address}");
    let channel = Endpoint::from_shared(url.clone())
        .with_context(|| format!("{url} is not a valid address"))?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to the node at {url}"))?;
    let mut clients = HashMap::new();
    for entry in issued {
        let bearer = Bearer::new(&entry.token)?;
        clients.insert(
            entry.who,
            Clients {
                complaints: ComplaintCommandsClient::with_interceptor(channel.clone(), bearer.clone()),
                enterprises: EnterpriseCommandsClient::with_interceptor(channel.clone(), bearer.clone()),
                queries: QueriesClient::with_interceptor(channel.clone(), bearer.clone()),
                read_models: ReadModelsClient::with_interceptor(channel.clone(), bearer),
            },
        );
    }
    Ok(clients)
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// One command through the API.
#[derive(Debug, Clone)]
enum Call {
    Register(pb::RegisterRequest),
    Classify(pb::ClassifyRequest),
    NotifyUrgent(pb::NotifyUrgentRequest),
    Transfer(pb::TransferRequest),
    Accept(pb::AcceptRequest),
    ReturnTransfer(pb::ReturnTransferRequest),
    ReviewReturn(pb::ReviewReturnRequest),
    Regrade(pb::RegradeRequest),
    SubmitPlan(pb::SubmitPlanRequest),
    ReportProgress(pb::ReportProgressRequest),
    RecordFinding(pb::RecordFindingRequest),
    GiveFeedback(pb::GiveFeedbackRequest),
    OpenPenaltyMatter(pb::OpenPenaltyMatterRequest),
    VerifyPenaltyMatter(pb::VerifyPenaltyMatterRequest),
    FilePenaltyCase(pb::FilePenaltyCaseRequest),
    ExtendPenaltyPeriod(pb::ExtendPenaltyPeriodRequest),
    DecidePenalty(pb::DecidePenaltyRequest),
    SignClosure(pb::SignClosureRequest),
    CountersignClosure(pb::CountersignClosureRequest),
    ReviewClosure(pb::ReviewClosureRequest),
    RecordSatisfaction(pb::RecordSatisfactionRequest),
    RecordCreditRating(pb::RecordCreditRatingRequest),
    RecordBlacklisting(pb::RecordBlacklistingRequest),
    RecordBlacklistRemoval(pb::RecordBlacklistRemovalRequest),
    RecordSurvey(pb::RecordSurveyRequest),
    RecordRectificationRefused(pb::RecordRectificationRefusedRequest),
    DowngradeGrade(pb::DowngradeGradeRequest),
    EnforceFeeStandard(pb::EnforceFeeStandardRequest),
    RefuseFeeStandard(pb::RefuseFeeStandardRequest),
    OrderRefund(pb::OrderRefundRequest),
    StartExitProcedure(pb::StartExitProcedureRequest),
    DecideReferral(pb::DecideReferralRequest),
    DecideCompanyReferral(pb::DecideCompanyReferralRequest),
}

impl Call {
    fn name(&self) -> &'static str {
        match self {
            Call::Register(_) => "Register",
            Call::Classify(_) => "Classify",
            Call::NotifyUrgent(_) => "NotifyUrgent",
            Call::Transfer(_) => "Transfer",
            Call::Accept(_) => "Accept",
            Call::ReturnTransfer(_) => "ReturnTransfer",
            Call::ReviewReturn(_) => "ReviewReturn",
            Call::Regrade(_) => "Regrade",
            Call::SubmitPlan(_) => "SubmitPlan",
            Call::ReportProgress(_) => "ReportProgress",
            Call::RecordFinding(_) => "RecordFinding",
            Call::GiveFeedback(_) => "GiveFeedback",
            Call::OpenPenaltyMatter(_) => "OpenPenaltyMatter",
            Call::VerifyPenaltyMatter(_) => "VerifyPenaltyMatter",
            Call::FilePenaltyCase(_) => "FilePenaltyCase",
            Call::ExtendPenaltyPeriod(_) => "ExtendPenaltyPeriod",
            Call::DecidePenalty(_) => "DecidePenalty",
            Call::SignClosure(_) => "SignClosure",
            Call::CountersignClosure(_) => "CountersignClosure",
            Call::ReviewClosure(_) => "ReviewClosure",
            Call::RecordSatisfaction(_) => "RecordSatisfaction",
            Call::RecordCreditRating(_) => "RecordCreditRating",
            Call::RecordBlacklisting(_) => "RecordBlacklisting",
            Call::RecordBlacklistRemoval(_) => "RecordBlacklistRemoval",
            Call::RecordSurvey(_) => "RecordSurvey",
            Call::RecordRectificationRefused(_) => "RecordRectificationRefused",
            Call::DowngradeGrade(_) => "DowngradeGrade",
            Call::EnforceFeeStandard(_) => "EnforceFeeStandard",
            Call::RefuseFeeStandard(_) => "RefuseFeeStandard",
            Call::OrderRefund(_) => "OrderRefund",
            Call::StartExitProcedure(_) => "StartExitProcedure",
            Call::DecideReferral(_) => "DecideReferral",
            Call::DecideCompanyReferral(_) => "DecideCompanyReferral",
        }
    }

    /// Sends the command once; a call aborted by concurrent writers (the company counts of
    /// tousu's own reactor, for instance) is sent again with the same request id, as the API
    /// asks.
    async fn send(self, clients: Clients) -> Result<pb::CommandResult, Status> {
        let mut attempt = 0u64;
        loop {
            let Clients { mut complaints, mut enterprises, .. } = clients.clone();
            let answer = match self.clone() {
                Call::Register(request) => complaints.register(request).await,
                Call::Classify(request) => complaints.classify(request).await,
                Call::NotifyUrgent(request) => complaints.notify_urgent(request).await,
                Call::Transfer(request) => complaints.transfer(request).await,
                Call::Accept(request) => complaints.accept(request).await,
                Call::ReturnTransfer(request) => complaints.return_transfer(request).await,
                Call::ReviewReturn(request) => complaints.review_return(request).await,
                Call::Regrade(request) => complaints.regrade(request).await,
                Call::SubmitPlan(request) => complaints.submit_plan(request).await,
                Call::ReportProgress(request) => complaints.report_progress(request).await,
                Call::RecordFinding(request) => complaints.record_finding(request).await,
                Call::GiveFeedback(request) => complaints.give_feedback(request).await,
                Call::OpenPenaltyMatter(request) => complaints.open_penalty_matter(request).await,
                Call::VerifyPenaltyMatter(request) => complaints.verify_penalty_matter(request).await,
                Call::FilePenaltyCase(request) => complaints.file_penalty_case(request).await,
                Call::ExtendPenaltyPeriod(request) => complaints.extend_penalty_period(request).await,
                Call::DecidePenalty(request) => complaints.decide_penalty(request).await,
                Call::SignClosure(request) => complaints.sign_closure(request).await,
                Call::CountersignClosure(request) => complaints.countersign_closure(request).await,
                Call::ReviewClosure(request) => complaints.review_closure(request).await,
                Call::RecordSatisfaction(request) => complaints.record_satisfaction(request).await,
                Call::RecordCreditRating(request) => enterprises.record_credit_rating(request).await,
                Call::RecordBlacklisting(request) => enterprises.record_blacklisting(request).await,
                Call::RecordBlacklistRemoval(request) => enterprises.record_blacklist_removal(request).await,
                Call::RecordSurvey(request) => enterprises.record_survey(request).await,
                Call::RecordRectificationRefused(request) => enterprises.record_rectification_refused(request).await,
                Call::DowngradeGrade(request) => enterprises.downgrade_grade(request).await,
                Call::EnforceFeeStandard(request) => enterprises.enforce_fee_standard(request).await,
                Call::RefuseFeeStandard(request) => enterprises.refuse_fee_standard(request).await,
                Call::OrderRefund(request) => enterprises.order_refund(request).await,
                Call::StartExitProcedure(request) => enterprises.start_exit_procedure(request).await,
                Call::DecideReferral(request) => complaints.decide_referral(request).await,
                Call::DecideCompanyReferral(request) => enterprises.decide_company_referral(request).await,
            };
            match answer {
                Err(status) if status.code() == Code::Aborted && attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
                }
                other => return other.map(tonic::Response::into_inner),
            }
        }
    }
}

/// Statuses that mean the node itself is in trouble, not that the procedure refused a step.
fn is_fatal(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::Unknown | Code::Internal | Code::DataLoss | Code::DeadlineExceeded | Code::Cancelled
    )
}

fn timestamp(instant: DateTime<FixedOffset>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: instant.timestamp(), nanos: 0 }
}

/// An instant of a date in Shanghai.
fn at(date: NaiveDate, time: NaiveTime) -> DateTime<FixedOffset> {
    date.and_time(time).and_local_timezone(shanghai()).single().expect("a fixed offset is unambiguous")
}

fn hm(hour: u32, minute: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, minute, 0).expect("a valid time")
}

// ---------------------------------------------------------------------------------------------
// Leads
// ---------------------------------------------------------------------------------------------

/// The next thing to do on a lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Register,
    Classify,
    NotifyUrgent,
    Transfer,
    Accept,
    ReturnTransfer,
    ReviewReturn,
    Regrade,
    SubmitPlan,
    OpenPenalty,
    VerifyPenalty,
    FilePenalty,
    ExtendPenalty,
    DecidePenalty,
    PenaltyFeedbackComplainant,
    PenaltyFeedbackTransferringBody,
    RecordFinding,
    FeedbackComplainant,
    FeedbackHotline,
    Sign,
    Countersign,
    Review,
    FollowUp,
    Done,
}

/// A penalty matter's course (PEN-1), drawn when the lead is created.
#[derive(Debug, Clone, Default)]
struct Penalty {
    warranted: bool,
    opened: bool,
    verified: bool,
    verify_at: Option<DateTime<FixedOffset>>,
    filed_at: Option<DateTime<FixedOffset>>,
    /// Days of the one extension, if the body's head will approve one.
    extension: Option<u32>,
    extended: bool,
    decide_at: Option<DateTime<FixedOffset>>,
    decided: bool,
    fed_back_complainant: bool,
    fed_back_transferring_body: bool,
}

impl Penalty {
    /// Whether nothing of the penalty matter remains before the closure.
    fn complete(&self, anonymous: bool) -> bool {
        self.verified
            && (!self.warranted
                || (self.decided && (anonymous || self.fed_back_complainant) && self.fed_back_transferring_body))
    }
}

/// A lead as the simulation drives it: who complained about what, what will happen to it, and
/// how far it has come.
struct Lead {
    id: String,
    company: usize,
    community: usize,
    /// `None` for an anonymous report.
    resident: Option<usize>,
    channel: pb::Channel,
    ticket: String,
    content: String,
    received_at: DateTime<FixedOffset>,
    registrar: usize,
    category: usize,
    urgent: bool,
    major: bool,
    /// A major matter resolved within a week, needing no plan.
    quick: bool,
    /// The wrong category a registrar will pick first (returned by the wrong body).
    misroute: Option<usize>,
    /// Interpretation 27: the body returns a transfer that was its own (推诿); 住建 rejects the
    /// return and the body must handle the lead.
    buck_pass: bool,
    /// A category of another body to split off at classification.
    split: Option<usize>,
    regrade: bool,
    penalty: Option<Penalty>,
    substantiated: bool,
    send_back: bool,
    next: Step,
    work_at: DateTime<FixedOffset>,
    next_report: Option<DateTime<FixedOffset>>,
    transferred_at: Option<DateTime<FixedOffset>>,
    close_at: DateTime<FixedOffset>,
    plan_at: Option<DateTime<FixedOffset>>,
    reports: u32,
    finding_recorded: bool,
    fed_back_complainant: bool,
    fed_back_hotline: bool,
    reviews: u32,
    follow_ups: u32,
}

impl Lead {
    fn anonymous(&self) -> bool {
        self.resident.is_none()
    }

    fn came_by_12345(&self) -> bool {
        self.channel == pb::Channel::Hotline12345
    }
}

/// Something to do at an instant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Task {
    Lead(usize),
    Company(usize, CompanyAction),
}

/// Something to do about a company.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum CompanyAction {
    CreditRating,
    /// On the black list since this many months ago.
    Blacklist {
        months_ago: u32,
    },
    RemoveFromBlacklist,
    Survey {
        community: String,
    },
    RefuseRectification {
        community: String,
    },
    Downgrade {
        community: String,
    },
    FeeStandard {
        community: String,
    },
    Refund {
        community: String,
    },
    StartExit,
}

// ---------------------------------------------------------------------------------------------
// The simulation
// ---------------------------------------------------------------------------------------------

/// What the simulation did, for the summary.
#[derive(Default)]
struct Report {
    registered: u64,
    linked: u64,
    commands: BTreeMap<&'static str, u64>,
    queries: u64,
    refused: BTreeMap<String, u64>,
    refusal_examples: Vec<String>,
    escalations: u64,
    stale_candidates: u64,
    events: u64,
    key_supervision: u64,
    grade_review: u64,
    exit_possible: u64,
    exit_started: u64,
    surveys_below_60: u64,
    projections: Vec<tousu_projection::ProjectionStatus>,
    simulated_until: Option<NaiveDate>,
    /// The last year with an official holiday schedule (interpretation 21).
    last_official_year: Option<i32>,
}

struct Simulation<'a> {
    rng: Rng,
    company_rng: Rng,
    city: City,
    calendar: Calendar,
    clock: Arc<ManualClock>,
    clients: HashMap<Who, Clients>,
    leads: Vec<Lead>,
    queue: BinaryHeap<Reverse<(DateTime<FixedOffset>, u64, Task)>>,
    queued: u64,
    requests: u64,
    company_requests: u64,
    seed: u64,
    leads_per_day: u32,
    max_exits: usize,
    /// Interpretation 23: the month whose bulletin 住建's official approves next (the first
    /// simulated month's, then each following one's).
    next_bulletin: NaiveDate,
    report: Report,
    node: &'a Node,
}

/// The first and last slot of the day at which anyone acts, and the office hours within.
const DAY_OPENS: (u32, u32) = (8, 30);
const DAY_CLOSES: (u32, u32) = (20, 0);
const OFFICE_OPENS: (u32, u32) = (9, 0);
const OFFICE_CLOSES: (u32, u32) = (17, 50);
const SLOT_MINUTES: i64 = 10;

async fn simulate(
    args: &SimulateArgs,
    node: &Node,
    clock: Arc<ManualClock>,
    city: City,
    calendar: Calendar,
    rng: Rng,
    issued: &[Issued],
) -> Result<Report> {
    let clients = connect_clients(node.address, issued).await?;
    let n_companies = city.companies.len();
    let mut simulation = Simulation {
        company_rng: Rng::new(args.seed.rotate_left(32) ^ 0xc04d_a361),
        rng,
        city,
        calendar,
        clock,
        clients,
        leads: Vec::new(),
        queue: BinaryHeap::new(),
        queued: 0,
        requests: 0,
        company_requests: 0,
        seed: args.seed,
        leads_per_day: args.leads_per_day,
        max_exits: 1 + n_companies / 200,
        next_bulletin: args.from.with_day(1).unwrap_or(args.from),
        report: Report::default(),
        node,
    };
    simulation.with_company_rng(|simulation| simulation.plan_company_records(args.from, args.days));
    let bar = ProgressBar::with_draw_target(Some(u64::from(args.days)), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] day {pos}/{len}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    // Ctrl-C ends the run after the day under way, so the log is still closed cleanly and
    // what was simulated can be served.
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let listener = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });
    let started = Instant::now();
    for day in 0..args.days {
        if interrupted.load(Ordering::Relaxed) {
            bar.suspend(|| eprintln!("interrupted: stopping after {day} days"));
            break;
        }
        let date = args.from + TimeDelta::days(i64::from(day));
        let working = simulation.working(date);
        simulation.arrivals(date, working);
        let mut slot = at(date, hm(DAY_OPENS.0, DAY_OPENS.1));
        while slot <= at(date, hm(DAY_CLOSES.0, DAY_CLOSES.1)) {
            simulation.run_slot(slot).await?;
            slot += TimeDelta::minutes(SLOT_MINUTES);
        }
        simulation.end_of_day(date, working).await?;
        simulation.report.simulated_until = Some(date);
        let commands: u64 = simulation.report.commands.values().sum();
        let rate = commands as f64 / started.elapsed().as_secs_f64().max(0.001);
        bar.set_message(format!("{date}  {commands} commands  {rate:.0}/s"));
        bar.inc(1);
    }
    listener.abort();
    bar.finish_and_clear();
    simulation.finish().await
}

impl Simulation<'_> {
    fn working(&self, date: NaiveDate) -> bool {
        // Dates past the calendar's data lie past the simulated span, where nothing runs.
        self.calendar.is_working_day(date).unwrap_or(true)
    }

    fn next_working_day(&self, date: NaiveDate) -> NaiveDate {
        self.calendar.nth_working_day_after(date, NonZeroU32::MIN).unwrap_or(date + TimeDelta::days(1))
    }

    /// The instant itself if it lies in office hours of a working day, else a moment after the
    /// office next opens.
    fn office(&mut self, instant: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        let date = instant.date_naive();
        let time = instant.time();
        if self.working(date) {
            if time < hm(OFFICE_OPENS.0, OFFICE_OPENS.1) {
                let opens = at(date, hm(OFFICE_OPENS.0, OFFICE_OPENS.1));
                return opens + self.rng.minutes(0, 60);
            }
            if time <= hm(OFFICE_CLOSES.0, OFFICE_CLOSES.1) {
                return instant;
            }
        }
        let next = self.next_working_day(date);
        at(next, self.office_time())
    }

    /// A time in office hours: the morning (09:00–12:00) or the afternoon (14:00–17:50).
    fn office_time(&mut self) -> NaiveTime {
        let minute = self.rng.int(0, 180 + 230) as u32;
        if minute < 180 { hm(9 + minute / 60, minute % 60) } else { hm(14 + (minute - 180) / 60, (minute - 180) % 60) }
    }

    /// [`Simulation::office`] after a random delay.
    fn office_after(
        &mut self,
        from: DateTime<FixedOffset>,
        delay: impl FnOnce(&mut Rng) -> TimeDelta,
    ) -> DateTime<FixedOffset> {
        let delay = delay(&mut self.rng);
        self.office(from + delay)
    }

    /// [`Simulation::duty`] after a random delay.
    fn duty_after(
        &mut self,
        from: DateTime<FixedOffset>,
        delay: impl FnOnce(&mut Rng) -> TimeDelta,
    ) -> DateTime<FixedOffset> {
        let delay = delay(&mut self.rng);
        self.duty(from + delay)
    }

    /// Urgent matters and the 12345 hotline are handled on rest days too, from early morning
    /// to evening.
    fn duty(&mut self, instant: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        let date = instant.date_naive();
        let time = instant.time();
        if time < hm(DAY_OPENS.0, DAY_OPENS.1) {
            return at(date, hm(DAY_OPENS.0, DAY_OPENS.1)) + self.rng.minutes(0, 30);
        }
        if time <= hm(DAY_CLOSES.0, DAY_CLOSES.1) {
            return instant;
        }
        at(date + TimeDelta::days(1), hm(DAY_OPENS.0, DAY_OPENS.1)) + self.rng.minutes(0, 60)
    }

    /// An office instant `n` working days after `instant` (the same or next working day for 0).
    fn working_days_after(&mut self, instant: DateTime<FixedOffset>, n: u32) -> DateTime<FixedOffset> {
        let Some(n) = NonZeroU32::new(n) else {
            return self.office_after(instant, |rng| rng.minutes(30, 300));
        };
        let date = self
            .calendar
            .nth_working_day_after(instant.date_naive(), n)
            .unwrap_or(instant.date_naive() + TimeDelta::days(i64::from(n.get()) * 7 / 5));
        at(date, self.office_time())
    }

    /// Not before the next slot: one step per lead per instant.
    fn not_before(&self, now: DateTime<FixedOffset>, instant: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        instant.max(now + TimeDelta::minutes(SLOT_MINUTES))
    }

    fn push(&mut self, instant: DateTime<FixedOffset>, task: Task) {
        self.queued += 1;
        self.queue.push(Reverse((instant, self.queued, task)));
    }

    fn request_id(&mut self) -> String {
        self.requests += 1;
        format!("sim{}-{}", self.seed, self.requests)
    }

    fn company_request_id(&mut self) -> String {
        self.company_requests += 1;
        format!("sim{}-company-{}", self.seed, self.company_requests)
    }

    /// Runs `f` with the company side's random stream in place of the leads' one. What the
    /// companies are asked to do follows the conditions tousu records on their streams, which
    /// depend on when its reactor counted; drawing it from its own stream keeps that from
    /// shifting anything that happens to the leads.
    fn with_company_rng<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        std::mem::swap(&mut self.rng, &mut self.company_rng);
        let result = f(self);
        std::mem::swap(&mut self.rng, &mut self.company_rng);
        result
    }

    // --- arrivals ---------------------------------------------------------------------------

    /// Today's new leads, at their instants.
    fn arrivals(&mut self, date: NaiveDate, working: bool) {
        let base = f64::from(self.leads_per_day);
        let count = if working {
            let weekday = match date.weekday() {
                Weekday::Mon => 1.25,
                Weekday::Tue => 1.1,
                Weekday::Fri => 0.9,
                // An adjusted working weekend day (调休上班) is quieter.
                Weekday::Sat | Weekday::Sun => 0.8,
                _ => 1.0,
            };
            base * weekday * self.rng.between(0.85, 1.15)
        } else {
            base * 0.12 * self.rng.between(0.6, 1.4)
        };
        for _ in 0..count.round() as u64 {
            let (channel, instant) = if working {
                let channel = match self.rng.unit() {
                    u if u < 0.32 => pb::Channel::Hotline,
                    u if u < 0.68 => pb::Channel::Hotline12345,
                    u if u < 0.78 => pb::Channel::Mailbox,
                    u if u < 0.92 => pb::Channel::WalkIn,
                    _ => pb::Channel::Import,
                };
                // Two humps: the morning and the early afternoon.
                let minutes = if self.rng.chance(0.55) { self.rng.int(0, 180) } else { self.rng.int(300, 530) };
                (channel, at(date, hm(OFFICE_OPENS.0, OFFICE_OPENS.1)) + TimeDelta::minutes(minutes as i64))
            } else {
                let minutes = self.rng.int(0, 690);
                (pb::Channel::Hotline12345, at(date, hm(DAY_OPENS.0, DAY_OPENS.1)) + TimeDelta::minutes(minutes as i64))
            };
            let lead = self.new_lead(channel, instant);
            self.leads.push(lead);
            let index = self.leads.len() - 1;
            self.push(instant, Task::Lead(index));
        }
    }

    /// A new lead about a company drawn by its share of the complaints, with its course drawn.
    fn new_lead(&mut self, channel: pb::Channel, registered_at: DateTime<FixedOffset>) -> Lead {
        let rng = &mut self.rng;
        let company = rng.cumulative(&self.city.company_weights);
        let community = *rng.pick(&self.city.companies[company].communities);
        let anonymous = match channel {
            pb::Channel::Hotline | pb::Channel::Mailbox => rng.chance(0.1),
            pb::Channel::Import => rng.chance(0.05),
            _ => false,
        };
        let resident = if anonymous {
            None
        } else if !self.city.communities[community].residents.is_empty() && rng.chance(0.25) {
            // Someone who has complained before, about the same estate.
            Some(*rng.pick(&self.city.communities[community].residents))
        } else {
            Some(self.city.new_resident(rng, community))
        };
        let category = rng.cumulative(&self.city.category_weights);
        let choice = &self.city.categories[category];
        let urgent = rng.chance(urgency_chance(&choice.code));
        let penalty = rng.chance(penalty_chance(&choice.code, choice.body)).then(|| Penalty {
            warranted: rng.chance(0.7),
            extension: rng.chance(0.15).then(|| rng.int(10, 30) as u32),
            ..Penalty::default()
        });
        let major = rng.chance(0.07) || (penalty.is_some() && rng.chance(0.5));
        let split = (!urgent && rng.chance(0.05)).then(|| self.city.category_of_another_body(rng, choice.body));
        let misroute = (!urgent && split.is_none() && penalty.is_none() && rng.chance(0.04))
            .then(|| self.city.category_of_another_body(rng, choice.body));
        let building = rng.int(1, 30);
        let text = complaint_text(&choice.code, rng, &choice.text);
        let place = &self.city.communities[community].name;
        let mut content = match channel {
            pb::Channel::Hotline12345 => format!("市民来电反映：{place}{building}号楼{text}"),
            pb::Channel::Mailbox => format!("来信反映：{place}{building}号楼{text}"),
            pb::Channel::WalkIn => format!("来访反映：{place}{building}号楼{text}"),
            pb::Channel::Import => format!("（数字城管平台转入）{place}：{text}"),
            _ => format!("{place}{building}号楼业主反映：{text}"),
        };
        if urgent {
            content.push_str("，情况紧急，存在安全隐患");
        }
        content.push('。');
        let received_at = registered_at
            - match channel {
                pb::Channel::Hotline => rng.minutes(1, 20),
                pb::Channel::Hotline12345 => rng.minutes(10, 360),
                pb::Channel::Mailbox => rng.days(0.5, 3.0),
                pb::Channel::Import => rng.days(1.0, 5.0),
                _ => rng.minutes(0, 15),
            };
        let ticket = if channel == pb::Channel::Hotline12345 {
            format!("FZ12345-{}-{:05}", registered_at.format("%Y%m%d"), rng.int(1, 99_999))
        } else {
            String::new()
        };
        Lead {
            id: String::new(),
            company,
            community,
            resident,
            channel,
            ticket,
            content,
            received_at,
            registrar: rng.below(ZJ_REGISTRARS.len()),
            category,
            urgent,
            major,
            quick: rng.chance(0.25),
            misroute,
            // One lead in about forty, fixed by its receipt instant (no draw, so that nothing
            // else of the city shifts with it).
            buck_pass: !urgent
                && misroute.is_none()
                && split.is_none()
                && penalty.is_none()
                && received_at.timestamp().rem_euclid(40) == 7,
            split,
            regrade: !major && rng.chance(0.03),
            substantiated: rng.chance(self.city.companies[company].substantiation),
            penalty,
            send_back: rng.chance(0.07),
            next: Step::Register,
            work_at: registered_at,
            next_report: None,
            transferred_at: None,
            close_at: registered_at,
            plan_at: None,
            reports: 0,
            finding_recorded: false,
            fed_back_complainant: false,
            fed_back_hotline: false,
            reviews: 0,
            follow_ups: 0,
        }
    }

    // --- one instant ------------------------------------------------------------------------

    /// Everything due by `now`, concurrently, on the clock moved to `now`; then the answers in
    /// the order the commands were planned.
    async fn run_slot(&mut self, now: DateTime<FixedOffset>) -> Result<()> {
        let mut due = Vec::new();
        let mut companies_now = HashSet::new();
        while let Some(Reverse((instant, _, _))) = self.queue.peek() {
            if *instant > now {
                break;
            }
            let Some(Reverse((_, _, task))) = self.queue.pop() else { break };
            // One command per company stream at a time: the rest wait for the next slot.
            if let Task::Company(company, _) = &task
                && !companies_now.insert(*company)
            {
                self.push(now + TimeDelta::minutes(SLOT_MINUTES), task);
                continue;
            }
            due.push(task);
        }
        if due.is_empty() {
            return Ok(());
        }
        self.clock.set(now);
        let mut planned = Vec::new();
        for task in due {
            let prepared = match &task {
                Task::Lead(index) => self.prepare_lead(*index, now),
                Task::Company(company, action) => {
                    self.with_company_rng(|simulation| simulation.prepare_company(*company, action, now))
                }
            };
            if let Some((who, call)) = prepared {
                planned.push((task, who, call));
            }
        }
        let mut running = JoinSet::new();
        for (position, (_, who, call)) in planned.iter().enumerate() {
            let clients = self.clients.get(who).cloned().ok_or_else(|| anyhow!("no token for {who:?}"))?;
            let call = call.clone();
            running.spawn(async move { (position, call.send(clients).await) });
        }
        let mut answers: Vec<Option<Result<pb::CommandResult, Status>>> = (0..planned.len()).map(|_| None).collect();
        while let Some(joined) = running.join_next().await {
            let (position, answer) = joined.context("a command task failed")?;
            answers[position] = Some(answer);
        }
        for ((task, who, call), answer) in planned.into_iter().zip(answers) {
            let answer = answer.expect("every command answered");
            match answer {
                Ok(result) => {
                    *self.report.commands.entry(call.name()).or_default() += 1;
                    match task {
                        Task::Lead(index) => self.lead_done(index, &call, &result, now),
                        Task::Company(company, action) => self.company_done(company, &action, &call, now),
                    }
                }
                Err(status) if is_fatal(status.code()) => {
                    bail!("{} by {who:?} at {now} failed: {status}", call.name());
                }
                Err(status) => {
                    let subject = match &task {
                        Task::Lead(index) => self.leads[*index].id.clone(),
                        Task::Company(company, _) => self.city.companies[*company].uscc.clone(),
                    };
                    self.refused(&call, &subject, &status, now);
                    match task {
                        Task::Lead(index) => self.leads[index].next = Step::Done,
                        // The exit condition may have ended meanwhile; 住建 looks again.
                        Task::Company(company, CompanyAction::StartExit) => {
                            self.city.companies[company].exit_planned = false;
                        }
                        Task::Company(..) => {}
                    }
                }
            }
        }
        Ok(())
    }

    fn refused(&mut self, call: &Call, subject: &str, status: &Status, now: DateTime<FixedOffset>) {
        let key = format!("{} {:?}", call.name(), status.code());
        *self.report.refused.entry(key).or_default() += 1;
        if self.report.refusal_examples.len() < 20 {
            self.report.refusal_examples.push(format!("{now} {} {subject}: {}", call.name(), status.message()));
        }
    }

    // --- leads ------------------------------------------------------------------------------

    /// Who does the lead's next step, and the command, or `None` when there is nothing to do.
    fn prepare_lead(&mut self, index: usize, now: DateTime<FixedOffset>) -> Option<(Who, Call)> {
        let report_due = {
            let lead = &self.leads[index];
            lead.next_report.is_some_and(|report| report <= lead.work_at && report <= now)
        };
        let request_id = self.request_id();
        let lead = &self.leads[index];
        let district = self.city.communities[lead.community].district;
        let body = self.city.categories[lead.category].body;
        let handler = Who::handler_of(body, district);
        let complaint_id = lead.id.clone();
        if report_due {
            let number = lead.reports + 1;
            let summary = format!("第{number}次进展报告：已按计划推进整改，已向投诉人和住建部门报告");
            return Some((
                handler,
                Call::ReportProgress(pb::ReportProgressRequest { request_id, complaint_id, summary }),
            ));
        }
        let registrar = Who::RegistrarZj(lead.registrar);
        let call = match lead.next {
            Step::Done => return None,
            Step::Register => {
                let complainant = match lead.resident {
                    None => pb::Complainant { anonymous: true, ..pb::Complainant::default() },
                    Some(resident) => {
                        let resident = &self.city.residents[resident];
                        pb::Complainant {
                            anonymous: false,
                            name: resident.name.clone(),
                            contact: resident.contact.clone(),
                            id_number: resident.id_number.clone(),
                        }
                    }
                };
                let company = &self.city.companies[lead.company];
                // Interpretation 22: a lead in an unmanaged estate (失管小区) names no company.
                let company = (!self.city.is_unmanaged(lead.community))
                    .then(|| pb::CompanyRef { uscc: company.uscc.clone(), name: company.name.clone() });
                let request = pb::RegisterRequest {
                    request_id,
                    channel: lead.channel.into(),
                    received_at: Some(timestamp(lead.received_at)),
                    complainant: Some(complainant),
                    content: lead.content.clone(),
                    company,
                    place: Some(self.city.place(lead.community)),
                    hotline_ticket: lead.ticket.clone(),
                };
                let who = if lead.came_by_12345() { Who::RegistrarXz } else { registrar };
                return Some((who, Call::Register(request)));
            }
            Step::Classify => {
                let category = lead.misroute.unwrap_or(lead.category);
                let split = lead
                    .split
                    .filter(|_| lead.misroute.is_none())
                    .map(|split| pb::SplitLead { category: self.city.categories[split].code.clone() })
                    .into_iter()
                    .collect();
                Call::Classify(pb::ClassifyRequest {
                    request_id,
                    complaint_id,
                    category: self.city.categories[category].code.clone(),
                    urgency: if lead.urgent { pb::Urgency::Urgent } else { pb::Urgency::Normal }.into(),
                    complexity: if lead.major { pb::Complexity::Major } else { pb::Complexity::General }.into(),
                    split,
                })
            }
            Step::NotifyUrgent => {
                let notified = if body == BodyCode::ZJ { BodyCode::JB } else { body };
                Call::NotifyUrgent(pb::NotifyUrgentRequest {
                    request_id,
                    complaint_id,
                    notified_body: pb_body(notified).into(),
                    emergency_measures: "已通知责任单位立即到场处置，设置警戒区域，疏散相关人员".to_owned(),
                    district_report: "已同步电话报告区委、区政府值班室".to_owned(),
                })
            }
            Step::Transfer => {
                let category = lead.misroute.unwrap_or(lead.category);
                let to = self.city.categories[category].body;
                let method =
                    if self.rng.chance(0.85) { pb::TransferMethod::System } else { pb::TransferMethod::Written };
                Call::Transfer(pb::TransferRequest {
                    request_id,
                    complaint_id,
                    to: pb_body(to).into(),
                    method: method.into(),
                    note: "请依职责核查处理，并按时限反馈".to_owned(),
                })
            }
            Step::ReturnTransfer => {
                // A misrouted lead goes back from the wrong body; a lead returned to pass the
                // buck (interpretation 27) from its own.
                let wrong = self.city.categories[lead.misroute.unwrap_or(lead.category)].body;
                let request = pb::ReturnTransferRequest {
                    request_id,
                    complaint_id,
                    reason: "经核实不属于本单位职责范围，请重新分转".to_owned(),
                };
                return Some((Who::handler_of(wrong, district), Call::ReturnTransfer(request)));
            }
            // Interpretation 27: 住建 reviews the return: the registrar's own misrouting is
            // accepted, a return of the body's own matter rejected as buck-passing (推诿).
            Step::ReviewReturn => Call::ReviewReturn(pb::ReviewReturnRequest {
                request_id,
                complaint_id,
                accept: !lead.buck_pass,
                reason: if lead.buck_pass {
                    "经审核，该事项属于本单位职责，退回理由不成立，请依职责办理".to_owned()
                } else {
                    "经审核，确属分转错误，同意退回并重新分转".to_owned()
                },
            }),
            Step::Accept => Call::Accept(pb::AcceptRequest { request_id, complaint_id }),
            Step::Regrade => Call::Regrade(pb::RegradeRequest {
                request_id,
                complaint_id,
                reason: if lead.penalty.is_some() {
                    "涉及立案查处，办理周期较长，按重大复杂问题办理".to_owned()
                } else {
                    "涉及多方主体和专项资金，按重大复杂问题办理".to_owned()
                },
            }),
            Step::SubmitPlan => {
                let transferred = lead.transferred_at.unwrap_or(now);
                let span = if lead.penalty.is_some() { self.rng.days(100.0, 115.0) } else { self.rng.days(30.0, 70.0) };
                let resolve_by = (transferred + span).date_naive().max(now.date_naive() + TimeDelta::days(7));
                Call::SubmitPlan(pb::SubmitPlanRequest {
                    request_id,
                    complaint_id,
                    plan: "成立专班，分阶段整改：核查取证、制定方案、组织整改、验收销号".to_owned(),
                    resolve_by: resolve_by.to_string(),
                })
            }
            Step::OpenPenalty => Call::OpenPenaltyMatter(pb::OpenPenaltyMatterRequest {
                request_id,
                complaint_id,
                received_at: Some(timestamp(lead.transferred_at.unwrap_or(now).min(now))),
            }),
            Step::VerifyPenalty => {
                let warranted = lead.penalty.as_ref().is_some_and(|penalty| penalty.warranted);
                Call::VerifyPenaltyMatter(pb::VerifyPenaltyMatterRequest {
                    request_id,
                    complaint_id,
                    outcome: if warranted {
                        pb::PenaltyVerification::CaseWarranted
                    } else {
                        pb::PenaltyVerification::NoCase
                    }
                    .into(),
                    summary: if warranted {
                        "经现场核查，违法事实基本清楚，拟立案查处".to_owned()
                    } else {
                        "经核查，未发现违法事实，不予立案".to_owned()
                    },
                })
            }
            Step::FilePenalty => Call::FilePenaltyCase(pb::FilePenaltyCaseRequest {
                request_id,
                complaint_id,
                case_number: format!("榕{}罚立〔{}〕{}号", body.as_str(), now.year(), self.rng.int(100, 9999)),
            }),
            Step::ExtendPenalty => {
                let days = lead.penalty.as_ref().and_then(|penalty| penalty.extension).unwrap_or(30);
                Call::ExtendPenaltyPeriod(pb::ExtendPenaltyPeriodRequest {
                    request_id,
                    complaint_id,
                    days,
                    approved_by: format!("{}负责人", Who::handler_of(body, district).person(&self.city)),
                })
            }
            Step::DecidePenalty => {
                let imposed = self.rng.chance(0.85);
                let fine = self.rng.int(5, 200) * 100_000;
                Call::DecidePenalty(pb::DecidePenaltyRequest {
                    request_id,
                    complaint_id,
                    imposed,
                    description: if imposed {
                        format!("责令限期改正，并处罚款{}元", fine / 100)
                    } else {
                        String::new()
                    },
                    fine_fen: if imposed { fine } else { 0 },
                    reason: if imposed {
                        String::new()
                    } else {
                        "当事人已主动改正，违法情节轻微".to_owned()
                    },
                })
            }
            Step::PenaltyFeedbackComplainant | Step::FeedbackComplainant => {
                Call::GiveFeedback(pb::GiveFeedbackRequest {
                    request_id,
                    complaint_id,
                    recipient: pb::FeedbackRecipient::Complainant.into(),
                    content: if lead.next == Step::PenaltyFeedbackComplainant {
                        "已电话告知投诉人处罚结果".to_owned()
                    } else {
                        "已电话告知投诉人核查处理情况，投诉人表示知悉".to_owned()
                    },
                })
            }
            Step::PenaltyFeedbackTransferringBody => Call::GiveFeedback(pb::GiveFeedbackRequest {
                request_id,
                complaint_id,
                recipient: pb::FeedbackRecipient::TransferringBody.into(),
                content: "处罚结果已书面反馈区住建局".to_owned(),
            }),
            Step::FeedbackHotline => Call::GiveFeedback(pb::GiveFeedbackRequest {
                request_id,
                complaint_id,
                recipient: pb::FeedbackRecipient::Hotline12345.into(),
                content: "办理情况已在12345平台回复".to_owned(),
            }),
            Step::RecordFinding => {
                let substantiated =
                    lead.penalty.as_ref().map_or(lead.substantiated, |penalty| penalty.warranted || lead.substantiated);
                Call::RecordFinding(pb::RecordFindingRequest {
                    request_id,
                    complaint_id,
                    finding: if substantiated { pb::Finding::Substantiated } else { pb::Finding::Unsubstantiated }
                        .into(),
                    summary: if substantiated {
                        "经现场核查，反映情况属实，已责令物业限期整改".to_owned()
                    } else {
                        "经现场核查，反映情况与实际不符".to_owned()
                    },
                    // Interpretation 22: a matter of residents' conduct (高空抛物 and the like) is
                    // not the company's by default; for one in three of them the body finds the
                    // company failed to stop and report it, and says so.
                    attribution: (substantiated
                        && !self.city.categories[lead.category].attributable
                        && lead.received_at.timestamp() % 3 == 0)
                        .then(|| pb::Attribution {
                            attributable: true,
                            reason: "物业服务企业未及时劝阻制止并向有关部门报告，负有管理责任".to_owned(),
                        }),
                })
            }
            Step::Sign => Call::SignClosure(pb::SignClosureRequest {
                request_id,
                complaint_id,
                opinion: "问题已处理完毕，同意办结".to_owned(),
            }),
            Step::Countersign => {
                let who = if self.rng.chance(0.8) { Who::StreetOffice(district) } else { Who::Community(district) };
                let request = pb::CountersignClosureRequest {
                    request_id,
                    complaint_id,
                    opinion: "经街道（社区）复核，整改到位，同意办结".to_owned(),
                };
                return Some((who, Call::CountersignClosure(request)));
            }
            Step::Review => {
                let cancel = !(lead.send_back && lead.reviews == 0);
                let request = pb::ReviewClosureRequest {
                    request_id,
                    complaint_id,
                    cancel,
                    reason: if cancel {
                        String::new()
                    } else {
                        "整改材料不全，未见现场照片，请补充后重新办结".to_owned()
                    },
                };
                return Some((Who::Reviewer(body), Call::ReviewClosure(request)));
            }
            Step::FollowUp => {
                let chance = match lead.follow_ups {
                    0 => 0.12,
                    1 => 0.05,
                    _ => 0.0,
                };
                let satisfied = !self.rng.chance(chance);
                let request = pb::RecordSatisfactionRequest {
                    request_id,
                    complaint_id,
                    satisfaction: if satisfied { pb::Satisfaction::Satisfied } else { pb::Satisfaction::Dissatisfied }
                        .into(),
                    comment: if satisfied {
                        "回访诉求人，对处理结果表示满意".to_owned()
                    } else {
                        "回访诉求人，表示问题仍未解决，不满意".to_owned()
                    },
                };
                let who = if self.rng.chance(0.7) { Who::FollowUp } else { Who::RegistrarXz };
                return Some((who, Call::RecordSatisfaction(request)));
            }
        };
        let who = match lead.next {
            Step::Classify | Step::NotifyUrgent | Step::Transfer | Step::ReviewReturn => registrar,
            _ => handler,
        };
        Some((who, call))
    }

    /// Takes a lead's answer and plans its next step.
    fn lead_done(&mut self, index: usize, call: &Call, result: &pb::CommandResult, now: DateTime<FixedOffset>) {
        if let Call::ReportProgress(_) = call {
            let lead = &mut self.leads[index];
            lead.reports += 1;
            let plan_at = lead.plan_at.unwrap_or(now);
            let reports = lead.reports;
            let next = self.report_time(plan_at, reports + 1);
            self.leads[index].next_report = Some(self.not_before(now, next));
            self.reschedule(index);
            return;
        }
        let step = self.leads[index].next;
        let body = self.city.categories[self.leads[index].category].body;
        match step {
            Step::Register => {
                self.report.registered += 1;
                let lead = &mut self.leads[index];
                lead.id = result.complaint_id.clone();
                if !self.city.is_unmanaged(lead.community) {
                    self.city.companies[lead.company].leads_registered += 1;
                }
                let next = if lead.urgent {
                    self.duty_after(now, |rng| rng.minutes(5, 40))
                } else if self.rng.chance(0.25) {
                    self.working_days_after(now, 1)
                } else {
                    self.office_after(now, |rng| rng.minutes(20, 300))
                };
                self.set(index, Step::Classify, next);
            }
            Step::Classify => {
                for child in &result.created_complaint_ids {
                    self.open_linked_lead(index, child, now);
                }
                let lead = &mut self.leads[index];
                lead.split = None;
                if lead.urgent {
                    let late = self.rng.chance(0.1);
                    let delay = if late { self.rng.minutes(120, 300) } else { self.rng.minutes(10, 50) };
                    let next = self.duty(now + delay);
                    self.set(index, Step::NotifyUrgent, next);
                } else {
                    let next = self.transfer_time(now);
                    self.set(index, Step::Transfer, next);
                }
            }
            Step::NotifyUrgent => {
                self.leads[index].transferred_at = Some(now);
                let next = self.duty_after(now, |rng| rng.minutes(10, 90));
                self.set(index, Step::Accept, next);
            }
            Step::Transfer => {
                self.leads[index].transferred_at = Some(now);
                if let Some(wrong) = self.leads[index].misroute {
                    let wrong_body = self.city.categories[wrong].body;
                    let delay = if diligent(wrong_body) { self.rng.days(0.2, 2.0) } else { self.rng.days(1.0, 4.0) };
                    let next = self.office(now + delay);
                    self.set(index, Step::ReturnTransfer, next);
                } else if self.leads[index].buck_pass {
                    let next = self.office(now + TimeDelta::hours(30));
                    self.set(index, Step::ReturnTransfer, next);
                } else {
                    let delay = if diligent(body) { self.rng.days(0.02, 0.8) } else { self.rng.days(0.2, 2.5) };
                    let next = self.office(now + delay);
                    self.set(index, Step::Accept, next);
                }
            }
            Step::ReturnTransfer => {
                if !self.leads[index].buck_pass {
                    self.leads[index].misroute = None;
                    self.leads[index].transferred_at = None;
                }
                let next = self.office_after(now, |rng| rng.days(0.05, 1.0));
                self.set(index, Step::ReviewReturn, next);
            }
            // A rejected return leaves the transfer standing: the body must accept the lead.
            Step::ReviewReturn if self.leads[index].buck_pass => {
                self.leads[index].buck_pass = false;
                let next = self.office(now + TimeDelta::hours(2));
                self.set(index, Step::Accept, next);
            }
            Step::ReviewReturn => {
                let next = self.office_after(now, |rng| rng.days(0.02, 0.5));
                self.set(index, Step::Classify, next);
            }
            Step::Accept => self.accepted(index, now),
            Step::Regrade => {
                self.leads[index].major = true;
                let next = self.plan_time(index, now);
                self.set(index, Step::SubmitPlan, next);
            }
            Step::SubmitPlan => {
                let resolve_by = match call {
                    Call::SubmitPlan(request) => NaiveDate::parse_from_str(&request.resolve_by, "%Y-%m-%d").ok(),
                    _ => None,
                }
                .unwrap_or(now.date_naive() + TimeDelta::days(30));
                let due = at(resolve_by + TimeDelta::days(1), hm(0, 0));
                let close_at =
                    if self.rng.chance(0.15) { due + self.rng.days(1.0, 12.0) } else { due - self.rng.days(0.5, 10.0) };
                let first_report = self.report_time(now, 1);
                let lead = &mut self.leads[index];
                lead.plan_at.get_or_insert(now);
                lead.close_at = close_at;
                lead.next_report = Some(first_report);
                self.continue_handling(index, now);
            }
            Step::OpenPenalty => {
                let received = self.leads[index].transferred_at.unwrap_or(now).min(now);
                let late = self.rng.chance(0.15);
                let working_days = if late { self.rng.int(16, 22) } else { self.rng.int(3, 12) } as u32;
                let verify_at = self.working_days_after(received, working_days);
                if let Some(penalty) = &mut self.leads[index].penalty {
                    penalty.opened = true;
                    penalty.verify_at = Some(verify_at);
                }
                self.continue_handling(index, now);
            }
            Step::VerifyPenalty => {
                let close_at = now + self.rng.days(1.0, 5.0);
                let lead = &mut self.leads[index];
                if let Some(penalty) = &mut lead.penalty {
                    penalty.verified = true;
                    if !penalty.warranted {
                        lead.close_at = lead.close_at.max(close_at);
                    }
                }
                self.continue_handling(index, now);
            }
            Step::FilePenalty => {
                let (extension, late) =
                    (self.leads[index].penalty.as_ref().and_then(|penalty| penalty.extension), self.rng.chance(0.08));
                // The one extension only where its period still ends inside the calendar.
                let extension = extension.filter(|days| self.calendar.due(now, Period::Days(90 + days)).is_ok());
                let decide_at = match extension {
                    Some(days) => now + self.rng.days(88.0, 88.0 + f64::from(days) - 1.0),
                    None if late => now + self.rng.days(92.0, 105.0),
                    None => now + self.rng.days(20.0, 85.0),
                };
                // Interpretation 24: PEN-1's periods govern from the filing; no progress report
                // is owed.
                self.leads[index].next_report = None;
                if let Some(penalty) = &mut self.leads[index].penalty {
                    penalty.filed_at = Some(now);
                    penalty.extension = extension;
                    penalty.decide_at = Some(decide_at);
                }
                self.continue_handling(index, now);
            }
            Step::ExtendPenalty => {
                if let Some(penalty) = &mut self.leads[index].penalty {
                    penalty.extended = true;
                }
                self.continue_handling(index, now);
            }
            Step::DecidePenalty => {
                if let Some(penalty) = &mut self.leads[index].penalty {
                    penalty.decided = true;
                }
                self.continue_handling(index, now);
            }
            Step::PenaltyFeedbackComplainant => {
                let lead = &mut self.leads[index];
                lead.fed_back_complainant = true;
                if let Some(penalty) = &mut lead.penalty {
                    penalty.fed_back_complainant = true;
                }
                self.continue_handling(index, now);
            }
            Step::PenaltyFeedbackTransferringBody => {
                let close_at = now + self.rng.days(0.5, 3.0);
                let lead = &mut self.leads[index];
                if let Some(penalty) = &mut lead.penalty {
                    penalty.fed_back_transferring_body = true;
                }
                lead.close_at = lead.close_at.max(close_at);
                self.continue_handling(index, now);
            }
            Step::RecordFinding => {
                let lead = &mut self.leads[index];
                lead.finding_recorded = true;
                let attributable = |request: &pb::RecordFindingRequest| match &request.attribution {
                    Some(attribution) => attribution.attributable,
                    None => self.city.categories[lead.category].attributable,
                };
                if let Call::RecordFinding(request) = call
                    && request.finding() == pb::Finding::Substantiated
                    && attributable(request)
                    && !self.city.is_unmanaged(lead.community)
                {
                    let community = lead.community;
                    self.city.companies[lead.company].substantiated_in.insert(community);
                }
                self.continue_handling(index, now);
            }
            Step::FeedbackComplainant => {
                self.leads[index].fed_back_complainant = true;
                self.continue_handling(index, now);
            }
            Step::FeedbackHotline => {
                self.leads[index].fed_back_hotline = true;
                self.continue_handling(index, now);
            }
            Step::Sign => {
                self.leads[index].next_report = None;
                let handled_by_zj = body == BodyCode::ZJ;
                if handled_by_zj {
                    let next = self.office_after(now, |rng| rng.days(0.3, 3.0));
                    self.set(index, Step::Countersign, next);
                } else {
                    let next = self.office_after(now, |rng| rng.days(1.0, 6.0));
                    self.set(index, Step::Review, next);
                }
            }
            Step::Countersign => {
                let next = self.office_after(now, |rng| rng.days(1.0, 6.0));
                self.set(index, Step::Review, next);
            }
            Step::Review => {
                self.leads[index].reviews += 1;
                let cancelled = matches!(call, Call::ReviewClosure(request) if request.cancel);
                if !cancelled {
                    self.new_round(index, now);
                } else if self.leads[index].came_by_12345() {
                    let next = self.office_after(now, |rng| rng.days(0.5, 3.0));
                    self.set(index, Step::FollowUp, next);
                } else {
                    self.leads[index].next = Step::Done;
                }
            }
            Step::FollowUp => {
                self.leads[index].follow_ups += 1;
                let dissatisfied = matches!(call, Call::RecordSatisfaction(request)
                    if request.satisfaction() == pb::Satisfaction::Dissatisfied);
                if dissatisfied {
                    self.new_round(index, now);
                } else {
                    self.leads[index].next = Step::Done;
                }
            }
            Step::Done => {}
        }
    }

    /// A linked lead split off at classification: the same complaint, another body's matter.
    fn open_linked_lead(&mut self, parent: usize, id: &str, now: DateTime<FixedOffset>) {
        self.report.linked += 1;
        let Some(category) = self.leads[parent].split else { return };
        let body = self.city.categories[category].body;
        let code = self.city.categories[category].code.clone();
        let parent_lead = &self.leads[parent];
        let penalty = self
            .rng
            .chance(penalty_chance(&code, body))
            .then(|| Penalty { warranted: self.rng.chance(0.7), ..Penalty::default() });
        let lead = Lead {
            id: id.to_owned(),
            company: parent_lead.company,
            community: parent_lead.community,
            resident: parent_lead.resident,
            channel: parent_lead.channel,
            ticket: parent_lead.ticket.clone(),
            content: parent_lead.content.clone(),
            received_at: parent_lead.received_at,
            registrar: parent_lead.registrar,
            category,
            urgent: parent_lead.urgent,
            major: parent_lead.major,
            quick: self.rng.chance(0.25),
            misroute: None,
            buck_pass: false,
            split: None,
            regrade: false,
            penalty,
            substantiated: self.rng.chance(self.city.companies[parent_lead.company].substantiation),
            send_back: self.rng.chance(0.05),
            next: Step::Transfer,
            work_at: now,
            next_report: None,
            transferred_at: None,
            close_at: now,
            plan_at: None,
            reports: 0,
            finding_recorded: false,
            fed_back_complainant: false,
            fed_back_hotline: false,
            reviews: 0,
            follow_ups: 0,
        };
        let urgent = lead.urgent;
        self.leads.push(lead);
        let child = self.leads.len() - 1;
        if urgent {
            let next = self.duty_after(now, |rng| rng.minutes(10, 60));
            self.set(child, Step::NotifyUrgent, next);
        } else {
            let next = self.transfer_time(now);
            self.set(child, Step::Transfer, next);
        }
    }

    /// When 住建 transfers a lead: mostly within days, sometimes past the 7 working days (TRF-2).
    fn transfer_time(&mut self, now: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        let working_days = match self.rng.unit() {
            u if u < 0.55 => 0,
            u if u < 0.85 => self.rng.int(1, 3),
            u if u < 0.93 => self.rng.int(4, 6),
            _ => self.rng.int(8, 12),
        } as u32;
        self.working_days_after(now, working_days)
    }

    /// When a body submits its plan for a major matter (HDL-2: within 7 days of the transfer).
    fn plan_time(&mut self, index: usize, now: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        let transferred = self.leads[index].transferred_at.unwrap_or(now);
        let offset = if self.rng.chance(0.1) { self.rng.days(8.0, 13.0) } else { self.rng.days(2.0, 6.0) };
        let instant = self.office(transferred + offset);
        self.not_before(now, instant)
    }

    /// When the n-th monthly progress report is made: shortly before it is due, n months after
    /// the plan, or a few days late.
    fn report_time(&mut self, plan_at: DateTime<FixedOffset>, n: u32) -> DateTime<FixedOffset> {
        let due = plan_at.checked_add_months(Months::new(n)).unwrap_or(plan_at + TimeDelta::days(30 * i64::from(n)));
        let instant = if self.rng.chance(0.15) { due + self.rng.days(1.0, 6.0) } else { due - self.rng.days(0.2, 4.0) };
        self.office(instant)
    }

    /// The body has accepted the lead: how it will be handled.
    fn accepted(&mut self, index: usize, now: DateTime<FixedOffset>) {
        let lead = &self.leads[index];
        let body = self.city.categories[lead.category].body;
        let transferred = lead.transferred_at.unwrap_or(now);
        if lead.urgent {
            let close_at = now + self.rng.days(0.5, 4.0);
            self.leads[index].close_at = close_at;
            self.continue_handling(index, now);
            return;
        }
        // Interpretation 17: a re-grade only while the general period runs.
        let can_regrade = now + TimeDelta::days(1) < transferred + TimeDelta::days(6);
        if !lead.major && lead.regrade && can_regrade {
            let next = self.office_after(now, |rng| rng.days(0.1, 1.0));
            self.set(index, Step::Regrade, next);
            return;
        }
        // Interpretation 24: a penalty case, once filed, supersedes the handling deadline, so a
        // penalty lead needs no plan to buy time; interpretation 25: a major matter resolved
        // within its month owes none.
        if lead.major && lead.penalty.is_none() && !lead.quick {
            let next = self.plan_time(index, now);
            self.set(index, Step::SubmitPlan, next);
            return;
        }
        let (low, high, late) = pace(body);
        let days = if lead.major {
            self.rng.between(2.0, 6.5)
        } else if self.rng.chance(late) {
            self.rng.between(7.5, 22.0)
        } else {
            self.rng.between(low, high)
        };
        self.leads[index].close_at = transferred + TimeDelta::seconds((days * 86_400.0) as i64);
        self.continue_handling(index, now);
    }

    /// A closure sent back by the city level, or a lead reopened after a dissatisfied
    /// follow-up: handled again under a fresh period of its grade.
    fn new_round(&mut self, index: usize, now: DateTime<FixedOffset>) {
        let body = self.city.categories[self.leads[index].category].body;
        let (low, high, late) = pace(body);
        let lead = &self.leads[index];
        let days = if lead.urgent {
            self.rng.between(1.0, 4.0)
        } else if lead.major {
            self.rng.between(5.0, 25.0)
        } else if self.rng.chance(late) {
            self.rng.between(7.5, 15.0)
        } else {
            self.rng.between(low.min(2.0), high)
        };
        let lead = &mut self.leads[index];
        lead.close_at = now + TimeDelta::seconds((days * 86_400.0) as i64);
        lead.fed_back_complainant = false;
        lead.fed_back_hotline = false;
        self.continue_handling(index, now);
    }

    /// The next step of a lead being handled: the penalty matter first, then the finding,
    /// feedback and signature by the time the body means to close.
    fn continue_handling(&mut self, index: usize, now: DateTime<FixedOffset>) {
        let lead = &self.leads[index];
        let anonymous = lead.anonymous();
        if let Some(penalty) = &lead.penalty
            && !penalty.complete(anonymous)
        {
            let (step, instant) = if !penalty.opened {
                (Step::OpenPenalty, now + self.rng.days(0.3, 3.0))
            } else if !penalty.verified {
                (Step::VerifyPenalty, penalty.verify_at.unwrap_or(now))
            } else if !lead.finding_recorded {
                (Step::RecordFinding, now + self.rng.minutes(60, 600))
            } else if penalty.filed_at.is_none() {
                (Step::FilePenalty, now + self.rng.days(1.0, 5.0))
            } else if !penalty.decided {
                match (penalty.extension, penalty.extended, penalty.filed_at) {
                    (Some(_), false, Some(filed)) => (Step::ExtendPenalty, filed + self.rng.days(60.0, 85.0)),
                    _ => (Step::DecidePenalty, penalty.decide_at.unwrap_or(now)),
                }
            } else if !anonymous && !penalty.fed_back_complainant {
                (Step::PenaltyFeedbackComplainant, now + self.rng.days(0.1, 2.0))
            } else {
                (Step::PenaltyFeedbackTransferringBody, now + self.rng.days(0.05, 1.0))
            };
            let instant = self.office(instant);
            let instant = self.not_before(now, instant);
            self.set(index, step, instant);
            return;
        }
        let close_at = lead.close_at;
        let (step, instant) = if !lead.finding_recorded {
            (Step::RecordFinding, close_at - self.rng.days(1.0, 2.0))
        } else if !anonymous && !lead.fed_back_complainant {
            (Step::FeedbackComplainant, close_at - self.rng.days(0.2, 0.6))
        } else if lead.came_by_12345() && !lead.fed_back_hotline {
            (Step::FeedbackHotline, now + self.rng.minutes(10, 60))
        } else {
            (Step::Sign, close_at)
        };
        let instant = self.office(instant);
        let instant = self.not_before(now, instant);
        self.set(index, step, instant);
    }

    fn set(&mut self, index: usize, step: Step, instant: DateTime<FixedOffset>) {
        let lead = &mut self.leads[index];
        lead.next = step;
        lead.work_at = instant;
        self.reschedule(index);
    }

    /// Queues the lead at its next instant: its next step or its next progress report.
    fn reschedule(&mut self, index: usize) {
        let lead = &self.leads[index];
        if lead.next == Step::Done {
            return;
        }
        let instant = lead.next_report.map_or(lead.work_at, |report| report.min(lead.work_at));
        self.push(instant, Task::Lead(index));
    }

    // --- companies --------------------------------------------------------------------------

    /// Credit ratings for every company in the first weeks, and the black list: one company
    /// listed long before the span (so on it for more than 6 months), one listed during it,
    /// and the first taken off again later.
    fn plan_company_records(&mut self, from: NaiveDate, days: u32) {
        let span_end = from + TimeDelta::days(i64::from(days));
        for company in 0..self.city.companies.len() {
            let offset = self.rng.days(1.0, 35.0);
            let instant = self.office(at(from, hm(9, 30)) + offset);
            self.push(instant, Task::Company(company, CompanyAction::CreditRating));
        }
        let n = self.city.companies.len();
        let long_listed = 3.min(n - 1);
        let instant = self.office_after(at(from, hm(10, 0)), |rng| rng.days(1.0, 6.0));
        self.push(instant, Task::Company(long_listed, CompanyAction::Blacklist { months_ago: 7 }));
        if days >= 30 {
            let removal = self.office(at(from, hm(10, 0)) + TimeDelta::days(i64::from(days) * 7 / 10));
            if removal.date_naive() < span_end {
                self.push(removal, Task::Company(long_listed, CompanyAction::RemoveFromBlacklist));
            }
        }
        let newly_listed = (n / 12).clamp(1, n - 1);
        let instant = self.office(at(from, hm(10, 0)) + TimeDelta::days(i64::from(days) / 3));
        self.push(instant, Task::Company(newly_listed, CompanyAction::Blacklist { months_ago: 0 }));
    }

    fn prepare_company(
        &mut self,
        company: usize,
        action: &CompanyAction,
        now: DateTime<FixedOffset>,
    ) -> Option<(Who, Call)> {
        if !self.city.companies[company].has_stream {
            // Nothing to record against a company nobody has complained about yet: try again
            // in a few days.
            let later = self.office_after(now, |rng| rng.days(3.0, 6.0));
            self.push(later, Task::Company(company, action.clone()));
            return None;
        }
        let request_id = self.company_request_id();
        let uscc = self.city.companies[company].uscc.clone();
        let district = self.city.company_district(company);
        let quality = self.city.companies[company].quality;
        let call = match action {
            CompanyAction::CreditRating => {
                let rating = match quality + self.rng.between(-0.1, 0.1) {
                    q if q < 0.45 => "D",
                    q if q < 0.62 => "C",
                    q if q < 0.8 => "B",
                    _ => "A",
                };
                (
                    Who::RegistrarZj(0),
                    Call::RecordCreditRating(pb::RecordCreditRatingRequest {
                        request_id,
                        uscc,
                        rating: rating.to_owned(),
                    }),
                )
            }
            CompanyAction::Blacklist { months_ago } => {
                let today = now.date_naive();
                let listed_on = today.checked_sub_months(Months::new(*months_ago)).unwrap_or(today);
                (
                    Who::RegistrarZj(0),
                    Call::RecordBlacklisting(pb::RecordBlacklistingRequest {
                        request_id,
                        uscc,
                        listed_on: listed_on.to_string(),
                    }),
                )
            }
            CompanyAction::RemoveFromBlacklist => (
                Who::RegistrarZj(0),
                Call::RecordBlacklistRemoval(pb::RecordBlacklistRemovalRequest {
                    request_id,
                    uscc,
                    removed_on: now.date_naive().to_string(),
                }),
            ),
            CompanyAction::Survey { community } => {
                let respondents = self.rng.int(40, 150) as u32;
                let share = (quality + self.rng.between(-0.12, 0.1)).clamp(0.2, 0.99);
                let satisfied = ((f64::from(respondents) * share).round() as u32).min(respondents);
                if satisfied * 100 < respondents * 60 {
                    self.report.surveys_below_60 += 1;
                }
                let who = if self.rng.chance(0.6) { Who::Handler(BodyCode::ZJ) } else { Who::StreetOffice(district) };
                (
                    who,
                    Call::RecordSurvey(pb::RecordSurveyRequest {
                        request_id,
                        uscc,
                        community: community.clone(),
                        respondents,
                        satisfied,
                        publication: format!("测评结果已于{}在{community}公告栏及业主群公示", now.date_naive()),
                    }),
                )
            }
            CompanyAction::RefuseRectification { community } => (
                if self.rng.chance(0.5) { Who::Handler(BodyCode::ZJ) } else { Who::StreetOffice(district) },
                Call::RecordRectificationRefused(pb::RecordRectificationRefusedRequest {
                    request_id,
                    uscc,
                    community: community.clone(),
                    detail: "责令整改通知书送达后逾期未整改，拒不落实整改措施".to_owned(),
                }),
            ),
            CompanyAction::Downgrade { community } => {
                let company_state = &self.city.companies[company];
                let current = company_state.grades.get(community).copied().unwrap_or(company_state.base_grade);
                (
                    Who::Handler(BodyCode::ZJ),
                    Call::DowngradeGrade(pb::DowngradeGradeRequest {
                        request_id,
                        uscc,
                        community: community.clone(),
                        to_grade: u32::from(current) + 1,
                    }),
                )
            }
            CompanyAction::FeeStandard { community } => {
                if self.rng.chance(0.75) {
                    (
                        Who::Handler(BodyCode::FG),
                        Call::EnforceFeeStandard(pb::EnforceFeeStandardRequest {
                            request_id,
                            uscc,
                            community: community.clone(),
                            detail: "已责令企业自下月起执行降级后的收费标准，抄送住建部门".to_owned(),
                        }),
                    )
                } else {
                    (
                        Who::Handler(BodyCode::FG),
                        Call::RefuseFeeStandard(pb::RefuseFeeStandardRequest {
                            request_id,
                            uscc,
                            community: community.clone(),
                            detail: "企业拒不执行降级后的收费标准，移交市场监管部门".to_owned(),
                        }),
                    )
                }
            }
            CompanyAction::Refund { community } => {
                let amount = self.rng.int(20, 300) * 1_000_000;
                (
                    Who::Handler(BodyCode::SJ),
                    Call::OrderRefund(pb::OrderRefundRequest {
                        request_id,
                        uscc,
                        community: community.clone(),
                        amount_fen: amount,
                        penalty: format!("责令退还多收费用{}元，并处罚款{}元", amount / 100, amount / 500),
                    }),
                )
            }
            CompanyAction::StartExit => {
                let street = self.city.districts[district].streets[0];
                (
                    Who::Handler(BodyCode::ZJ),
                    Call::StartExitProcedure(pb::StartExitProcedureRequest {
                        request_id,
                        uscc,
                        decision: format!("经研究，会同{street}启动该企业退出程序，做好项目交接和应急接管"),
                        street_office_official: Who::StreetOffice(district).person(&self.city),
                    }),
                )
            }
        };
        Some(call)
    }

    fn company_done(&mut self, company: usize, action: &CompanyAction, call: &Call, _now: DateTime<FixedOffset>) {
        let state = &mut self.city.companies[company];
        match (action, call) {
            (CompanyAction::Downgrade { community }, Call::DowngradeGrade(request)) => {
                state.grades.insert(community.clone(), u8::try_from(request.to_grade).unwrap_or(u8::MAX));
            }
            (CompanyAction::RefuseRectification { .. }, _) => state.refusals += 1,
            (CompanyAction::StartExit, _) => state.exit_started = true,
            _ => {}
        }
    }

    /// What the company's stream asks for now, seen through GetEnterprise: open company
    /// deadlines given to the body that owes them, exit where it has become possible, and now
    /// and then a refusal to rectify by a company under review that serves badly.
    fn company_needs(&mut self, company: usize, enterprise: &pb::Enterprise, now: DateTime<FixedOffset>) {
        let conditions: Vec<String> = enterprise.conditions.iter().map(|condition| condition.rule.clone()).collect();
        let state = &mut self.city.companies[company];
        state.conditions = conditions;
        state.exit_started = enterprise.exit_started;
        let mut plans = Vec::new();
        for deadline in &enterprise.open_deadlines {
            if !self.city.companies[company].taken_deadlines.insert(deadline.seq) {
                continue;
            }
            let community = deadline.community.clone();
            let late = self.rng.chance(0.15);
            let (action, delay) = match deadline.kind() {
                pb::DeadlineKind::Survey => (
                    CompanyAction::Survey { community },
                    if late { self.rng.days(11.0, 16.0) } else { self.rng.days(1.0, 9.0) },
                ),
                pb::DeadlineKind::Downgrade => (
                    CompanyAction::Downgrade { community },
                    if late { self.rng.days(6.0, 10.0) } else { self.rng.days(0.5, 4.0) },
                ),
                pb::DeadlineKind::FeeEnforce => (
                    CompanyAction::FeeStandard { community },
                    if late { self.rng.days(6.0, 9.0) } else { self.rng.days(0.5, 4.0) },
                ),
                pb::DeadlineKind::Refund => (CompanyAction::Refund { community }, self.rng.days(15.0, 70.0)),
                _ => continue,
            };
            plans.push((action, delay));
        }
        for (action, delay) in plans {
            let instant = self.office(now + delay);
            self.push(instant, Task::Company(company, action));
        }
        let state = &self.city.companies[company];
        let exits_planned = self.city.companies.iter().filter(|company| company.exit_planned).count();
        if state.conditions.iter().any(|rule| rule == "EXT-1")
            && !state.exit_started
            && !state.exit_planned
            && exits_planned < self.max_exits
        {
            self.city.companies[company].exit_planned = true;
            let instant = self.office_after(now, |rng| rng.days(2.0, 8.0));
            self.push(instant, Task::Company(company, CompanyAction::StartExit));
        }
        let state = &self.city.companies[company];
        let under_review = state.conditions.iter().any(|rule| rule == "GRD-1" || rule == "REG-4");
        if under_review && state.quality < 0.6 && state.refusals < 2 && !state.substantiated_in.is_empty() {
            let communities: Vec<usize> = state.substantiated_in.iter().copied().collect();
            if self.rng.chance(0.03) {
                let community = self.city.communities[*self.rng.pick(&communities)].name.clone();
                // Counted when planned, so one company does not collect refusals in a week.
                self.city.companies[company].refusals += 1;
                let instant = self.office_after(now, |rng| rng.days(0.5, 2.0));
                self.push(instant, Task::Company(company, CompanyAction::RefuseRectification { community }));
            }
        }
    }

    // --- days' ends -------------------------------------------------------------------------

    /// The day's end: the read models catch up, the deadline reactor records what was missed
    /// and escalates, and on working days 住建 looks at every company it knows.
    async fn end_of_day(&mut self, date: NaiveDate, working: bool) -> Result<()> {
        let evening = at(date, hm(22, 0));
        self.clock.set(evening);
        self.settle().await?;
        for company in &mut self.city.companies {
            company.has_stream = company.leads_registered > 0;
        }
        let pass =
            self.node.deadlines.pass().await.with_context(|| format!("the deadline reactor failed on {date}"))?;
        self.report.escalations += pass.escalated as u64;
        self.report.stale_candidates += pass.refused as u64;
        if working {
            self.settle().await?;
            self.look_at_companies(evening).await?;
            self.decide_referrals(date).await?;
            self.approve_bulletin(date).await?;
        }
        Ok(())
    }

    /// Interpretation 23: on the evening of the first working day after a month ends, 住建's
    /// official approves that month's public bulletin, which is frozen from then on.
    async fn approve_bulletin(&mut self, date: NaiveDate) -> Result<()> {
        let month = self.next_bulletin;
        let Some(next) = month.checked_add_months(Months::new(1)) else { return Ok(()) };
        if date < next {
            return Ok(());
        }
        let Some(clients) = self.clients.get(&Who::Official).cloned() else { bail!("no official's token") };
        let request = pb::ApproveBulletinRequest {
            request_id: format!("sim{}-bulletin-{}", self.seed, month.format("%Y-%m")),
            month: month.format("%Y-%m").to_string(),
            note: "经局长办公会审定，同意发布".to_owned(),
        };
        clients.read_models.clone().approve_bulletin(request).await.context("ApproveBulletin failed")?;
        *self.report.commands.entry("ApproveBulletin").or_default() += 1;
        self.next_bulletin = next;
        Ok(())
    }

    /// Interpretation 9: on a working day's evening, 住建's official decides the
    /// recommendations to refer pending since the day before: most are dismissed with the body's
    /// written explanation, about one in four referred. The draws come from a stream of their
    /// own, so that nothing else of the city shifts with them.
    async fn decide_referrals(&mut self, date: NaiveDate) -> Result<()> {
        let Some(clients) = self.clients.get(&Who::Official).cloned() else { bail!("no official's token") };
        let mut read_models = clients.read_models.clone();
        let pending = read_models
            .list_referrals(pb::ListReferralsRequest {
                status: pb::ReferralStatus::Pending.into(),
                ..Default::default()
            })
            .await
            .context("ListReferrals failed")?
            .into_inner()
            .referrals;
        self.report.queries += 1;
        let cutoff = at(date, hm(0, 0)).timestamp();
        for referral in pending {
            if referral.recommended_at.as_ref().is_none_or(|recommended| recommended.seconds >= cutoff) {
                continue;
            }
            let stream_hash = referral
                .stream
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3));
            let mut draws = Rng::new(self.seed ^ u64::from(referral.seq) ^ stream_hash);
            let decision = if draws.chance(0.25) {
                (pb::ReferralDecision::Referred, "经核查，承办单位逾期无正当理由，移送区纪委监委处理")
            } else {
                (pb::ReferralDecision::Dismissed, "承办单位已书面说明逾期原因并完成整改，不予移送")
            };
            let request_id = format!("sim{}-referral-{}-{}", self.seed, referral.stream, referral.seq);
            let call = if referral.complaint_id.is_empty() {
                Call::DecideCompanyReferral(pb::DecideCompanyReferralRequest {
                    request_id,
                    uscc: referral.company_uscc.clone(),
                    seq: referral.seq,
                    decision: decision.0.into(),
                    reason: decision.1.to_owned(),
                })
            } else {
                Call::DecideReferral(pb::DecideReferralRequest {
                    request_id,
                    complaint_id: referral.complaint_id.clone(),
                    seq: referral.seq,
                    decision: decision.0.into(),
                    reason: decision.1.to_owned(),
                })
            };
            let name = call.name();
            match call.clone().send(clients.clone()).await {
                Ok(_) => *self.report.commands.entry(name).or_default() += 1,
                Err(status) if is_fatal(status.code()) => bail!("{name} failed: {status}"),
                Err(status) => self.refused(&call, &referral.stream, &status, at(date, hm(22, 0))),
            }
        }
        Ok(())
    }

    /// GetEnterprise for every company with a stream, concurrently; what each asks for is
    /// taken in company order.
    async fn look_at_companies(&mut self, now: DateTime<FixedOffset>) -> Result<()> {
        let wanted: Vec<usize> =
            (0..self.city.companies.len()).filter(|&company| self.city.companies[company].has_stream).collect();
        let enterprises = self.enterprises(&wanted).await?;
        for (company, enterprise) in wanted.into_iter().zip(enterprises) {
            if let Some(enterprise) = enterprise {
                self.with_company_rng(|simulation| simulation.company_needs(company, &enterprise, now));
            }
        }
        Ok(())
    }

    async fn enterprises(&mut self, companies: &[usize]) -> Result<Vec<Option<pb::Enterprise>>> {
        let clients = self.clients.get(&Who::RegistrarZj(0)).cloned().ok_or_else(|| anyhow!("no registrar token"))?;
        let mut running = JoinSet::new();
        let mut answers: Vec<Option<_>> = (0..companies.len()).map(|_| None).collect();
        for (position, &company) in companies.iter().enumerate() {
            let mut queries = clients.queries.clone();
            let uscc = self.city.companies[company].uscc.clone();
            running.spawn(async move { (position, queries.get_enterprise(pb::GetEnterpriseRequest { uscc }).await) });
            // Keep a bounded number in flight.
            if running.len() >= 32
                && let Some(joined) = running.join_next().await
            {
                let (position, answer) = joined.context("a query task failed")?;
                answers[position] = Some(answer);
            }
        }
        while let Some(joined) = running.join_next().await {
            let (position, answer) = joined.context("a query task failed")?;
            answers[position] = Some(answer);
        }
        self.report.queries += companies.len() as u64;
        let mut enterprises = Vec::with_capacity(companies.len());
        for answer in answers {
            match answer.expect("every query answered") {
                Ok(response) => enterprises.push(Some(response.into_inner())),
                // A company whose first lead the reactor has not counted yet.
                Err(status) if status.code() == Code::NotFound => enterprises.push(None),
                Err(status) => bail!("GetEnterprise failed: {status}"),
            }
        }
        Ok(enterprises)
    }

    /// Waits until the log's head stays put and every read model has applied it: tousu's own
    /// reactions (company counts) are done, and the deadline reactor and the queries see
    /// everything written so far.
    async fn settle(&self) -> Result<()> {
        let started = Instant::now();
        let mut stable_since: Option<(u64, Instant)> = None;
        loop {
            let head = self.node.app.store().head().await.context("cannot read the log's head")?.map_or(0, |p| p.0);
            let statuses = self.node.supervisor.status();
            let caught_up =
                statuses.iter().all(|status| status.state == WorkerState::Live && status.checkpoint.position >= head);
            match stable_since {
                Some((seen, since)) if seen == head && caught_up => {
                    if since.elapsed() >= Duration::from_millis(30) {
                        return Ok(());
                    }
                }
                _ => stable_since = Some((head, Instant::now())),
            }
            if started.elapsed() > Duration::from_secs(120) {
                let behind: Vec<String> = statuses
                    .iter()
                    .filter(|status| status.state != WorkerState::Live || status.checkpoint.position < head)
                    .map(|status| {
                        format!(
                            "{} {} at {} of {}{}",
                            status.name,
                            status.state.as_str(),
                            status.checkpoint.position,
                            head,
                            status.last_error.as_deref().map(|error| format!(" ({error})")).unwrap_or_default()
                        )
                    })
                    .collect();
                bail!("the read models did not catch up with the log within 2 minutes: {}", behind.join("; "));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The final look: every company's conditions, the log's size and the read models' status.
    async fn finish(mut self) -> Result<Report> {
        self.settle().await?;
        let wanted: Vec<usize> =
            (0..self.city.companies.len()).filter(|&company| self.city.companies[company].has_stream).collect();
        for enterprise in self.enterprises(&wanted).await?.into_iter().flatten() {
            let holds = |rule: &str| enterprise.conditions.iter().any(|condition| condition.rule == rule);
            self.report.key_supervision += u64::from(holds("REG-4"));
            self.report.grade_review += u64::from(holds("GRD-1"));
            self.report.exit_possible += u64::from(holds("EXT-1"));
            self.report.exit_started += u64::from(enterprise.exit_started);
        }
        self.report.events = self.node.app.store().head().await?.map_or(0, |p| p.0);
        self.report.projections = self.node.supervisor.status();
        self.report.last_official_year = self.node.app.calendar().last_official_year();
        Ok(self.report)
    }
}

impl Report {
    fn print(&self, args: &SimulateArgs, elapsed: Duration, issued: &[Issued]) {
        let commands: u64 = self.commands.values().sum();
        let refused: u64 = self.refused.values().sum();
        let seconds = elapsed.as_secs_f64();
        println!(
            "simulated {} days from {} to {} in {:.1} s (seed {})",
            self.simulated_until.map_or(0, |date| (date - args.from).num_days() + 1),
            args.from,
            self.simulated_until.map(|date| date.to_string()).unwrap_or_default(),
            seconds,
            args.seed
        );
        println!(
            "leads: {} ({} registered, {} linked leads split off)",
            self.registered + self.linked,
            self.registered,
            self.linked
        );
        println!(
            "commands: {commands} ({:.0}/s), refused: {refused}; company queries: {}",
            commands as f64 / seconds.max(0.001),
            self.queries
        );
        let by_name: Vec<String> = self.commands.iter().map(|(name, count)| format!("{name} {count}")).collect();
        println!("  {}", by_name.join(", "));
        for (key, count) in &self.refused {
            println!("  refused {key}: {count}");
        }
        for example in &self.refusal_examples {
            println!("    e.g. {example}");
        }
        println!("events in the log: {}", self.events);
        let last_official = self.last_official_year.map_or_else(|| "none".to_owned(), |year| year.to_string());
        println!(
            "calendar: official schedules through {last_official}; deadlines reaching a later year are provisional \
             (暂定) and recomputed when its schedule is loaded (tousu calendar load FILE)"
        );
        println!(
            "escalations recorded by the deadline reactor: {} ({} candidates no longer applied)",
            self.escalations, self.stale_candidates
        );
        println!(
            "companies: {} under key supervision (REG-4), {} under grade review (GRD-1), {} eligible for exit \
             (EXT-1), {} in the exit procedure; {} surveys below 60 %",
            self.key_supervision, self.grade_review, self.exit_possible, self.exit_started, self.surveys_below_60
        );
        println!("read models:");
        for status in &self.projections {
            println!(
                "  {:<18} {:<11} checkpoint {} of {}{}",
                status.name,
                status.state.as_str(),
                status.checkpoint.position,
                status.head,
                status.last_error.as_deref().map(|error| format!("  last error: {error}")).unwrap_or_default()
            );
        }
        let find = |wanted: fn(&Who) -> bool| issued.iter().find(|entry| wanted(&entry.who));
        if let Some(auditor) = find(|who| *who == Who::Auditor) {
            println!("auditor token ({}): {}", auditor.person, auditor.token);
        }
        if let Some(registrar) = find(|who| matches!(who, Who::RegistrarZj(0))) {
            println!("registrar token ({}, ZJ): {}", registrar.person, registrar.token);
        }
        println!("every principal's token: {}", args.data_dir.join(TOKENS_FILE).display());
        println!("serve it: tousu serve --data-dir {}", args.data_dir.display());
    }
}
