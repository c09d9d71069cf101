//! Datasets as data: a dataset defined only in a TOML file loads end to end; invalid
//! definitions are usage errors; inference and additive evolution.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// One record per rule of the rides definition, in a known order.
const RIDES: &[(&str, &str)] = &[
    (
        "",
        r#"{"rides.ride_id":"r1","rides.vehicle":"bike","rides.distance_km":3.5,"rides.passengers":1,"rides.duration_s":600,"rides.fare_cents":9007199254740993,"rides.paid":true,"rides.started_at":"2024-03-01T10:00:00+01:00","rides.service_day":"2024-03-01","rides.meta":{"a":[1,2.50,12345678901234567890123]},"rides.tip":123456789012345678901234567890}"#,
    ),
    (
        "",
        r#"{"rides.ride_id":"r2","rides.started_at":"2024-03-02 08:00:00","rides.distance_km":"","rides.passengers":"2","rides.meta":null}"#,
    ),
    (
        "missing_field:ride_id",
        r#"{"rides.started_at":"2024-03-02 08:00:00"}"#,
    ),
    (
        "invalid_value:vehicle",
        r#"{"rides.ride_id":"x","rides.vehicle":"car","rides.started_at":"2024-03-02 08:00:00"}"#,
    ),
    (
        "out_of_range:distance_km",
        r#"{"rides.ride_id":"x","rides.distance_km":501,"rides.started_at":"2024-03-02 08:00:00"}"#,
    ),
    (
        "out_of_range:passengers",
        r#"{"rides.ride_id":"x","rides.passengers":3,"rides.started_at":"2024-03-02 08:00:00"}"#,
    ),
    (
        "invalid_type:passengers",
        r#"{"rides.ride_id":"x","rides.passengers":1.5,"rides.started_at":"2024-03-02 08:00:00"}"#,
    ),
    (
        "invalid_type:duration_s",
        r#"{"rides.ride_id":"x","rides.duration_s":3000000000,"rides.started_at":"2024-03-02 08:00:00"}"#,
    ),
    (
        "invalid_type:fare_cents",
        r#"{"rides.ride_id":"x","rides.fare_cents":99999999999999999999,"rides.started_at":"2024-03-02 08:00:00"}"#,
    ),
    (
        "invalid_type:paid",
        r#"{"rides.ride_id":"x","rides.paid":"yes","rides.started_at":"2024-03-02 08:00:00"}"#,
    ),
    (
        "invalid_timestamp:started_at",
        r#"{"rides.ride_id":"x","rides.started_at":"yesterday"}"#,
    ),
    (
        "invalid_timestamp:service_day",
        r#"{"rides.ride_id":"x","rides.service_day":"2024-02-30","rides.started_at":"2024-03-02 08:00:00"}"#,
    ),
    (
        "non_finite:distance_km",
        r#"{"rides.ride_id":"x","rides.distance_km":NaN,"rides.started_at":"2024-03-02 08:00:00"}"#,
    ),
    (
        "invalid_value:meta",
        r#"{"rides.ride_id":"x","rides.meta":{"k":"\u0000"},"rides.started_at":"2024-03-02 08:00:00"}"#,
    ),
    ("duplicate", "@0"),
    (
        "conflicting_duplicate",
        r#"{"rides.ride_id":"r1","rides.distance_km":4.0,"rides.started_at":"2024-03-01T10:00:00+01:00"}"#,
    ),
    (
        "",
        r#"{"rides.ride_id":"r3","rides.vehicle":"moped","rides.started_at":"2024-03-03 08:00:00","rides.paid":false}"#,
    ),
];

fn write_rides(path: &Path) {
    let text: String = RIDES
        .iter()
        .map(|(_, r)| {
            if *r == "@0" {
                format!("{},\n", RIDES[0].1)
            } else {
                format!("{r},\n")
            }
        })
        .collect();
    std::fs::write(path, format!("[{text}")).unwrap();
}

fn expected_reasons() -> BTreeMap<String, u64> {
    RIDES
        .iter()
        .filter(|(r, _)| !r.is_empty() && *r != "duplicate")
        .map(|(r, _)| (r.to_string(), 1))
        .collect()
}

