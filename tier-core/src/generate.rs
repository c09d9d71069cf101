//! Synthetic exports in the real source layout, deterministic for a seed, with defects of every
//! reject kind mixed in on request.

use std::io::{self, Write};

use crate::schema::timestamp::Timestamp;
use crate::schema::{ColumnType, Dataset};

/// The built-in streams the generator knows how to make up.
#[derive(Clone, Copy)]
enum Stream {
    TrackEvents,
    Weather,
}

impl Stream {
    fn of(d: &Dataset) -> Option<Stream> {
        match d.name.as_str() {
            "track_events" => Some(Stream::TrackEvents),
            "weather" => Some(Stream::Weather),
            _ => None,
        }
    }
}

/// Whether the generator can make data for `dataset` (the built-ins only).
pub fn supports(dataset: &Dataset) -> bool {
    Stream::of(dataset).is_some()
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// The dataset.
    pub dataset: Dataset,
    /// How many records (defects and duplicates included).
    pub records: u64,
    /// Seed of the random sequence: the same seed gives the same bytes.
    pub seed: u64,
    /// Share of records that are defects or duplicates (0 to 1).
    pub defect_rate: f64,
    /// Write the closing `]` (the real exports lack it).
    pub closed: bool,
    /// Write the clean rows as CSV with the table's column names instead.
    pub csv: bool,
}

/// A small, fast, deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    fn uuid(&mut self) -> String {
        let a = self.next();
        let b = self.next();
        format!(
            "{:08X}-{:04X}-4{:03X}-{:04X}-{:012X}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFF,
            0x8000 | (b >> 48) & 0x3FFF,
            b & 0xFFFF_FFFF_FFFF
        )
    }
}

const EVENTS: &[&str] = &[
    "App Opened",
    "Signup Started",
    "Signup Completed",
    "Ride Started",
    "Ride Ended",
    "Vehicle Reserved",
    "Payment Added",
    "Map Viewed",
    "Rating Submitted",
    "Promo Code Applied",
];
const ZONES: &[&str] = &[
    "Europe/Berlin",
    "Europe/Oslo",
    "Europe/Paris",
    "Europe/Vienna",
    "Europe/Madrid",
    "Europe/Stockholm",
    "Europe/Zurich",
    "Europe/Lisbon",
    "Europe/Warsaw",
    "Europe/Rome",
];
const IOS: &[(&str, &str)] = &[
    ("iPhone11,6", "12.2"),
    ("iPhone10,3", "12.1.4"),
    ("iPhone12,1", "13.1"),
    ("iPhone9,3", "12.3"),
];
const ANDROID: &[(&str, &str, &str)] = &[
    ("SM-G960F", "samsung", "9"),
    ("Pixel 3", "Google", "10"),
    ("ONEPLUS A6003", "OnePlus", "9"),
    ("Mi A2", "Xiaomi", "9"),
    ("HUAWEI P20", "HUAWEI", "8.1.0"),
];
const APP_VERSIONS: &[&str] = &["3.0.5", "3.0.6", "3.1.0", "3.1.2"];
const CITIES: &[(&str, f64)] = &[
    ("Berlin", 14.0),
    ("Paris", 15.0),
    ("Vienna", 13.0),
    ("Zurich", 12.0),
    ("Madrid", 20.0),
    ("Lisbon", 19.0),
    ("Oslo", 8.0),
    ("Stockholm", 9.0),
    ("Warsaw", 11.0),
    ("Rome", 18.0),
    ("Munich", 12.5),
    ("Hamburg", 11.5),
    ("Copenhagen", 10.0),
    ("Brussels", 12.0),
];

/// 2019-05-01 00:00:00 UTC, in seconds.
const BASE: i64 = 1_556_668_800;

fn sql_time(secs: i64) -> String {
    Timestamp(secs * 1_000_000).naive_utc()
}

