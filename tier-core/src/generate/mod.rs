//! Synthetic exports in the real source layout, deterministic for a seed, with defects of every
//! reject kind mixed in on request.

use std::io::{self, Write};

use crate::schema::timestamp::Timestamp;
use crate::schema::{ColumnType, Dataset};

mod clean;

use clean::{track_event, weather, Clean, Field, Rng};

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