#[test]
fn a_dataset_defined_in_toml_loads_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    write_rides(&file);
    let defs = data("rides.toml");
    let db = TestDb::new();
    let run = db.load(&[s(&file), "--datasets", s(&defs), "--report", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = run.json()["files"][0].clone();
    assert_eq!(f["dataset"], "rides");
    assert_eq!(f["table"], "public.rides");
    assert_eq!(f["records"], 17);
    assert_eq!(f["loaded"], 3);
    assert_eq!(f["duplicates"], 1);
    assert_eq!(f["rejected"], 13);
    let got: BTreeMap<String, u64> = serde_json::from_value(f["reject_reasons"].clone()).unwrap();
    assert_eq!(got, expected_reasons());
    assert_eq!(f["unknown_fields"]["rides.tip"], 2); // the record and its duplicate

    // Types as the definition says.
    let mut c = db.client();
    let types: BTreeMap<String, String> = c
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_name = 'rides'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (col, ty) in [
        ("ride_id", "text"),
        ("vehicle", "text"),
        ("distance_km", "double precision"),
        ("passengers", "smallint"),
        ("duration_s", "integer"),
        ("fare_cents", "bigint"),
        ("paid", "boolean"),
        ("started_at", "timestamp with time zone"),
        ("service_day", "date"),
        ("meta", "jsonb"),
        ("_extra", "jsonb"),
    ] {
        assert_eq!(types[col], ty, "{col}");
    }
    // Values, exactly.
    let r = c
        .query_one(
            "SELECT vehicle, distance_km, passengers, duration_s, fare_cents, paid, \
             started_at = '2024-03-01 09:00:00+00', service_day::text, \
             meta = '{\"a\":[1,2.50,12345678901234567890123]}'::jsonb, \
             _extra->'rides.tip' = '123456789012345678901234567890'::jsonb, _record_index \
             FROM rides WHERE ride_id = 'r1'",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "bike");
    assert_eq!(r.get::<_, f64>(1), 3.5);
    assert_eq!(r.get::<_, i16>(2), 1);
    assert_eq!(r.get::<_, i32>(3), 600);
    assert_eq!(r.get::<_, i64>(4), 9007199254740993);
    assert!(r.get::<_, bool>(5));
    assert!(r.get::<_, bool>(6));
    assert_eq!(r.get::<_, String>(7), "2024-03-01");
    assert!(r.get::<_, bool>(8));
    assert!(r.get::<_, bool>(9));
    assert_eq!(r.get::<_, i64>(10), 0);
    let r = c
        .query_one(
            "SELECT distance_km IS NULL, passengers, meta IS NULL, _extra IS NULL FROM rides WHERE ride_id = 'r2'",
            &[],
        )
        .unwrap();
    assert!(r.get::<_, bool>(0));
    assert_eq!(r.get::<_, i16>(1), 2);
    assert!(r.get::<_, bool>(2) && r.get::<_, bool>(3));
    // The rejects, with their reasons and record indexes.
    let rejects: BTreeMap<i64, String> = c
        .query("SELECT _record_index, reason FROM rides_rejects", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (i, (reason, _)) in RIDES.iter().enumerate() {
        if !reason.is_empty() && *reason != "duplicate" {
            assert_eq!(rejects[&(i as i64)], *reason);
        }
    }

    // Re-run: skipped by its SHA-256.
    let again = db.load(&[s(&file), "--datasets", s(&defs), "--report", "json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.json()["files"][0]["status"], "skipped");

    // TIER_DATASETS works as --datasets does, and check agrees with load.
    let other = TestDb::new();
    let run = tier_cmd()
        .env("TIER_DATASETS", format!("/nonexistent:{}", s(&defs)))
        .args([
            "load",
            "--database-url",
            &other.url,
            "--report",
            "json",
            s(&file),
        ])
        .output()
        .unwrap();
    let run: Run = run.into();
    assert_eq!(run.code, 2, "a missing definition path is a usage error");
    let run: Run = tier_cmd()
        .env("TIER_DATASETS", s(&defs))
        .args([
            "load",
            "--database-url",
            &other.url,
            "--report",
            "json",
            s(&file),
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["files"][0]["loaded"], 3);
    assert_eq!(other.count("SELECT * FROM rides"), 3);
    let check: Run = tier_cmd()
        .env("TIER_DATASETS", s(&defs))
        .args(["check", "--report", "json", s(&file)])
        .output()
        .unwrap()
        .into();
    assert_eq!(check.code, 0, "{}", check.stderr);
    // Without a database, the duplicates within the file are found as a load finds them.
    assert_eq!(check.json()["files"][0]["loaded"], 3);
}

#[test]
fn detection_by_file_pattern_and_by_name_and_unkeyed_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    // No prefix in the keys: the file name tells the dataset.
    let rides = dir.path().join("Ride_Export_7.json");
    std::fs::write(
        &rides,
        "{\"ride_id\":\"a\",\"started_at\":\"2024-03-01 00:00:00\"}\n",
    )
    .unwrap();
    let pings = dir.path().join("pings.jsonl");
    std::fs::write(
        &pings,
        "{\"host\":\"a\",\"ms\":1.5}\n{\"host\":\"a\",\"ms\":1.5}\n{\"host\":\"a\",\"ms\":2}\n{\"host\":\"b\"}\n",
    )
    .unwrap();
    let db = TestDb::new();
    let run = db.load(&[
        s(&rides),
        s(&pings),
        "--datasets",
        s(&data("")),
        "--report",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let files = run.json()["files"].clone();
    assert_eq!(files[0]["dataset"], "rides");
    assert_eq!(files[0]["loaded"], 1);
    assert_eq!(files[1]["dataset"], "pings");
    assert_eq!(files[1]["loaded"], 3);
    assert_eq!(files[1]["duplicates"], 1);
    assert_eq!(db.count("SELECT * FROM pings"), 3);
    // Across files too: the same pings again load nothing new.
    let copy = dir.path().join("pings.ndjson");
    std::fs::write(&copy, "{\"host\":\"b\"}\n{\"host\":\"c\"}\n").unwrap();
    let run = db.load(&[
        s(&copy),
        "--datasets",
        s(&data("pings.toml")),
        "--report",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["files"][0]["duplicates"], 1);
    assert_eq!(db.count("SELECT * FROM pings"), 4);
    // Unknown to every definition: a usage error naming the known datasets.
    let other = dir.path().join("misc.json");
    std::fs::write(&other, "{\"x\":1}\n").unwrap();
    let run = tier(&["check", s(&other), "--datasets", s(&data(""))]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("pings") && run.stderr.contains("rides"),
        "{}",
        run.stderr
    );
}

#[test]
fn invalid_definitions_are_usage_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("weather.json");
    std::fs::write(
        &input,
        "{\"city\":\"Oslo\",\"date_time\":\"2019-06-04 14:05:13\"}\n",
    )
    .unwrap();
    let col = "[[columns]]\nname = \"a\"\ntype = \"text\"\nrequired = true\n";
    let cases = [
        (
            "syntax",
            format!("name = \"x\"\n{col}required = \n"),
            ":6",
            "",
        ),
        (
            "type",
            "name = \"x\"\n[[columns]]\nname = \"a\"\ntype = \"texte\"\n".to_string(),
            ":4",
            "unknown type",
        ),
        ("name", format!("name = \"X-1\"\n{col}"), ":1", "name `X-1`"),
        (
            "dup",
            format!("name = \"x\"\n{col}{col}"),
            ":7",
            "defined twice",
        ),
        (
            "key",
            format!("name = \"x\"\nkey = [\"b\"]\n{col}"),
            ":2",
            "`b`",
        ),
    ];
    let db = TestDb::new();
    for (label, text, line, words) in cases {
        let path = dir.path().join(format!("{label}.toml"));
        std::fs::write(&path, text).unwrap();
        for cmd in ["check", "load"] {
            let mut args = vec![cmd, s(&input), "--datasets", s(&path)];
            if cmd == "load" {
                args.extend(["--database-url", &db.url]);
            }
            let run = tier(&args);
            assert_eq!(run.code, 2, "{label} {cmd}: {}", run.stderr);
            let at = format!("{}{line}", s(&path));
            assert!(
                run.stderr.contains(&at),
                "{label}: {} lacks {at}",
                run.stderr
            );
            assert!(run.stderr.contains(words), "{label}: {}", run.stderr);
        }
    }
    // Nothing was loaded.
    assert_eq!(
        db.count("SELECT * FROM pg_tables WHERE tablename = 'weather'"),
        0
    );
}

#[test]
fn schema_prints_definitions_and_infers_one_that_loads_the_file() {
    let r = tier(&["schema", "weather", "--definition"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("key = [\"city\", \"date_time\"]"),
        "{}",
        r.stdout
    );
    let r = tier(&[
        "schema",
        "rides",
        "--definition",
        "--datasets",
        s(&data("rides.toml")),
    ]);
    assert_eq!(
        r.stdout,
        std::fs::read_to_string(data("rides.toml")).unwrap()
    );
    let r = tier(&["schema", "rides", "--datasets", s(&data("rides.toml"))]);
    assert!(r.stdout.contains("\"fare_cents\" bigint"), "{}", r.stdout);
    assert!(r.stdout.contains("\"service_day\" date"), "{}", r.stdout);
    assert_eq!(tier(&["schema", "nope"]).code, 2);

    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("Shop Orders.json");
    std::fs::write(
        &sample,
        "[{\"o.id\":\"A1\",\"o.qty\":2,\"o.price\":9,\"o.paid\":true,\"o.at\":\"2024-01-01 10:00:00\",\"o.day\":\"2024-01-01\",\"o.tags\":[\"x\"],\"o.note\":\"\"},\n\
          {\"o.id\":\"A2\",\"o.qty\":3,\"o.price\":9.5,\"o.paid\":false,\"o.at\":\"2024-01-02T10:00:00Z\",\"o.day\":\"2024-01-02\",\"o.tags\":{\"y\":1},\"o.note\":\"gift\",\"o.Bad Key\":1},\n",
    )
    .unwrap();
    let r = tier(&["schema", "infer", s(&sample)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let def = &r.stdout;
    for want in [
        "name = \"shop_orders\"",
        "prefix = \"o.\"",
        "partition_by = \"at\"",
        "name = \"qty\"\ntype = \"bigint\"\nrequired = true",
        "name = \"price\"\ntype = \"double\"",
        "name = \"paid\"\ntype = \"boolean\"",
        "name = \"at\"\ntype = \"timestamptz\"",
        "name = \"day\"\ntype = \"date\"",
        "name = \"tags\"\ntype = \"jsonb\"",
        "name = \"note\"\ntype = \"text\"\n\n",
        "# key \"o.Bad Key\"",
    ] {
        assert!(def.contains(want), "{want:?} not in\n{def}");
    }
    let toml = dir.path().join("orders.toml");
    std::fs::write(&toml, def).unwrap();
    let db = TestDb::new();
    let run = db.load(&[s(&sample), "--datasets", s(&toml), "--report", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = &run.json()["files"][0];
    assert_eq!(f["dataset"], "shop_orders");
    assert_eq!(f["loaded"], 2, "{f}");
    assert_eq!(
        db.count("SELECT * FROM shop_orders WHERE _extra ? 'o.Bad Key'"),
        1
    );
    // --sample limits what is read; --name names it.
    let r = tier(&[
        "schema",
        "infer",
        s(&sample),
        "--sample",
        "1",
        "--name",
        "orders",
    ]);
    assert!(r.stdout.contains("name = \"orders\"") && r.stdout.contains("type = \"bigint\"\nrequired = true\n\n[[columns]]\nname = \"price\"\ntype = \"bigint\""), "{}", r.stdout);
    assert_eq!(
        tier(&["schema", "infer", s(&sample), "--name", "Bad"]).code,
        2
    );
}

#[test]
fn a_new_nullable_column_is_added_other_changes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v1 = dir.path().join("v1.toml");
    let base =
        "name = \"visits\"\n[[columns]]\nname = \"page\"\ntype = \"text\"\nrequired = true\n";
    std::fs::write(&v1, base).unwrap();
    let f1 = dir.path().join("visits-1.json");
    std::fs::write(&f1, "{\"page\":\"a\",\"secs\":3}\n").unwrap();
    let db = TestDb::new();
    let run = db.load(&[
        s(&f1),
        "--dataset",
        "visits",
        "--datasets",
        s(&v1),
        "--report",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.json()["files"][0].get("added_columns").is_none());

    let v2 = dir.path().join("v2.toml");
    std::fs::write(
        &v2,
        format!("{base}[[columns]]\nname = \"secs\"\ntype = \"integer\"\n"),
    )
    .unwrap();
    let f2 = dir.path().join("visits-2.json");
    std::fs::write(&f2, "{\"page\":\"b\",\"secs\":5}\n").unwrap();
    let run = db.load(&[
        s(&f2),
        "--dataset",
        "visits",
        "--datasets",
        s(&v2),
        "--report",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.json()["files"][0]["added_columns"],
        serde_json::json!(["secs"])
    );
    let mut c = db.client();
    let rows: Vec<(String, Option<i32>)> = c
        .query("SELECT page, secs FROM visits ORDER BY page", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, vec![("a".into(), None), ("b".into(), Some(5))]);

    // A type change, a new required column: refused, naming table and column; nothing changes.
    for (label, extra) in [
        ("type", "[[columns]]\nname = \"secs\"\ntype = \"text\"\n"),
        ("required", "[[columns]]\nname = \"secs\"\ntype = \"integer\"\n[[columns]]\nname = \"user_id\"\ntype = \"text\"\nrequired = true\n"),
    ] {
        let v3 = dir.path().join(format!("v3-{label}.toml"));
        std::fs::write(&v3, format!("{base}{extra}")).unwrap();
        let f3 = dir.path().join(format!("visits-3-{label}.json"));
        std::fs::write(&f3, "{\"page\":\"c\",\"secs\":\"7\",\"user_id\":\"u\"}\n").unwrap();
        let run = db.load(&[s(&f3), "--dataset", "visits", "--datasets", s(&v3)]);
        assert_eq!(run.code, 1, "{label}: {}", run.stderr);
        assert!(run.stderr.contains("public.visits"), "{}", run.stderr);
        let col = if label == "type" { "secs" } else { "user_id" };
        assert!(run.stderr.contains(&format!("column {col}")), "{}", run.stderr);
        assert_eq!(db.count("SELECT * FROM visits"), 2);
        assert_eq!(
            db.count("SELECT * FROM information_schema.columns WHERE table_name = 'visits' AND column_name = 'secs' AND data_type = 'integer'"),
            1
        );
        assert_eq!(
            db.count("SELECT * FROM information_schema.columns WHERE table_name = 'visits' AND column_name = 'user_id'"),
            0
        );
    }
}