/// One clean record: its values by column (None is null), in table order.
type Clean = Vec<(&'static str, Option<Field>)>;

#[derive(Debug, Clone)]
enum Field {
    Text(String),
    Num(f64),
    Int(i64),
}

fn track_event(rng: &mut Rng, i: u64) -> Clean {
    let t = BASE + (i as i64) * 7 + rng.below(7) as i64;
    let sent = t + rng.below(4) as i64;
    let received = sent + rng.below(3) as i64;
    let ios = rng.below(2) == 0;
    let (model, os_version, manufacturer, os) = if ios {
        let (m, v) = rng.pick(IOS);
        (m, v, "Apple", "iOS")
    } else {
        let (m, man, v) = rng.pick(ANDROID);
        (m, v, man, "Android")
    };
    let version = rng.pick(APP_VERSIONS);
    let event = rng.pick(EVENTS);
    let rating = (event == "Rating Submitted").then(|| Field::Int(1 + rng.below(5) as i64));
    let text = |s: &str| Some(Field::Text(s.to_string()));
    vec![
        ("original_timestamp_time", text(&sql_time(t))),
        ("event_name", text(event)),
        ("context_timezone", text(rng.pick(ZONES))),
        ("context_os_version", text(os_version)),
        ("context_os_name", text(os)),
        (
            "context_device_type",
            text(if ios { "ios" } else { "android" }),
        ),
        ("context_device_model", text(model)),
        ("context_device_manufacturer", text(manufacturer)),
        ("context_device_id", text(&rng.uuid())),
        ("context_app_version", text(version)),
        ("context_app_name", text("Tier")),
        (
            "context_app_build",
            text(&format!("{version}.{}", 1 + rng.below(9))),
        ),
        ("anonymous_id", text(&rng.uuid())),
        ("received_time", text(&sql_time(received))),
        ("sent_time", text(&sql_time(sent))),
        ("properties_rating", rating),
    ]
}

fn round(v: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (v * p).round() / p
}

fn weather(rng: &mut Rng, i: u64) -> Clean {
    let (city, mean) = CITIES[(i % CITIES.len() as u64) as usize];
    let hour = (i / CITIES.len() as u64) as i64;
    let t = BASE + hour * 3600 + rng.below(60) as i64;
    let daily = ((hour % 24) as f64 - 9.0) / 24.0 * std::f64::consts::TAU;
    let temp = round(mean + 8.0 * daily.sin() + (rng.unit() - 0.5) * 6.0, 2);
    let humidity = round(0.3 + rng.unit() * 0.6, 2);
    let wind = round(rng.unit() * 9.0, 2);
    let prob = round(rng.unit() * rng.unit(), 2);
    let intensity = if prob > 0.3 {
        round(rng.unit() * 2.0, 4)
    } else {
        0.0
    };
    let ptype = (prob > 0.05).then_some(if temp < 1.0 { "snow" } else { "rain" });
    vec![
        ("date_time", Some(Field::Text(sql_time(t)))),
        ("city", Some(Field::Text(city.into()))),
        (
            "currently_apparenttemperature",
            Some(Field::Num(round(temp - wind * 0.3, 2))),
        ),
        ("currently_humidity", Some(Field::Num(humidity))),
        ("currently_precipintensity", Some(Field::Num(intensity))),
        ("currently_precipprobability", Some(Field::Num(prob))),
        ("currently_preciptype", ptype.map(|p| Field::Text(p.into()))),
        ("currently_temperature", Some(Field::Num(temp))),
        (
            "currently_visibility",
            Some(Field::Num(round(5.0 + rng.unit() * 11.0, 2))),
        ),
        ("currently_windspeed", Some(Field::Num(wind))),
        // Not in the schema: kept in `_extra` and counted in `unknown_fields`.
        (
            "currently_ozone",
            Some(Field::Num(round(280.0 + rng.unit() * 60.0, 1))),
        ),
    ]
}

fn json_record(dataset: &Dataset, fields: &Clean) -> String {
    let prefix = dataset.key_prefix();
    let mut s = String::with_capacity(800);
    s.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        s.push_str(prefix);
        s.push_str(k);
        s.push_str("\":");
        match v {
            None => s.push_str("null"),
            Some(Field::Text(t)) => s.push_str(&serde_json::to_string(t).unwrap_or_default()),
            Some(Field::Num(n)) => s.push_str(&n.to_string()),
            Some(Field::Int(n)) => s.push_str(&n.to_string()),
        }
    }
    s.push('}');
    s
}

fn set(fields: &mut Clean, key: &str, v: Option<Field>) {
    if let Some(slot) = fields.iter_mut().find(|(k, _)| *k == key) {
        slot.1 = v;
    }
}

/// The record with the value of `key` replaced by the raw JSON text `raw`.
fn with_raw(dataset: &Dataset, fields: &Clean, key: &str, raw: &str) -> String {
    let mut f = fields.clone();
    set(&mut f, key, Some(Field::Text("@@RAW@@".into())));
    json_record(dataset, &f).replace("\"@@RAW@@\"", raw)
}

