//! Scenario files: the traffic, faults and services of one simulation, read
//! with the crate's located YAML reader (every problem reported at once, as
//! `file:line:col: message`, unknown keys with a did-you-mean).
//!
//! The format is documented in `simulator/README.md`; the built-in scenarios
//! (`simulator/scenarios/*.yaml`, embedded in the binary) are examples of it.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use creatorflow::diag::{Code, Diagnostic, Diagnostics, Pos, did_you_mean};
use creatorflow::parse_duration;
use creatorflow::yaml::reader::{self, MapReader};
use creatorflow::yaml::{self, Node, NodeKind, Typed};

pub use crate::fulfil::spec::{FulfilmentSpec, Shift};

/// The built-in scenarios: name and YAML text.
pub const BUILTINS: &[(&str, &str)] = &[
    ("viral-spike", include_str!("../scenarios/viral-spike.yaml")),
    ("flash-sale", include_str!("../scenarios/flash-sale.yaml")),
    (
        "carrier-outage",
        include_str!("../scenarios/carrier-outage.yaml"),
    ),
    ("steady-week", include_str!("../scenarios/steady-week.yaml")),
    (
        "black-friday",
        include_str!("../scenarios/black-friday.yaml"),
    ),
];

/// The scenario `simulate` runs without `--scenario`.
pub const DEFAULT_SCENARIO: &str = "viral-spike";

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// Neither a built-in name nor an existing file.
    #[error("unknown scenario `{name}`: expected a built-in ({builtins}) or a YAML file{hint}")]
    Unknown {
        /// What was asked for.
        name: String,
        /// The built-in names.
        builtins: String,
        /// A did-you-mean suffix.
        hint: String,
    },
    /// The file could not be read.
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read and found wrong.
    #[error("{} problem(s) in the scenario", .0.len())]
    Invalid(Vec<Diagnostic>),
}

/// One simulation's setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Its name (reports).
    pub name: String,
    /// One line for people.
    pub description: String,
    /// When the simulated period starts.
    pub start: DateTime<Utc>,
    /// How long traffic arrives.
    pub duration: TimeDelta,
    /// Baseline history fed to the viral detectors before `start` (as after
    /// a restart, restored from the store); not ingested.
    pub warmup: TimeDelta,
    /// The default seed (`--seed` overrides it).
    pub seed: u64,
    /// Products and the baseline rate.
    pub traffic: TrafficSpec,
    /// Customers, prices, quantities, zones, deadlines.
    pub customers: CustomerSpec,
    /// The viral spikes (ground truth for the detectors).
    pub spikes: Vec<SpikeSpec>,
    /// Webhook delivery quirks.
    pub deliveries: DeliverySpec,
    /// Customer cancellations.
    pub cancellations: CancelSpec,
    /// Products with limited stock: (popularity rank, units).
    pub stock: Vec<(u32, u64)>,
    /// The simulated services behind the action handlers.
    pub services: Services,
    /// Carrier transit time (when delivery is confirmed).
    pub transit: LatencySpec,
    /// Packing capacity, pickups, deadlines, reorders (`fulfilment:`).
    pub fulfilment: FulfilmentSpec,
}

/// Products and the baseline order rate.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSpec {
    /// Number of products.
    pub products: u32,
    /// Popularity of the product of rank `r` is proportional to `1 / r^s`.
    pub zipf_exponent: f64,
    /// Shop-wide baseline orders per hour, averaged over the day.
    pub orders_per_hour: f64,
    /// Relative rate for each hour of the day (UTC), normalised to mean 1.
    pub daily_profile: [f64; 24],
}

/// Customers and what they order.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerSpec {
    /// Size of the customer pool (repeat buyers are drawn from it).
    pub count: u32,
    /// Shares of `vip`, `regular`, `new` customers.
    pub tiers: [f64; 3],
    /// Mean units per order (1 + Poisson).
    pub quantity_mean: f64,
    /// Unit price: log-normal with this median and spread.
    pub price: LatencySpec,
    /// Shipping zones and their shares.
    pub zones: Vec<(String, f64)>,
    /// Ship-by deadline: uniformly this many hours after the order, `[min, max]`.
    pub deadline_hours: (f64, f64),
}

