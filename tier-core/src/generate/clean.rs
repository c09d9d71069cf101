//! Clean records of the built-in streams, made up from a seeded generator.

use crate::schema::timestamp::Timestamp;

/// A small, fast, deterministic generator (SplitMix64).
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub(super) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    pub(super) fn uuid(&mut self) -> String {
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

pub(super) fn sql_time(secs: i64) -> String {
    Timestamp(secs * 1_000_000).naive_utc()
}

/// One clean record: its values by column (None is null), in table order.
pub(super) type Clean = Vec<(&'static str, Option<Field>)>;

#[derive(Debug, Clone)]
pub(super) enum Field {
    Text(String),
    Num(f64),
    Int(i64),
}

pub(super) fn track_event(rng: &mut Rng, i: u64) -> Clean {
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

pub(super) fn round(v: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (v * p).round() / p
}

pub(super) fn weather(rng: &mut Rng, i: u64) -> Clean {
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
