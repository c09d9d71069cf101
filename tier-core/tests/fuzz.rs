//! Fuzzing without a nightly toolchain, for as long as `TIER_FUZZ_SECONDS` says
//! (`scripts/fuzz.sh`): mutated exports (bytes flipped, cut, repeated, junk inserted) through the
//! reader and the validator of every built-in — no input may panic, and every record is a row or
//! a reject: `records = valid + rejected`, indexes without gaps —, and mutated seed corpora
//! through the parsers of connection strings, `.pgpass` and service files, dataset definitions
//! and inference samples: no input may panic, and what is accepted must work.

use std::time::{Duration, Instant};

use tier_core::db::connect;
use tier_core::generate::{generate, GenerateOptions};
use tier_core::Input;

use tier_core::Definition;
use tier_core::Registry;
use tier_core::{validate, KeyOrder, UnknownFields};

/// SplitMix64: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const JUNK: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"\"",
    b"\\",
    b"\\u00",
    b"\\ud800",
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"\n{",
    b"\xff",
    b"\x00",
    b"\xef\xbb\xbf",
    b"null",
    b"{\"a\":",
    b"\r\n",
    b"   ",
];

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(8) {
        if data.is_empty() {
            data.extend_from_slice(JUNK[rng.below(JUNK.len())]);
            continue;
        }
        let at = rng.below(data.len());
        match rng.below(5) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data.truncate(at),
            2 => {
                let end = (at + rng.below(400)).min(data.len());
                let piece = data[at..end].to_vec();
                let to = rng.below(data.len());
                data.splice(to..to, piece);
            }
            3 => {
                let end = (at + rng.below(50)).min(data.len());
                data.drain(at..end);
            }
            _ => {
                let j = JUNK[rng.below(JUNK.len())];
                data.splice(at..at, j.iter().copied());
            }
        }
    }
}

#[test]
#[ignore = "runs for TIER_FUZZ_SECONDS; scripts/fuzz.sh"]
fn mutated_exports_keep_every_record_accounted_for() {
    let (seconds, seed) = (seconds(), seed());
    println!("fuzz: seed {seed} (TIER_FUZZ_SEED={seed} replays it), {seconds} s");
    let registry = Registry::builtin();
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut cases, mut records) = (0u64, 0u64);
    while Instant::now() < deadline {
        let dataset = registry.all()[rng.below(2)].clone();
        let opts = GenerateOptions {
            dataset: dataset.clone(),
            records: 1 + rng.below(60) as u64,
            seed: rng.next(),
            defect_rate: 0.2,
            closed: rng.below(2) == 0,
            csv: false,
        };
        let mut data = Vec::new();
        generate(&opts, &mut data).unwrap();
        mutate(&mut rng, &mut data);
        let max = if rng.below(4) == 0 { 256 } else { 1 << 20 };
        let input =
            Input::from_reader("fuzz".as_ref(), Box::new(std::io::Cursor::new(data)), false)
                .unwrap();
        let mut recs = input.records(max);
        let mut unknown = UnknownFields::new();
        let mut order = KeyOrder::default();
        let (mut n, mut valid, mut rejected) = (0u64, 0u64, 0u64);
        while let Some(rec) = recs.next_record().unwrap() {
            assert_eq!(rec.index, n, "seed {seed}: record indexes run without gaps");
            n += 1;
            match validate(&dataset, &rec, &mut unknown, &mut order) {
                Ok(_) => valid += 1,
                Err(_) => rejected += 1,
            }
        }
        assert_eq!(n, valid + rejected, "seed {seed}");
        cases += 1;
        records += n;
    }
    println!(
        "fuzz: {cases} mutated exports, {records} records, no panic, every record accounted for"
    );
}