/// Writes the generated data to `out`.
///
/// ```
/// use tier_core::generate::{generate, GenerateOptions};
/// let weather = tier_core::Registry::builtin().get("weather").unwrap();
/// let opts = GenerateOptions { dataset: weather, records: 3, seed: 1, defect_rate: 0.0, closed: true, csv: false };
/// let mut a = Vec::new();
/// let mut b = Vec::new();
/// generate(&opts, &mut a).unwrap();
/// generate(&opts, &mut b).unwrap();
/// assert_eq!(a, b);
/// assert!(a.starts_with(b"[{\"weather_data."));
/// ```
pub fn generate(opts: &GenerateOptions, out: &mut dyn Write) -> io::Result<()> {
    let mut rng = Rng(opts.seed ^ 0x7469_6572);
    let mut w = io::BufWriter::with_capacity(1 << 20, out);
    let d = &opts.dataset;
    let stream = Stream::of(d).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no generator for dataset {d} (only for the built-ins)"),
        )
    })?;
    if opts.csv {
        let names: Vec<&str> = d.columns.iter().map(|c| c.name.as_str()).collect();
        writeln!(w, "{}", names.join(","))?;
    } else {
        w.write_all(b"[")?;
    }
    let mut last_good: Option<(String, Clean)> = None;
    let mut too_large_done = false;
    let mut after_malformed = false;
    for i in 0..opts.records {
        let fields = match stream {
            Stream::TrackEvents => track_event(&mut rng, i),
            Stream::Weather => weather(&mut rng, i),
        };
        if opts.csv {
            write_csv(&mut w, d, &fields)?;
            continue;
        }
        let defect = opts.defect_rate > 0.0 && rng.unit() < opts.defect_rate;
        let text = if defect {
            let t = defect_record(
                d,
                stream,
                &mut rng,
                &fields,
                last_good.as_ref(),
                &mut too_large_done,
            );
            // A malformed record runs to the next line starting with `{`: keep the next one an
            // object so that every generated record is read as one.
            if after_malformed && !t.starts_with('{') {
                json_record(d, &fields)
            } else {
                t
            }
        } else {
            let t = json_record(d, &fields);
            last_good = Some((t.clone(), fields));
            t
        };
        after_malformed = text.starts_with('{') && !text.ends_with('}');
        w.write_all(text.as_bytes())?;
        let last = i + 1 == opts.records;
        if last && opts.closed {
            w.write_all(b"]\n")?;
        } else {
            w.write_all(b",\n")?;
        }
    }
    if opts.records == 0 && !opts.csv && opts.closed {
        w.write_all(b"]\n")?;
    }
    w.flush()
}

fn defect_record(
    d: &Dataset,
    stream: Stream,
    rng: &mut Rng,
    fields: &Clean,
    last_good: Option<&(String, Clean)>,
    too_large_done: &mut bool,
) -> String {
    let good = json_record(d, fields);
    // Every dataset gets these; the rest depend on its rules.
    let mut kinds = vec![
        "malformed",
        "not_object",
        "too_large",
        "missing",
        "invalid_type",
        "invalid_timestamp",
        "non_finite",
    ];
    kinds.extend_from_slice(match stream {
        Stream::TrackEvents => &["duplicate", "duplicate"][..],
        Stream::Weather => &["out_of_range", "invalid_value", "duplicate", "conflicting"][..],
    });
    let (req_text, ts, num) = match stream {
        Stream::TrackEvents => ("anonymous_id", "received_time", "properties_rating"),
        Stream::Weather => ("city", "date_time", "currently_temperature"),
    };
    match rng.pick(&kinds) {
        "malformed" => {
            let cut = good.len() / 2 + rng.below(good.len() as u64 / 3) as usize;
            let mut t = good[..cut].to_string();
            while !t.is_char_boundary(t.len()) {
                t.pop();
            }
            t
        }
        "not_object" => rng.pick(&["42", "\"oops\"", "null", "true"]).to_string(),
        "too_large" if !*too_large_done => {
            *too_large_done = true;
            let pad = "x".repeat(1_100_000);
            good.replacen('{', &format!("{{\"padding\":\"{pad}\","), 1)
        }
        "missing" => {
            let mut f = fields.clone();
            set(
                &mut f,
                req_text,
                if rng.below(2) == 0 {
                    None
                } else {
                    Some(Field::Text(String::new()))
                },
            );
            json_record(d, &f)
        }
        "invalid_type" => match stream {
            Stream::TrackEvents => with_raw(d, fields, "properties_rating", "4.5"),
            Stream::Weather => with_raw(d, fields, "currently_humidity", "\"wet\""),
        },
        "invalid_timestamp" => with_raw(d, fields, ts, "\"13/05/2019 14:23\""),
        "non_finite" => with_raw(d, fields, num, rng.pick(&["NaN", "Infinity", "-Infinity"])),
        "out_of_range" => with_raw(d, fields, "currently_humidity", "1.7"),
        "invalid_value" => with_raw(d, fields, "currently_preciptype", "\"hail\""),
        "conflicting" => match last_good {
            Some((_, f)) => {
                let mut f = f.clone();
                set(&mut f, "currently_temperature", Some(Field::Num(-42.5)));
                json_record(d, &f)
            }
            None => "{\"broken\":".into(),
        },
        _ => match last_good {
            Some((t, _)) => t.clone(),
            None => "[1,".into(),
        },
    }
}

fn write_csv(w: &mut dyn Write, d: &Dataset, fields: &Clean) -> io::Result<()> {
    let mut line = String::with_capacity(600);
    for (i, col) in d.columns.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        match fields
            .iter()
            .find(|(k, _)| *k == col.name)
            .and_then(|(_, v)| v.as_ref())
        {
            None => {}
            Some(Field::Text(t)) => {
                if col.ty == ColumnType::Timestamptz {
                    let ts = Timestamp::parse(t)
                        .map(|t| t.to_string())
                        .unwrap_or_default();
                    line.push_str(&ts);
                } else {
                    line.push('"');
                    line.push_str(&t.replace('"', "\"\""));
                    line.push('"');
                }
            }
            Some(Field::Num(n)) => line.push_str(&n.to_string()),
            Some(Field::Int(n)) => line.push_str(&n.to_string()),
        }
    }
    line.push('\n');
    w.write_all(line.as_bytes())
}