/// A log-normal quantity given by its median and 99th percentile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencySpec {
    /// The median.
    pub median: f64,
    /// The 99th percentile.
    pub p99: f64,
}

/// One viral spike: the product's extra rate ramps up linearly, holds at its
/// peak, and decays linearly.
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeSpec {
    /// The product's popularity rank (1 = the most popular).
    pub product: u32,
    /// When the ramp starts, after the scenario's start.
    pub start: TimeDelta,
    /// Ramp-up time.
    pub ramp: TimeDelta,
    /// Time at the peak.
    pub hold: TimeDelta,
    /// Decay time.
    pub decay: TimeDelta,
    /// Extra orders per hour at the peak, on top of the baseline.
    pub peak_per_hour: f64,
}

/// Webhook deliveries as TikTok Shop sends them.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySpec {
    /// Share of orders delivered twice.
    pub duplicate_rate: f64,
    /// Share of orders delivered late (after later orders).
    pub out_of_order_rate: f64,
    /// Longest delay of a late or duplicate delivery.
    pub max_delay: TimeDelta,
}

/// Customer cancellations.
#[derive(Debug, Clone, PartialEq)]
pub struct CancelSpec {
    /// Share of orders the customer tries to cancel.
    pub rate: f64,
    /// Mean time after the order (exponential).
    pub mean_delay: TimeDelta,
}

/// The services behind the action handlers.
#[derive(Debug, Clone, PartialEq)]
pub struct Services {
    /// Stock checks and reservations.
    pub inventory: ServiceSpec,
    /// Carrier selection (the carrier's API).
    pub carrier: ServiceSpec,
    /// Shipping-label generation (the carrier's label API).
    pub labels: ServiceSpec,
}

/// How one service behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// Call latency in milliseconds (log-normal).
    pub latency_ms: LatencySpec,
    /// Share of calls failing with a retryable error.
    pub error_rate: f64,
    /// Windows (start after the scenario's start, length) when every call fails.
    pub outages: Vec<(TimeDelta, TimeDelta)>,
}

impl Default for ServiceSpec {
    fn default() -> Self {
        ServiceSpec {
            latency_ms: LatencySpec {
                median: 20.0,
                p99: 200.0,
            },
            error_rate: 0.0,
            outages: Vec::new(),
        }
    }
}

const TOP_KEYS: &[&str] = &[
    "scenario",
    "description",
    "start",
    "duration",
    "warmup",
    "seed",
    "traffic",
    "customers",
    "spikes",
    "deliveries",
    "cancellations",
    "stock",
    "services",
    "transit_hours",
    "fulfilment",
];
const TRAFFIC_KEYS: &[&str] = &[
    "products",
    "zipf_exponent",
    "orders_per_hour",
    "daily_profile",
];
const CUSTOMER_KEYS: &[&str] = &[
    "count",
    "tiers",
    "quantity_mean",
    "unit_price",
    "zones",
    "deadline_hours",
];
const TIER_KEYS: &[&str] = &["vip", "regular", "new"];
const SPIKE_KEYS: &[&str] = &["product", "start", "ramp", "hold", "decay", "peak_per_hour"];
const DELIVERY_KEYS: &[&str] = &["duplicate_rate", "out_of_order_rate", "max_delay"];
const CANCEL_KEYS: &[&str] = &["rate", "mean_delay"];
const STOCK_KEYS: &[&str] = &["product", "units"];
const SERVICES_KEYS: &[&str] = &["inventory", "carrier", "labels"];
const SERVICE_KEYS: &[&str] = &["latency_ms", "error_rate", "outages"];
const OUTAGE_KEYS: &[&str] = &["start", "duration"];
const DIST_KEYS: &[&str] = &["median", "p99"];
const RANGE_KEYS: &[&str] = &["min", "max"];

/// A flat day.
const FLAT: [f64; 24] = [1.0; 24];

