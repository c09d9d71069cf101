//! The command line without a database: check, generate, schema, and errors.

mod common;

use common::*;

#[test]
fn generate_is_deterministic_and_writes_the_real_layout() {
    let dir = tempfile::tempdir().unwrap();
    let a = generate(dir.path(), "a.json", "track_events", 500, 42, 0.1);
    let b = generate(dir.path(), "b.json", "track_events", 500, 42, 0.1);
    let c = generate(dir.path(), "c.json", "track_events", 500, 43, 0.1);
    let (a, b, c) = (
        std::fs::read(a).unwrap(),
        std::fs::read(b).unwrap(),
        std::fs::read(c).unwrap(),
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.starts_with(b"[{\"segment_tracks."));
    assert!(a.ends_with(b",\n"), "no closing bracket by default");
    let csv = dir.path().join("w.csv");
    let r = tier(&[
        "generate",
        "weather",
        "--records",
        "3",
        "--csv",
        "-o",
        s(&csv),
    ]);
    assert_eq!(r.code, 0);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("city,date_time,currently_temperature,"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4);
}

#[test]
fn check_reports_every_reject_kind_and_writes_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let te = generate(
        dir.path(),
        "track_events.json",
        "track_events",
        4000,
        1,
        0.1,
    );
    let w = generate(dir.path(), "weather.json", "weather", 2000, 2, 0.2);
    let out = dir.path().join("rejects.jsonl");
    let r = tier(&[
        "check",
        s(&te),
        s(&w),
        "--report",
        "json",
        "--rejects-out",
        s(&out),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = r.json();
    let mut reasons = std::collections::BTreeSet::new();
    for f in report["files"].as_array().unwrap() {
        assert_eq!(f["status"], "checked");
        assert!(f.get("load_id").is_none() && f.get("table").is_none());
        assert_eq!(f["duplicates"], 0);
        assert_eq!(
            f["records"],
            f["loaded"].as_u64().unwrap() + f["rejected"].as_u64().unwrap()
        );
        assert_eq!(f["sha256"].as_str().unwrap().len(), 64);
        reasons.extend(
            f["reject_reasons"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.split(':').next().unwrap().to_string()),
        );
    }
    assert_eq!(report["files"][0]["records"], 4000);
    for kind in [
        "malformed_json",
        "not_an_object",
        "record_too_large",
        "missing_field",
        "invalid_type",
        "invalid_timestamp",
        "non_finite",
        "out_of_range",
        "invalid_value",
    ] {
        assert!(reasons.contains(kind), "{kind} missing from {reasons:?}");
    }
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.len() as u64,
        report["totals"]["rejected"].as_u64().unwrap()
    );
    assert!(lines
        .iter()
        .all(|l| l["reason"].is_string() && l["raw"].is_string() && l["record_index"].is_u64()));
}

#[test]
fn check_reads_gzip_and_standard_input() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let plain = generate(dir.path(), "weather.json", "weather", 300, 3, 0.0);
    let gz = dir.path().join("weather.json.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    enc.finish().unwrap();
    let r = tier(&["check", s(&gz), "--report", "json"]);
    assert_eq!(r.json()["files"][0]["loaded"], 300);
    let r: Run = tier_cmd()
        .args(["check", "-", "--report", "json"])
        .stdin(std::fs::File::open(&plain).unwrap())
        .output()
        .unwrap()
        .into();
    assert_eq!(r.json()["files"][0]["loaded"], 300);
    assert_eq!(r.json()["files"][0]["dataset"], "weather");
}

#[test]
fn bad_inputs_are_one_clear_line_with_the_right_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<String>, i32, &str)> = {
        let missing = dir.path().join("missing.json");
        let empty_dir = dir.path().join("empty");
        std::fs::create_dir(&empty_dir).unwrap();
        let bad_gz = dir.path().join("weather.json.gz");
        std::fs::write(&bad_gz, b"\x1f\x8bthis is not gzip at all").unwrap();
        let anon = dir.path().join("events.json");
        std::fs::write(&anon, "{\"a\":1}\n").unwrap();
        vec![
            (vec!["check".into(), s(&missing).into()], 1, "missing.json"),
            (vec!["check".into(), s(&empty_dir).into()], 1, "empty"),
            (
                vec!["check".into(), s(&bad_gz).into()],
                1,
                "weather.json.gz",
            ),
            (vec!["check".into(), s(&anon).into()], 2, "events.json"),
            (
                vec![
                    "check".into(),
                    "--dataset".into(),
                    "nope".into(),
                    s(&anon).into(),
                ],
                2,
                "nope",
            ),
            (vec!["load".into(), s(&missing).into()], 1, "missing.json"),
            (
                vec![
                    "generate".into(),
                    "weather".into(),
                    "--records".into(),
                    "x".into(),
                    "-o".into(),
                    "-".into(),
                ],
                2,
                "records",
            ),
        ]
    };
    for (args, code, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = tier(&args);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{args:?}: {}", r.stderr);
    }
    // --dataset makes an unprefixed file loadable.
    let anon = dir.path().join("events.json");
    let r = tier(&[
        "check",
        "--dataset",
        "weather",
        s(&anon),
        "--report",
        "json",
    ]);
    assert_eq!(
        r.json()["files"][0]["reject_reasons"]["missing_field:city"],
        1
    );
}

#[test]
fn schema_prints_the_ddl() {
    let r = tier(&["schema", "weather"]);
    assert_eq!(r.code, 0);
    assert!(r
        .stdout
        .contains("CREATE TABLE IF NOT EXISTS \"public\".\"weather\""));
    assert!(r.stdout.contains("\"currently_humidity\" double precision"));
    assert!(!r.stdout.contains("track_events"));
    let all = tier(&["schema"]);
    assert!(all.stdout.contains("\"track_events\"") && all.stdout.contains("\"tier_loads\""));
}