fn seconds() -> u64 {
    std::env::var("TIER_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

fn seed() -> u64 {
    std::env::var("TIER_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// Mutates the seeds of `corpus` (and pieces of them spliced together) for the time given,
/// handing each case to `one`; a panic names the seed that replays it.
fn fuzz_corpus(what: &str, corpus: &[&[u8]], one: impl Fn(&[u8])) {
    let seed = seed();
    println!("fuzz {what}: seed {seed} (TIER_FUZZ_SEED={seed} replays it)");
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds());
    let mut cases = 0u64;
    while Instant::now() < deadline {
        let mut data = corpus[rng.below(corpus.len())].to_vec();
        if rng.below(4) == 0 {
            let other = corpus[rng.below(corpus.len())];
            let at = rng.below(data.len() + 1);
            data.splice(at..at, other.iter().copied());
        }
        if rng.below(8) != 0 {
            mutate(&mut rng, &mut data);
        }
        one(&data);
        cases += 1;
    }
    println!("fuzz {what}: {cases} cases, no panic");
}

const CONNECTIONS: &[&[u8]] = &[
    b"postgresql://u:s3cret@127.0.0.1:5432/x?sslmode=require&application_name=a",
    "postgresql://u@127.0.0.1/x?sslmode=%aé".as_bytes(),
    b"postgresql://u:p?w@h/d?sslmode=disable&sslrootcert=%2Ftmp%2Fca.pem",
    b"postgres://[::1]:5/d?host=/tmp&port=1&options=-c%20x%3Dy",
    b"postgresql:///d?service=app",
    b"host=h port=5 user='a b' password='x\\'y' sslmode=verify-full sslrootcert=/dev/zero",
    b"dbname = d  host=/tmp   sslcert='' sslkey=k application_name=",
    b"postgresql://%75:%70@h:99999/%64",
    b"postgresql://u@h,h2:5,6/d?target_session_attrs=read-write&connect_timeout=x",
];

#[test]
#[ignore = "runs for TIER_FUZZ_SECONDS; scripts/fuzz.sh"]
fn connection_strings_never_panic() {
    fuzz_corpus("connection strings", CONNECTIONS, |data| {
        let _ = connect::parse(&String::from_utf8_lossy(data));
    });
}

const PGPASS_AND_SERVICES: &[&[u8]] = &[
    b"# comment\nh:5432:*:u:p\\:w\n*:*:*:*:other\n",
    b"127.0.0.1:*:x:u:s3cret\n\\\\:\\:\n::::\n:::::::\n",
    "h\u{e9}:5432:d\u{e8}:u:\u{7528}\n".as_bytes(),
    b"[app]\nhost = db\nport=6432\nsslmode=require\n[other]\nhost=x\n",
    b"[app\n]\n=\n[]\nhost\n[app]]\n",
];

#[test]
#[ignore = "runs for TIER_FUZZ_SECONDS; scripts/fuzz.sh"]
fn password_and_service_files_never_panic() {
    fuzz_corpus("pgpass and service files", PGPASS_AND_SERVICES, |data| {
        let text = String::from_utf8_lossy(data);
        for (host, port, db, user) in [
            ("h", 5432, "d", "u"),
            ("127.0.0.1", 1, "x", "u"),
            ("", 0, "", ""),
        ] {
            let _ = connect::password_in(&text, host, port, db, user);
        }
        for name in ["app", "other", "", "app]"] {
            let _ = connect::service_in(&text, name);
        }
    });
}

const DEFINITIONS: &[&[u8]] = &[
    include_bytes!("../src/schema/builtin/weather.toml"),
    include_bytes!("../src/schema/builtin/track_events.toml"),
    b"name = \"x\"\ntable = \"tttttttttttttttttttttttttttttttttttttttttttttttttttttttt\"\n[[columns]]\nname = \"a\"\ntype = \"text\"\n",
    b"name = \"tier_loads\"\n[[columns]]\nname = \"xmin\"\ntype = \"text\"\n",
    b"name = \"x\"\ntable = \"weather_rejects\"\nkey = [\"a\"]\npartition_by = \"a\"\n[[columns]]\nname = \"a\"\ntype = \"date\"\nmin = 1\nvalues = []\n",
    "name = \"r\"\nprefix = \"r\u{e9}.\"\nfile_pattern = \"[\"\n[[columns]]\nname = \"a\"\ntype = \"double\"\nmin = nan\nmax = -inf\n".as_bytes(),
];

#[test]
#[ignore = "runs for TIER_FUZZ_SECONDS; scripts/fuzz.sh"]
fn definitions_never_panic_and_accepted_ones_make_valid_tables() {
    fuzz_corpus("definitions", DEFINITIONS, |data| {
        let Ok(def) = Definition::from_toml_str(&String::from_utf8_lossy(data), "fuzz.toml") else {
            return;
        };
        let mut registry = tier_core::Registry::builtin();
        let name = def.name.clone();
        registry.add(def);
        let dataset = registry.get(&name).unwrap();
        assert!(
            dataset.table.len() + "_rejects".len() <= 63,
            "{}",
            dataset.table
        );
        assert!(dataset.table != "tier_loads" && !dataset.table.ends_with("_rejects"));
        let ddl = tier_core::db::ddl::full_ddl(&[dataset], "public");
        assert!(ddl.contains("CREATE TABLE"));
    });
}

const SAMPLES: &[&[u8]] = &[
    "{\"x.\u{e9}\":1,\"x.\u{e8}\":2,\"x.id\":1}\n".as_bytes(),
    "{\"\u{7528}\u{6237}\":5,\"\u{7528}\u{6cd5}\":6,\"id\":1}\n".as_bytes(),
    b"[{\"r.id\":\"a\",\"r.t\":\"2024-03-01 10:00:00\",\"r.n\":1.5,\"r.b\":true,\"r.o\":{\"k\":[1,2]}},\n{\"r.id\":\"b\",\"r.d\":\"2024-03-01\",\"r.n\":NaN}",
    b"{\"a\":1}{\"b\":\"\"}{\"_extra\":1,\"xmin\":2,\"A B\":3,\"\":4}",
];

#[test]
#[ignore = "runs for TIER_FUZZ_SECONDS; scripts/fuzz.sh"]
fn inference_never_panics_and_proposes_definitions_tier_takes() {
    fuzz_corpus("inference samples", SAMPLES, |data| {
        let input = Input::from_reader(
            "sample.json".as_ref(),
            Box::new(std::io::Cursor::new(data.to_vec())),
            false,
        )
        .unwrap();
        if let Ok(text) = tier_core::infer_from(input, "sample\n.json".as_ref(), None, 1000) {
            Definition::from_toml_str(&text, "inferred").unwrap();
        }
    });
}