impl Scenario {
    /// Loads `--scenario NAME|FILE`: a built-in name, else a file path.
    pub fn resolve(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if let Some((name, text)) = BUILTINS.iter().find(|(n, _)| *n == name_or_path) {
            return Scenario::parse(text, &format!("builtin:{name}.yaml"));
        }
        let path = Path::new(name_or_path);
        if path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
                path: name_or_path.to_owned(),
                source,
            })?;
            return Scenario::parse(&text, name_or_path);
        }
        Err(ScenarioError::Unknown {
            name: name_or_path.to_owned(),
            builtins: BUILTINS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
            hint: did_you_mean(name_or_path, BUILTINS.iter().map(|(n, _)| *n)),
        })
    }

    /// Parses scenario YAML; `file` names it in diagnostics. Every problem is
    /// reported, not just the first.
    pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
        let mut d = Diagnostics::new(file);
        let scenario = yaml::parse(text, &mut d).and_then(|root| read_scenario(&root, &mut d));
        match scenario {
            Some(s) if !d.has_errors() => Ok(s),
            _ => {
                let mut v = d.into_vec();
                if v.is_empty() {
                    v.push(Diagnostic::new(
                        file,
                        Code::ScenarioUnreadable,
                        Pos::new(1, 1),
                        "the scenario could not be read",
                    ));
                }
                creatorflow::diag::sort(&mut v);
                Err(ScenarioError::Invalid(v))
            }
        }
    }

    /// The end of the traffic.
    pub fn end(&self) -> DateTime<Utc> {
        self.start + self.duration
    }
}

fn read_scenario(root: &Node, d: &mut Diagnostics) -> Option<Scenario> {
    let mut m = MapReader::new(root, "scenario", TOP_KEYS, d)?;
    let name = m
        .req("scenario", d)
        .and_then(|n| reader::string(n, "scenario", d))
        .map(str::to_owned);
    let description = m
        .opt("description")
        .and_then(|n| reader::string(n, "description", d))
        .unwrap_or_default()
        .to_owned();
    let start = m
        .req("start", d)
        .and_then(|n| reader::timestamp(n, "start", d));
    let length = m
        .req("duration", d)
        .and_then(|n| duration(n, "duration", d));
    let warmup = match m.opt("warmup") {
        Some(n) => duration(n, "warmup", d),
        None => Some(TimeDelta::days(7)),
    };
    let seed = match m.opt("seed") {
        Some(n) => reader::int(n, "seed", d).and_then(|s| {
            u64::try_from(s)
                .map_err(|_| d.emit(Code::ScenarioNegative, n.pos, "`seed` must be >= 0"))
                .ok()
        }),
        None => Some(1),
    };
    let traffic = m.req("traffic", d).and_then(|n| read_traffic(n, d));
    let customers = match m.opt("customers") {
        Some(n) => read_customers(n, d),
        None => Some(default_customers()),
    };
    let spikes = match m.opt("spikes") {
        Some(n) => reader::seq(n, "spikes", d).map(|items| {
            items
                .iter()
                .filter_map(|i| read_spike(i, d))
                .collect::<Vec<_>>()
        }),
        None => Some(Vec::new()),
    };
    let deliveries = match m.opt("deliveries") {
        Some(n) => read_deliveries(n, d),
        None => Some(DeliverySpec {
            duplicate_rate: 0.0,
            out_of_order_rate: 0.0,
            max_delay: TimeDelta::minutes(10),
        }),
    };
    let cancellations = match m.opt("cancellations") {
        Some(n) => read_cancellations(n, d),
        None => Some(CancelSpec {
            rate: 0.0,
            mean_delay: TimeDelta::minutes(30),
        }),
    };
    let stock = match m.opt("stock") {
        Some(n) => reader::seq(n, "stock", d).map(|items| {
            items
                .iter()
                .filter_map(|i| read_stock(i, d))
                .collect::<Vec<_>>()
        }),
        None => Some(Vec::new()),
    };
    let services = match m.opt("services") {
        Some(n) => read_services(n, d),
        None => Some(Services {
            inventory: ServiceSpec::default(),
            carrier: ServiceSpec::default(),
            labels: ServiceSpec::default(),
        }),
    };
    let transit = match m.opt("transit_hours") {
        Some(n) => read_dist(n, "transit_hours", d),
        None => Some(LatencySpec {
            median: 48.0,
            p99: 120.0,
        }),
    };
    let fulfilment = match m.opt("fulfilment") {
        Some(n) => crate::fulfil::spec::read(n, d),
        None => Some(FulfilmentSpec::default()),
    };
    m.finish(d);
    if let (Some(n), Some(l)) = (root_key(root, "duration"), length)
        && l < TimeDelta::minutes(1)
    {
        d.emit(
            Code::ScenarioTooShort,
            n.pos,
            "`duration` must be at least 1m",
        );
    }
    let traffic = traffic?;
    let spikes = spikes?;
    let stock = stock?;
    for (i, (rank, _)) in stock.iter().enumerate() {
        if *rank > traffic.products {
            d.emit(
                Code::ScenarioProductRange,
                product_pos(root, "stock", i),
                format!(
                    "stock names product rank {rank} but the scenario has {} products",
                    traffic.products
                ),
            );
        }
    }
    for (i, s) in spikes.iter().enumerate() {
        if s.product > traffic.products {
            d.emit(
                Code::ScenarioProductRange,
                product_pos(root, "spikes", i),
                format!(
                    "spike {} names product rank {} but the scenario has {} products",
                    i + 1,
                    s.product,
                    traffic.products
                ),
            );
        }
    }
    Some(Scenario {
        name: name?,
        description,
        start: start?,
        duration: length?,
        warmup: warmup?,
        seed: seed?,
        traffic,
        customers: customers?,
        spikes,
        deliveries: deliveries?,
        cancellations: cancellations?,
        stock,
        services: services?,
        transit: transit?,
        fulfilment: fulfilment?,
    })
}

/// The value node of a top-level key, for positions after reading.
/// Where the `product` of the `index`-th entry of the list under `key`
/// stands (the entry, or the document, when the file says less).
fn product_pos(root: &Node, key: &str, index: usize) -> Pos {
    let entry = root_key(root, key).and_then(|list| match &list.kind {
        NodeKind::Seq(items) => items.get(index),
        _ => None,
    });
    entry
        .map(|e| root_key(e, "product").map_or(e.pos, |p| p.pos))
        .unwrap_or(root.pos)
}

fn root_key<'a>(root: &'a Node, key: &str) -> Option<&'a Node> {
    match &root.kind {
        NodeKind::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.scalar().is_some_and(|s| s.text == key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn default_customers() -> CustomerSpec {
    CustomerSpec {
        count: 20_000,
        tiers: [0.05, 0.75, 0.20],
        quantity_mean: 1.5,
        price: LatencySpec {
            median: 30.0,
            p99: 250.0,
        },
        zones: vec![("US-EAST".into(), 1.0)],
        deadline_hours: (24.0, 72.0),
    }
}

/// A number (integer or float).
fn number(node: &Node, key: &str, d: &mut Diagnostics) -> Option<f64> {
    match node.scalar().map(|s| s.typed()) {
        Some(Typed::Int(i)) => Some(i as f64),
        Some(Typed::Float(f, _)) if f.is_finite() => Some(f),
        _ => {
            d.emit(
                Code::ScenarioNotNumber,
                node.pos,
                format!("`{key}` must be a number, found {}", node.type_name()),
            );
            None
        }
    }
}

/// A number in `[lo, hi]`.
pub(crate) fn number_in(
    node: &Node,
    key: &str,
    lo: f64,
    hi: f64,
    d: &mut Diagnostics,
) -> Option<f64> {
    let v = number(node, key, d)?;
    if v < lo || v > hi {
        d.emit(
            Code::ScenarioOutOfRange,
            node.pos,
            format!("`{key}` must be between {lo} and {hi}, found {v}"),
        );
        return None;
    }
    Some(v)
}

/// A positive integer.
pub(crate) fn count(node: &Node, key: &str, d: &mut Diagnostics) -> Option<u64> {
    let v = reader::int(node, key, d)?;
    if v <= 0 {
        d.emit(
            Code::ScenarioNotPositive,
            node.pos,
            format!("`{key}` must be > 0, found {v}"),
        );
        return None;
    }
    Some(v as u64)
}

pub(crate) fn duration(node: &Node, key: &str, d: &mut Diagnostics) -> Option<TimeDelta> {
    let text = reader::string(node, key, d)?;
    if text == "0" || text == "0s" || text == "0m" {
        return Some(TimeDelta::zero());
    }
    match parse_duration(text) {
        Ok(t) => Some(t),
        Err(e) => {
            d.emit(Code::ScenarioBadDuration, node.pos, format!("`{key}`: {e}"));
            None
        }
    }
}

fn read_traffic(node: &Node, d: &mut Diagnostics) -> Option<TrafficSpec> {
    let mut m = MapReader::new(node, "traffic", TRAFFIC_KEYS, d)?;
    let products = m
        .req("products", d)
        .and_then(|n| count(n, "products", d))
        .and_then(|n| u32::try_from(n).ok());
    let zipf = match m.opt("zipf_exponent") {
        Some(n) => number_in(n, "zipf_exponent", 0.0, 5.0, d),
        None => Some(1.0),
    };
    let rate = m
        .req("orders_per_hour", d)
        .and_then(|n| number_in(n, "orders_per_hour", 0.0, 1e7, d));
    let profile = match m.opt("daily_profile") {
        Some(n) => read_profile(n, d),
        None => Some(FLAT),
    };
    m.finish(d);
    Some(TrafficSpec {
        products: products?,
        zipf_exponent: zipf?,
        orders_per_hour: rate?,
        daily_profile: profile?,
    })
}

fn read_profile(node: &Node, d: &mut Diagnostics) -> Option<[f64; 24]> {
    let items = reader::seq(node, "daily_profile", d)?;
    if items.len() != 24 {
        d.emit(
            Code::ScenarioProfileLength,
            node.pos,
            format!(
                "`daily_profile` must list 24 hourly weights (00h to 23h UTC), found {}",
                items.len()
            ),
        );
        return None;
    }
    let mut out = [0.0; 24];
    let mut ok = true;
    for (slot, item) in out.iter_mut().zip(items) {
        match number_in(item, "daily_profile", 0.0, 1e6, d) {
            Some(v) => *slot = v,
            None => ok = false,
        }
    }
    let mean = out.iter().sum::<f64>() / 24.0;
    if ok && mean <= 0.0 {
        d.emit(
            Code::ScenarioProfileZero,
            node.pos,
            "`daily_profile` must have some positive weight",
        );
        return None;
    }
    ok.then(|| out.map(|v| v / mean))
}

fn read_dist(node: &Node, key: &'static str, d: &mut Diagnostics) -> Option<LatencySpec> {
    let mut m = MapReader::new(node, key, DIST_KEYS, d)?;
    let median = m
        .req("median", d)
        .and_then(|n| number_in(n, "median", 0.0, 1e9, d));
    let p99 = m
        .req("p99", d)
        .and_then(|n| number_in(n, "p99", 0.0, 1e9, d));
    m.finish(d);
    let (median, p99) = (median?, p99?);
    if p99 < median {
        d.emit(
            Code::ScenarioP99BelowMedian,
            node.pos,
            format!("`{key}`: p99 ({p99}) must be at least the median ({median})"),
        );
        return None;
    }
    Some(LatencySpec { median, p99 })
}

fn read_customers(node: &Node, d: &mut Diagnostics) -> Option<CustomerSpec> {
    let mut m = MapReader::new(node, "customers", CUSTOMER_KEYS, d)?;
    let base = default_customers();
    let count = match m.opt("count") {
        Some(n) => count(n, "count", d).and_then(|n| u32::try_from(n).ok()),
        None => Some(base.count),
    };
    let tiers = match m.opt("tiers") {
        Some(n) => read_tiers(n, d),
        None => Some(base.tiers),
    };
    let quantity_mean = match m.opt("quantity_mean") {
        Some(n) => number_in(n, "quantity_mean", 1.0, 100.0, d),
        None => Some(base.quantity_mean),
    };
    let price = match m.opt("unit_price") {
        Some(n) => read_dist(n, "unit_price", d),
        None => Some(base.price),
    };
    let zones = match m.opt("zones") {
        Some(n) => read_shares(n, "zones", d),
        None => Some(base.zones),
    };
    let deadline = match m.opt("deadline_hours") {
        Some(n) => read_range(n, "deadline_hours", d),
        None => Some(base.deadline_hours),
    };
    m.finish(d);
    Some(CustomerSpec {
        count: count?,
        tiers: tiers?,
        quantity_mean: quantity_mean?,
        price: price?,
        zones: zones?,
        deadline_hours: deadline?,
    })
}

fn read_tiers(node: &Node, d: &mut Diagnostics) -> Option<[f64; 3]> {
    let mut m = MapReader::new(node, "tiers", TIER_KEYS, d)?;
    let mut out = [0.0; 3];
    let mut ok = true;
    for (i, k) in TIER_KEYS.iter().enumerate() {
        if let Some(n) = m.opt(k) {
            match number_in(n, k, 0.0, 1.0, d) {
                Some(v) => out[i] = v,
                None => ok = false,
            }
        }
    }
    m.finish(d);
    let sum: f64 = out.iter().sum();
    if ok && (sum - 1.0).abs() > 1e-6 {
        d.emit(
            Code::ScenarioTierSum,
            node.pos,
            format!("`tiers` shares must add up to 1, found {sum}"),
        );
        return None;
    }
    ok.then_some(out)
}

fn read_shares(node: &Node, key: &str, d: &mut Diagnostics) -> Option<Vec<(String, f64)>> {
    let NodeKind::Map(entries) = &node.kind else {
        d.emit(
            Code::ScenarioSharesNotMapping,
            node.pos,
            format!(
                "`{key}` must be a mapping of name: share, found {}",
                node.type_name()
            ),
        );
        return None;
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        let name = reader::string(k, key, d)?;
        out.push((name.to_owned(), number_in(v, name, 0.0, 1e6, d)?));
    }
    if out.iter().map(|(_, s)| s).sum::<f64>() <= 0.0 {
        d.emit(
            Code::ScenarioSharesZero,
            node.pos,
            format!("`{key}` must have some positive share"),
        );
        return None;
    }
    Some(out)
}

fn read_range(node: &Node, key: &'static str, d: &mut Diagnostics) -> Option<(f64, f64)> {
    let mut m = MapReader::new(node, key, RANGE_KEYS, d)?;
    let lo = m
        .req("min", d)
        .and_then(|n| number_in(n, "min", -1e6, 1e6, d));
    let hi = m
        .req("max", d)
        .and_then(|n| number_in(n, "max", -1e6, 1e6, d));
    m.finish(d);
    let (lo, hi) = (lo?, hi?);
    if hi < lo {
        d.emit(
            Code::ScenarioRangeInverted,
            node.pos,
            format!("`{key}`: max ({hi}) is below min ({lo})"),
        );
        return None;
    }
    Some((lo, hi))
}

fn read_spike(node: &Node, d: &mut Diagnostics) -> Option<SpikeSpec> {
    let mut m = MapReader::new(node, "spike", SPIKE_KEYS, d)?;
    let product = m
        .req("product", d)
        .and_then(|n| count(n, "product", d))
        .and_then(|n| u32::try_from(n).ok());
    let start = m.req("start", d).and_then(|n| duration(n, "start", d));
    let ramp = m.req("ramp", d).and_then(|n| duration(n, "ramp", d));
    let hold = m.req("hold", d).and_then(|n| duration(n, "hold", d));
    let decay = m.req("decay", d).and_then(|n| duration(n, "decay", d));
    let peak = m
        .req("peak_per_hour", d)
        .and_then(|n| number_in(n, "peak_per_hour", 0.0, 1e7, d));
    m.finish(d);
    Some(SpikeSpec {
        product: product?,
        start: start?,
        ramp: ramp?,
        hold: hold?,
        decay: decay?,
        peak_per_hour: peak?,
    })
}

fn read_deliveries(node: &Node, d: &mut Diagnostics) -> Option<DeliverySpec> {
    let mut m = MapReader::new(node, "deliveries", DELIVERY_KEYS, d)?;
    let dup = match m.opt("duplicate_rate") {
        Some(n) => number_in(n, "duplicate_rate", 0.0, 1.0, d),
        None => Some(0.0),
    };
    let ooo = match m.opt("out_of_order_rate") {
        Some(n) => number_in(n, "out_of_order_rate", 0.0, 1.0, d),
        None => Some(0.0),
    };
    let max_delay = match m.opt("max_delay") {
        Some(n) => duration(n, "max_delay", d),
        None => Some(TimeDelta::minutes(10)),
    };
    m.finish(d);
    Some(DeliverySpec {
        duplicate_rate: dup?,
        out_of_order_rate: ooo?,
        max_delay: max_delay?,
    })
}

fn read_cancellations(node: &Node, d: &mut Diagnostics) -> Option<CancelSpec> {
    let mut m = MapReader::new(node, "cancellations", CANCEL_KEYS, d)?;
    let rate = m
        .req("rate", d)
        .and_then(|n| number_in(n, "rate", 0.0, 1.0, d));
    let mean_delay = match m.opt("mean_delay") {
        Some(n) => duration(n, "mean_delay", d),
        None => Some(TimeDelta::minutes(30)),
    };
    m.finish(d);
    Some(CancelSpec {
        rate: rate?,
        mean_delay: mean_delay?,
    })
}

fn read_stock(node: &Node, d: &mut Diagnostics) -> Option<(u32, u64)> {
    let mut m = MapReader::new(node, "stock entry", STOCK_KEYS, d)?;
    let product = m
        .req("product", d)
        .and_then(|n| count(n, "product", d))
        .and_then(|n| u32::try_from(n).ok());
    let units = m.req("units", d).and_then(|n| {
        let v = reader::int(n, "units", d)?;
        u64::try_from(v)
            .map_err(|_| d.emit(Code::ScenarioNegative, n.pos, "`units` must be >= 0"))
            .ok()
    });
    m.finish(d);
    Some((product?, units?))
}

fn read_services(node: &Node, d: &mut Diagnostics) -> Option<Services> {
    let mut m = MapReader::new(node, "services", SERVICES_KEYS, d)?;
    let get = |m: &mut MapReader<'_>, key: &'static str, d: &mut Diagnostics| match m.opt(key) {
        Some(n) => read_service(n, key, d),
        None => Some(ServiceSpec::default()),
    };
    let inventory = get(&mut m, "inventory", d);
    let carrier = get(&mut m, "carrier", d);
    let labels = get(&mut m, "labels", d);
    m.finish(d);
    Some(Services {
        inventory: inventory?,
        carrier: carrier?,
        labels: labels?,
    })
}

fn read_service(node: &Node, what: &'static str, d: &mut Diagnostics) -> Option<ServiceSpec> {
    let mut m = MapReader::new(node, what, SERVICE_KEYS, d)?;
    let base = ServiceSpec::default();
    let latency = match m.opt("latency_ms") {
        Some(n) => read_dist(n, "latency_ms", d),
        None => Some(base.latency_ms),
    };
    let error_rate = match m.opt("error_rate") {
        Some(n) => number_in(n, "error_rate", 0.0, 1.0, d),
        None => Some(0.0),
    };
    let outages = match m.opt("outages") {
        Some(n) => reader::seq(n, "outages", d).map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    let mut o = MapReader::new(i, "outage", OUTAGE_KEYS, d)?;
                    let s = o.req("start", d).and_then(|n| duration(n, "start", d));
                    let l = o
                        .req("duration", d)
                        .and_then(|n| duration(n, "duration", d));
                    o.finish(d);
                    Some((s?, l?))
                })
                .collect::<Vec<_>>()
        }),
        None => Some(Vec::new()),
    };
    m.finish(d);
    Some(ServiceSpec {
        latency_ms: latency?,
        error_rate: error_rate?,
        outages: outages?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_load() {
        for (name, _) in BUILTINS {
            let s = Scenario::resolve(name).unwrap_or_else(|e| match e {
                ScenarioError::Invalid(v) => panic!(
                    "{name}: {}",
                    v.iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
                e => panic!("{name}: {e}"),
            });
            assert_eq!(&s.name, name);
        }
    }

    /// `black-friday` is too big for a debug run in CI: its traffic is
    /// checked here, the run itself is measured (`BENCHMARKS.md`).
    #[test]
    fn black_friday_has_everything_at_once() {
        let s = Scenario::resolve("black-friday").expect("black-friday");
        let traffic = crate::traffic::Traffic::generate(&s, s.seed);
        let n = traffic.orders.len();
        assert!((35_000..60_000).contains(&n), "{n} orders");
        assert!(s.spikes.len() >= 20, "a flash sale and a viral product");
        assert!(!s.services.carrier.outages.is_empty(), "a carrier outage");
        assert!(s.traffic.products >= 500 && s.stock.len() >= 2);
        assert!(s.fulfilment.limited() && s.fulfilment.per_day() < n as f64);
    }

    #[test]
    fn unknown_builtin_suggests() {
        let Err(e) = Scenario::resolve("viral-spik") else {
            panic!("accepted");
        };
        assert!(e.to_string().contains("did you mean `viral-spike`"), "{e}");
    }
}
