//! `tier load` against a real PostgreSQL server: counts, idempotency, atomicity, concurrency.

use std::collections::BTreeMap;

use crate::common::*;

fn reasons_in_db(db: &TestDb, table: &str) -> BTreeMap<String, u64> {
    db.client()
        .query(
            &format!("SELECT reason, count(*) FROM {table}_rejects GROUP BY 1"),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
        .collect()
}

#[test]
fn counts_in_the_database_equal_the_report() {
    let dir = tempfile::tempdir().unwrap();
    exports(dir.path(), 3000, 600, 1, 0.05);
    let db = TestDb::new();
    let run = db.load(&[s(dir.path()), "--report", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    for f in files {
        let table = f["dataset"].as_str().unwrap();
        let n = |k: &str| f[k].as_u64().unwrap();
        assert_eq!(f["status"], "succeeded");
        assert_eq!(n("records"), n("loaded") + n("duplicates") + n("rejected"));
        assert!(
            n("loaded") > 0 && n("duplicates") > 0 && n("rejected") > 0,
            "{f}"
        );
        assert_eq!(
            db.count(&format!("SELECT * FROM {table}")) as u64,
            n("loaded")
        );
        assert_eq!(
            db.count(&format!("SELECT * FROM {table}_rejects")) as u64,
            n("rejected")
        );
        let want: BTreeMap<String, u64> =
            serde_json::from_value(f["reject_reasons"].clone()).unwrap();
        assert_eq!(reasons_in_db(&db, table), want);
        let ledger = db.client().query_one(
            "SELECT load_id, status, records, loaded, duplicates, rejected, sha256 FROM tier_loads WHERE target_table = $1",
            &[&format!("public.{table}")],
        ).unwrap();
        assert_eq!(ledger.get::<_, i64>(0), f["load_id"].as_i64().unwrap());
        assert_eq!(ledger.get::<_, String>(1), "succeeded");
        assert_eq!(ledger.get::<_, i64>(2) as u64, n("records"));
        assert_eq!(ledger.get::<_, i64>(3) as u64, n("loaded"));
        assert_eq!(ledger.get::<_, i64>(4) as u64, n("duplicates"));
        assert_eq!(ledger.get::<_, i64>(5) as u64, n("rejected"));
        assert_eq!(ledger.get::<_, String>(6), f["sha256"].as_str().unwrap());
    }
    let t = report["totals"].clone();
    let sum = |k: &str| files.iter().map(|f| f[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(t["records"].as_u64().unwrap(), sum("records"));
    // Weather defects include conflicting duplicates.
    let w = files.iter().find(|f| f["dataset"] == "weather").unwrap();
    assert!(
        w["reject_reasons"]["conflicting_duplicate"]
            .as_u64()
            .unwrap()
            > 0,
        "{w}"
    );
    // Lineage: every row knows its load and its place in the file.
    assert_eq!(
        db.count("SELECT * FROM track_events t JOIN tier_loads l ON l.load_id = t._load_id"),
        db.count("SELECT * FROM track_events")
    );
}

#[test]
fn rerun_is_skipped_and_force_adds_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(
        dir.path(),
        "track_events.json",
        "track_events",
        2000,
        3,
        0.05,
    );
    let db = TestDb::new();
    let first = db.load(&[s(&file), "--report", "json"]).json();
    let loaded = first["files"][0]["loaded"].as_u64().unwrap();
    let again = db.load(&[s(&file), "--report", "json"]);
    assert_eq!(again.code, 0);
    let again = again.json();
    assert_eq!(again["files"][0]["status"], "skipped");
    assert_eq!(again["files"][0]["load_id"], first["files"][0]["load_id"]);
    assert_eq!(db.count("SELECT * FROM track_events") as u64, loaded);
    let forced = db.load(&[s(&file), "--force", "--report", "json"]).json();
    let f = &forced["files"][0];
    assert_eq!(f["status"], "succeeded");
    assert_eq!(f["loaded"], 0);
    assert_eq!(
        f["duplicates"].as_u64().unwrap(),
        loaded + first["files"][0]["duplicates"].as_u64().unwrap()
    );
    assert_eq!(db.count("SELECT * FROM track_events") as u64, loaded);
    // --replace empties the table first, in the same transaction.
    let replaced = db.load(&[s(&file), "--replace", "--report", "json"]).json();
    assert_eq!(replaced["files"][0]["loaded"].as_u64().unwrap(), loaded);
    assert_eq!(db.count("SELECT * FROM track_events") as u64, loaded);
    assert_eq!(db.count("SELECT DISTINCT _load_id FROM track_events"), 1);
    // The replaced loads' rejects went with their rows.
    let rejected = replaced["files"][0]["rejected"].as_i64().unwrap();
    assert!(rejected > 0);
    assert_eq!(db.count("SELECT * FROM track_events_rejects"), rejected);
    // The loads whose rows --replace removed no longer count as loaded.
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'succeeded'"),
        1
    );
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'replaced'"),
        2
    );
}

#[test]
fn duplicates_across_files_are_skipped_and_weather_conflicts_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a_weather.json");
    let b = dir.path().join("b_weather.json");
    let rec = |city: &str, t: f64| {
        format!(
            r#"{{"weather_data.city":"{city}","weather_data.date_time":"2019-06-04 14:05:13","weather_data.currently_temperature":{t}}}"#
        )
    };
    std::fs::write(
        &a,
        format!("[{},\n{},\n", rec("Oslo", 10.0), rec("Rome", 20.0)),
    )
    .unwrap();
    std::fs::write(
        &b,
        format!(
            "[{},\n{},\n{}]",
            rec("Oslo", 10.0),
            rec("Rome", 25.5),
            rec("Rome", 20.0)
        ),
    )
    .unwrap();
    let db = TestDb::new();
    assert_eq!(db.load(&[s(&a)]).code, 0);
    let r = db.load(&[s(&b), "--report", "json"]).json();
    let f = &r["files"][0];
    assert_eq!(
        (
            f["loaded"].as_u64(),
            f["duplicates"].as_u64(),
            f["rejected"].as_u64()
        ),
        (Some(0), Some(2), Some(1))
    );
    assert_eq!(f["reject_reasons"]["conflicting_duplicate"], 1);
    let raw: String = db
        .client()
        .query_one("SELECT raw FROM weather_rejects", &[])
        .unwrap()
        .get(0);
    assert!(raw.contains("25.5"), "{raw}");
    assert_eq!(
        db.count("SELECT * FROM weather WHERE currently_temperature = 20"),
        1
    );
    // Track events equal in all columns are duplicates across files too.
    let te = r#"{"segment_tracks.anonymous_id":"A","segment_tracks.event_name":"E","segment_tracks.received_time":"2019-05-13 14:23:46","segment_tracks.shoe_size":44}"#;
    let c = dir.path().join("one_track.json");
    let d = dir.path().join("two_track.json");
    std::fs::write(&c, format!("{te}\n{te}\n")).unwrap();
    std::fs::write(&d, format!("{}\n", te.replace("14:23:46\"", "14:23:46Z\""))).unwrap();
    let r = db.load(&[s(&c), s(&d), "--report", "json"]).json();
    assert_eq!(r["totals"]["loaded"], 1);
    assert_eq!(r["totals"]["duplicates"], 2);
    assert_eq!(
        r["files"][0]["unknown_fields"]["segment_tracks.shoe_size"],
        2
    );
    let (extra, index): (String, i64) = {
        let row = db
            .client()
            .query_one("SELECT _extra::text, _record_index FROM track_events", &[])
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(extra, r#"{"segment_tracks.shoe_size": 44}"#);
    assert_eq!(index, 0, "the first occurrence wins");
}

#[test]
fn mostly_conflicting_records_are_not_taken_for_another_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let rec = |city: &str, t: f64| {
        format!(
            r#"{{"weather_data.city":"{city}","weather_data.date_time":"2019-06-04 14:05:13","weather_data.currently_temperature":{t}}}"#
        )
    };
    let a = dir.path().join("a_weather.json");
    let b = dir.path().join("b_weather.json");
    std::fs::write(&a, format!("{}\n{}\n", rec("Oslo", 1.0), rec("Rome", 2.0))).unwrap();
    std::fs::write(&b, format!("{}\n{}\n", rec("Oslo", 3.0), rec("Rome", 4.0))).unwrap();
    let db = TestDb::new();
    assert_eq!(db.load(&[s(&a)]).code, 0);
    let run = db.load(&[s(&b), "--report", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.json()["files"][0]["reject_reasons"]["conflicting_duplicate"],
        2
    );
    assert!(
        run.stderr
            .contains("2 of 2 records have a key that a row or record of other values holds"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("is it really"), "{}", run.stderr);
    // Records rejected for their values are.
    let invalid = dir.path().join("c_weather.json");
    std::fs::write(
        &invalid,
        r#"{"weather_data.date_time":"2019-06-04 14:05:13","weather_data.currently_temperature":5}"#,
    )
    .unwrap();
    let run = tier(&["check", s(&invalid)]);
    assert!(
        run.stderr
            .contains("1 of 1 records rejected; is it really a weather export?"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_partitioned_table_made_beforehand_is_loaded_empty_and_populated() {
    // tier's own DDL for weather, its table partitioned by time.
    let ddl = tier(&["schema", "weather"]).stdout;
    let start = ddl
        .find(r#"CREATE TABLE IF NOT EXISTS "public"."weather" ("#)
        .unwrap();
    let end = start + ddl[start..].find("\n);").unwrap();
    let ddl = format!(
        "{}\n) PARTITION BY RANGE (date_time);\n\
         CREATE TABLE weather_2019 PARTITION OF weather FOR VALUES FROM ('2019-01-01') TO ('2020-01-01');\n\
         CREATE TABLE weather_other PARTITION OF weather DEFAULT;{}",
        &ddl[..end],
        &ddl[end + 3..]
    );
    let db = TestDb::new();
    db.client().batch_execute(&ddl).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = generate(dir.path(), "a_weather.json", "weather", 500, 1, 0.05);
    let b = generate(dir.path(), "b_weather.json", "weather", 500, 2, 0.05);
    // The first load finds the table empty (the bulk route), the second populated.
    let mut loaded = 0;
    for file in [&a, &b] {
        let run = db.load(&[s(file), "--report", "json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let f = &run.json()["files"][0];
        assert_eq!(f["status"], "succeeded", "{f}");
        loaded += f["loaded"].as_i64().unwrap();
    }
    assert!(loaded > 0);
    assert_eq!(db.count("SELECT * FROM weather"), loaded);
    assert_eq!(db.count("SELECT * FROM weather_2019"), loaded);
    assert_eq!(
        db.count("SELECT DISTINCT city, date_time FROM weather"),
        loaded
    );
    assert_eq!(
        db.count("SELECT * FROM pg_index WHERE indrelid = 'weather'::regclass AND indisunique"),
        1
    );
}

#[test]
fn a_role_that_does_not_own_the_tables_loads_into_them_empty() {
    let dir = tempfile::tempdir().unwrap();
    exports(dir.path(), 1000, 300, 4, 0.05);
    let db = TestDb::new();
    // The tables made (and owned) by the server's superuser, then emptied.
    assert_eq!(db.load(&[s(dir.path())]).code, 0);
    let role = format!("loader_{}", std::process::id());
    db.client()
        .batch_execute(&format!(
            "TRUNCATE track_events, track_events_rejects, weather, weather_rejects, tier_loads;
             DROP ROLE IF EXISTS {role}; CREATE ROLE {role} NOLOGIN;
             GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO {role};
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}"
        ))
        .unwrap();
    // Connected as that role: it may insert, not drop the tables' indexes.
    let url = format!("{} options='-c role={role}'", db.url);
    let run = tier(&[
        "load",
        "--database-url",
        &url,
        "--progress",
        "never",
        "--report",
        "json",
        s(dir.path()),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for f in run.json()["files"].as_array().unwrap() {
        assert_eq!(f["status"], "succeeded", "{f}");
        let table = f["dataset"].as_str().unwrap();
        assert_eq!(
            db.count(&format!("SELECT * FROM {table}")),
            f["loaded"].as_i64().unwrap()
        );
    }
    assert_eq!(
        db.count("SELECT * FROM pg_indexes WHERE indexname IN ('track_events_key', 'weather_key')"),
        2
    );
    db.client()
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role}"))
        .unwrap();
}

#[test]
fn an_empty_table_whose_key_a_foreign_key_references_is_loaded() {
    let db = TestDb::new();
    let mut c = db.client();
    c.batch_execute(&tier(&["schema", "weather"]).stdout)
        .unwrap();
    // The unique index cannot be dropped for a bulk load: the load goes direct.
    c.batch_execute(
        "CREATE TABLE notes (city text, date_time timestamptz, note text,
           FOREIGN KEY (date_time, city) REFERENCES weather (date_time, city))",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 400, 5, 0.05);
    let run = db.load(&[s(&file), "--report", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = &run.json()["files"][0];
    assert_eq!(f["status"], "succeeded", "{f}");
    let loaded = f["loaded"].as_i64().unwrap();
    assert!(loaded > 0);
    assert_eq!(db.count("SELECT * FROM weather"), loaded);
    c.batch_execute(
        "INSERT INTO notes SELECT city, date_time, 'checked' FROM weather ORDER BY date_time LIMIT 1",
    )
    .unwrap();
}

#[test]
fn quality_gate_rolls_back_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 400, 4, 0.2);
    let db = TestDb::new();
    let run = db.load(&[s(&file), "--max-reject-ratio", "0.01", "--report", "json"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let f = &run.json()["files"][0];
    assert_eq!(f["status"], "failed");
    // Nothing loaded; what would have, in its own field.
    assert_eq!(f["loaded"], 0, "{f}");
    let n = |k: &str| f[k].as_u64().unwrap();
    assert!(n("rolled_back") > 0);
    assert_eq!(
        n("records"),
        n("rolled_back") + n("duplicates") + n("rejected")
    );
    assert!(run.stderr.contains("weather.json"), "{}", run.stderr);
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'failed' AND loaded = 0"),
        1
    );
    // check agrees, given the same ratio.
    let check = tier(&[
        "check",
        s(&file),
        "--max-reject-ratio",
        "0.01",
        "--report",
        "json",
    ]);
    assert_eq!(check.code, 3, "{}", check.stderr);
    assert_eq!(check.json()["files"][0]["status"], "failed");
    assert_eq!(db.count("SELECT * FROM weather"), 0);
    assert_eq!(db.count("SELECT * FROM weather_rejects"), 0);
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'failed'"),
        1
    );
    assert_eq!(
        db.count("SELECT * FROM tier_loads WHERE status = 'succeeded'"),
        0
    );
    // Within the gate, the same file loads.
    assert_eq!(db.load(&[s(&file), "--max-reject-ratio", "0.5"]).code, 0);
    assert!(db.count("SELECT * FROM weather") > 0);
}

#[test]
fn standard_input_loads_and_is_skipped_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "w.json", "weather", 50, 9, 0.0);
    let db = TestDb::new();
    let pipe = |extra: &[&str]| -> Run {
        let mut args = vec![
            "load",
            "--database-url",
            db.url.as_str(),
            "--report",
            "json",
            "-",
        ];
        args.extend_from_slice(extra);
        tier_cmd()
            .args(&args)
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .unwrap()
            .into()
    };
    let first = pipe(&[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.json()["files"][0]["loaded"], 50);
    let second = pipe(&[]).json();
    assert_eq!(second["files"][0]["status"], "skipped");
    assert_eq!(db.count("SELECT * FROM weather"), 50);
}

#[test]
fn hostile_schema_name_is_refused_and_odd_ones_are_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 20, 10, 0.0);
    let db = TestDb::new();
    let schema = r#"x"; DROP TABLE pg_class; --"#;
    let run = db.load(&[s(&file), "--schema", schema]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("schema name"), "{}", run.stderr);
    assert_eq!(
        db.count("SELECT * FROM pg_tables WHERE tablename = 'weather'"),
        0
    );
    assert_eq!(tier(&["schema", "--schema", schema]).code, 2);
    // Names PostgreSQL reserves: refused before connecting.
    let run = tier(&[
        "load",
        s(&file),
        "--schema",
        "pg_temp2",
        "--database-url",
        "postgresql://u@127.0.0.1:1/x",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("reserved"), "{}", run.stderr);
    // Mixed case and `$` are fine, and quoted wherever they are used.
    let odd = "Analytics$2";
    let run = db.load(&[s(&file), "--schema", odd]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        db.count(&format!(
            "SELECT * FROM {}.weather",
            tier_core::db::ddl::quote_ident(odd)
        )),
        20
    );
}

#[test]
fn incompatible_table_is_an_error_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 20, 11, 0.0);
    let db = TestDb::new();
    db.client()
        .batch_execute("CREATE TABLE weather (city integer, date_time varchar(20))")
        .unwrap();
    let run = db.load(&[s(&file)]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("incompatible"), "{}", run.stderr);
    // Each difference named, types as PostgreSQL names them.
    for found in [
        "column city is integer, not text",
        "column date_time is character varying, not timestamp with time zone",
    ] {
        assert!(run.stderr.contains(found), "{found}: {}", run.stderr);
    }
    assert_eq!(
        db.count("SELECT * FROM pg_tables WHERE tablename IN ('tier_loads', 'weather_rejects')"),
        0
    );
}

#[test]
fn parallel_jobs_load_both_datasets() {
    let dir = tempfile::tempdir().unwrap();
    exports(dir.path(), 2000, 400, 13, 0.02);
    let db = TestDb::new();
    let run = db.load(&[s(dir.path()), "--jobs", "2", "--report", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = run.json();
    assert_eq!(
        r["files"][0]["dataset"], "track_events",
        "reports keep the input order"
    );
    assert_eq!(r["files"][1]["dataset"], "weather");
    let loaded = r["totals"]["loaded"].as_i64().unwrap();
    assert_eq!(
        db.count("SELECT * FROM track_events") + db.count("SELECT * FROM weather"),
        loaded
    );
}

#[test]
fn log_file_has_timed_records_and_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 20, 17, 0.1);
    let log = dir.path().join("run.log");
    let db = TestDb::new();
    let ok: Run = tier_cmd()
        .env("RUST_LOG", "info")
        .args([
            "load",
            "--progress",
            "never",
            "--database-url",
            &db.url,
            "--log-file",
            s(&log),
            s(&file),
        ])
        .output()
        .unwrap()
        .into();
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let bad = tier(&[
        "load",
        "--log-file",
        s(&log),
        "--database-url",
        "postgresql://tier:l0g-s3cret@127.0.0.1:1/tier",
        s(&file),
    ]);
    assert_eq!(bad.code, 1);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(" INFO  tier_core::"), "{text}");
    assert!(
        text.contains(" ERROR tier] ") && text.contains("cannot connect"),
        "{text}"
    );
    assert!(!text.contains("l0g-s3cret"), "{text}");
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("[20") && first.contains('T'),
        "records carry their time: {first}"
    );
}

/// Numbers under keys no column names reach `_extra` exactly as written, at any depth.
#[test]
fn numbers_in_extra_are_kept_exactly() {
    const NUMBERS: [&str; 10] = [
        "123456789012345678901234567890",
        "18446744073709551616",
        "-9223372036854775809",
        "3.141592653589793238462643383279",
        "0.1000000000000000055511151231257827",
        "1e999",
        "1E-400",
        "-0",
        "-0.0",
        "2.50",
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weather.json");
    let mut text = String::new();
    for (i, n) in NUMBERS.iter().enumerate() {
        text.push_str(&format!(
            "{{\"city\":\"C{i}\",\"date_time\":\"2019-06-04 14:05:13\",\"k\":{n},\"deep\":{{\"a\":[1,{{\"b\":{n}}}]}},\"arr\":[{n},{n}]}}\n"
        ));
    }
    // NUL cannot be stored in jsonb: that record is rejected, the next still loads.
    text.push_str("{\"city\":\"N\",\"date_time\":\"2019-06-04 14:05:13\",\"k\":\"a\\u0000b\"}\n");
    // Typed columns still reject what does not fit them.
    text.push_str(
        "{\"city\":\"T\",\"date_time\":\"2019-06-04 14:05:13\",\"currently_temperature\":1e999}\n",
    );
    text.push_str("{\"city\":\"Z\",\"date_time\":\"2019-06-04 14:05:13\",\"k\":NaN}\n");
    std::fs::write(&path, &text).unwrap();

    let check = tier(&["check", s(&path), "--report", "json"]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    let c = &check.json()["files"][0];
    assert_eq!(c["rejected"], 2, "{c}");

    let db = TestDb::new();
    let run = db.load(&[s(&path), "--report", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = &run.json()["files"][0];
    assert_eq!(f["loaded"], NUMBERS.len() as u64 + 1);
    assert_eq!(f["reject_reasons"]["invalid_value:_extra"], 1);
    assert_eq!(f["reject_reasons"]["non_finite:currently_temperature"], 1);
    let mut client = db.client();
    for (i, n) in NUMBERS.iter().enumerate() {
        let row = client
            .query_one(
                &format!(
                    "SELECT _extra->'k' = '{n}'::jsonb, _extra#>'{{deep,a,1,b}}' = '{n}'::jsonb, \
                     _extra->'arr' = '[{n},{n}]'::jsonb, (_extra->>'k')::numeric = '{n}'::numeric \
                     FROM weather WHERE city = 'C{i}'"
                ),
                &[],
            )
            .unwrap();
        for j in 0..4 {
            assert!(row.get::<_, bool>(j), "{n}: check {j}");
        }
    }
    assert_eq!(
        db.count("SELECT * FROM weather WHERE city = 'Z' AND _extra->>'k' = 'NaN'"),
        1
    );
    let (reason, raw): (String, String) = {
        let r = client
            .query_one(
                "SELECT reason, raw FROM weather_rejects WHERE _record_index = 10",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(reason, "invalid_value:_extra");
    assert!(raw.contains("\\u0000"), "{raw}");
}

#[test]
fn the_ledger_is_printed_and_rejects_written_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    exports(dir.path(), 300, 200, 21, 0.1);
    let db = TestDb::new();
    let empty = tier(&["loads", "--database-url", &db.url, "--report", "json"]);
    assert_eq!(empty.code, 0, "{}", empty.stderr);
    assert_eq!(empty.json()["loads"], serde_json::json!([]));
    let out = dir.path().join("rejects.ndjson");
    let run = db.load(&[s(dir.path()), "--rejects-out", s(&out), "--report", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Every reject, conflicting duplicates within a file included (into empty tables they are
    // found while reading; against rows already in a table, in the database).
    let read_rejects: u64 = report["totals"]["rejected"].as_u64().unwrap();
    assert!(lines.iter().any(|l| l["reason"] == "conflicting_duplicate"));
    assert_eq!(lines.len() as u64, read_rejects);
    for l in &lines {
        assert!(l["file"].as_str().unwrap().ends_with(".json"));
        assert!(l["record_index"].is_u64() && l["reason"].is_string() && l["raw"].is_string());
    }
    let loads = tier(&["loads", "--database-url", &db.url, "--report", "json"]);
    let rows = loads.json()["loads"].as_array().unwrap().clone();
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0]["load_id"].as_i64() > rows[1]["load_id"].as_i64(),
        "newest first"
    );
    assert_eq!(rows[0]["status"], "succeeded");
    let one = tier(&[
        "loads",
        "--database-url",
        &db.url,
        "--table",
        "weather",
        "--report",
        "json",
    ]);
    assert_eq!(one.json()["loads"].as_array().unwrap().len(), 1);
    let text = tier(&["loads", "--database-url", &db.url, "--limit", "1"]);
    assert_eq!(text.stdout.lines().count(), 1, "{}", text.stdout);
    assert!(text.stdout.contains("succeeded"), "{}", text.stdout);
}

/// A number PostgreSQL's `numeric` cannot hold rejects its record alone, in `_extra` and in a
/// `jsonb` column alike; check, load, the lake and the lake loaded into PostgreSQL agree; the
/// largest numbers it holds load.
#[test]
fn a_number_numeric_cannot_hold_rejects_its_record_only() {
    let ones = |n: usize| "1".repeat(n);
    let fits = [
        "1e131071".to_string(),
        "1e-16383".into(),
        ones(131_072),
        format!("0.{}", ones(16_383)),
    ];
    let overflows = ["1e131072".to_string(), "1e-16384".into(), ones(131_073)];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ride_export_1.json");
    let mut text = String::new();
    for (i, (n, in_meta)) in fits
        .iter()
        .chain(&overflows)
        .flat_map(|n| [(n, false), (n, true)])
        .enumerate()
    {
        let value = if in_meta {
            format!("\"rides.meta\":{{\"n\":[{n}]}}")
        } else {
            format!("\"x\":{{\"n\":{n}}}")
        };
        text.push_str(&format!(
            "{{\"rides.ride_id\":\"r{i}\",\"rides.started_at\":\"2024-03-01 10:00:00\",{value}}}\n"
        ));
    }
    std::fs::write(&path, &text).unwrap();
    let defs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rides.toml");
    let expect = |f: &serde_json::Value| {
        assert_eq!(f["records"], 14, "{f}");
        assert_eq!(f["loaded"], 8, "{f}");
        assert_eq!(f["rejected"], 6, "{f}");
        assert_eq!(f["reject_reasons"]["out_of_range:_extra"], 3, "{f}");
        assert_eq!(f["reject_reasons"]["out_of_range:meta"], 3, "{f}");
    };
    let check = tier(&[
        "check",
        s(&path),
        "--datasets",
        s(&defs),
        "--report",
        "json",
    ]);
    assert_eq!(check.code, 0, "{}", check.stderr);
    expect(&check.json()["files"][0]);
    let db = TestDb::new();
    let run = db.load(&[s(&path), "--datasets", s(&defs), "--report", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    expect(&run.json()["files"][0]);
    assert_eq!(db.count("SELECT * FROM rides"), 8);
    assert_eq!(db.count("SELECT * FROM rides_rejects"), 6);
    let lake = dir.path().join("lake");
    let run = tier(&[
        "load",
        "--lake",
        s(&lake),
        "--datasets",
        s(&defs),
        "--report",
        "json",
        s(&path),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    expect(&run.json()["files"][0]);
    let from_lake = TestDb::new();
    let run = from_lake.load(&[s(&lake), "--datasets", s(&defs)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(from_lake.count("SELECT * FROM rides"), 8);
}

/// A file whose every record is rejected (read as the wrong dataset) fails, in load, check and
/// the lake alike, unless `--max-reject-ratio 1` allows it; keys kept in `_extra` are counted
/// for the records that pass only.
#[test]
fn a_file_whose_every_record_is_rejected_fails_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 50, 8, 0.0);
    let db = TestDb::new();
    let wrong = ["--dataset", "track_events", "--report", "json"];
    let run = db.load(&[&[s(&file)][..], &wrong].concat());
    assert_eq!(run.code, 3, "{}", run.stderr);
    let f = &run.json()["files"][0];
    assert_eq!(f["status"], "failed");
    assert_eq!(f["rejected"], 50);
    assert!(run.stderr.contains("every one of them"), "{}", run.stderr);
    assert!(run.stderr.contains("--dataset"), "{}", run.stderr);
    assert_eq!(f["unknown_fields"], serde_json::json!({}), "{f}");
    assert_eq!(db.count("SELECT * FROM track_events_rejects"), 0);
    let check = tier(&[&["check", s(&file)][..], &wrong].concat());
    assert_eq!(check.code, 3, "{}", check.stderr);
    let lake = dir.path().join("lake");
    let r = tier(&[&["load", "--lake", s(&lake), s(&file)][..], &wrong].concat());
    assert_eq!(r.code, 3, "{}", r.stderr);
    let allowed = db.load(&[&[s(&file), "--max-reject-ratio", "1"][..], &wrong].concat());
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    assert_eq!(allowed.json()["files"][0]["status"], "succeeded");
    assert_eq!(db.count("SELECT * FROM track_events_rejects"), 50);
}

/// Every file's dataset is told before any is loaded: files of no known dataset stop the run
/// before it loads the good ones, each named with why; an empty file is said to be empty.
#[test]
fn files_of_no_known_dataset_stop_the_run_before_anything_loads() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), "weather.json", "weather", 20, 1, 0.0);
    std::fs::write(dir.path().join("events.json"), "{\"a\":1}\n").unwrap();
    std::fs::write(dir.path().join("nothing.json"), "").unwrap();
    let db = TestDb::new();
    let run = db.load(&[s(dir.path())]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("nothing was loaded"), "{}", run.stderr);
    assert!(
        run.stderr.contains("events.json: cannot tell"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing.json: empty"), "{}", run.stderr);
    assert!(run.stderr.contains("--dataset"), "{}", run.stderr);
    assert_eq!(
        db.count("SELECT * FROM pg_tables WHERE tablename = 'weather'"),
        0
    );
}

/// `--log-format json`: every line of the log is one JSON object; a file's line holds its
/// report's fields.
#[test]
fn the_log_as_json_lines_holds_each_files_report() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 50, 9, 0.1);
    let db = TestDb::new();
    let run: Run = tier_cmd()
        .env_remove("RUST_LOG")
        .args([
            "load",
            "--database-url",
            &db.url,
            "--progress",
            "never",
            "-v",
        ])
        .args(["--log-format", "json", s(&file)])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let file_line = lines
        .iter()
        .find(|l| l["path"] == s(&file))
        .expect("a line with the file's report");
    assert_eq!(file_line["level"], "INFO");
    assert_eq!(file_line["status"], "succeeded");
    assert_eq!(file_line["records"], 50);
    assert!(file_line["time"].is_string() && file_line["message"].is_string());
}

/// Conflicting duplicates found against the table's rows reach `--rejects-out` too, also when
/// the quality gate rolls the load back (then the file is their only trace).
#[test]
fn conflicts_with_the_table_reach_rejects_out_even_when_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let row = |city: &str, t: f64| {
        format!("{{\"weather_data.city\":\"{city}\",\"weather_data.date_time\":\"2019-06-04 14:05:13\",\"weather_data.currently_temperature\":{t}}}\n")
    };
    let a = dir.path().join("a_weather.json");
    std::fs::write(&a, row("Oslo", 1.0) + &row("Rome", 2.0)).unwrap();
    let b = dir.path().join("b_weather.json");
    std::fs::write(&b, row("Oslo", 5.0) + &row("Rome", 6.0) + &row("Kyiv", 3.0)).unwrap();
    let db = TestDb::new();
    assert_eq!(db.load(&[s(&a)]).code, 0);
    let out = dir.path().join("rejects.jsonl");
    let run = db.load(&[s(&b), "--rejects-out", s(&out), "--max-reject-ratio", "0.5"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let lines = std::fs::read_to_string(&out).unwrap();
    let conflicts: Vec<&str> = lines
        .lines()
        .filter(|l| l.contains("conflicting_duplicate"))
        .collect();
    assert_eq!(conflicts.len(), 2, "{lines}");
    assert!(conflicts.iter().any(|l| l.contains("Oslo")), "{lines}");
    assert_eq!(db.count("SELECT * FROM weather"), 2);
    assert_eq!(db.count("SELECT * FROM weather_rejects"), 0);
}

/// The ledger is indexed by source (a re-run's and a watcher's look-ups), also a ledger made
/// before the index was.
#[test]
fn the_ledger_is_indexed_by_source_also_when_older() {
    let dir = tempfile::tempdir().unwrap();
    let a = generate(dir.path(), "weather.json", "weather", 10, 1, 0.0);
    let b = generate(dir.path(), "weather_2.json", "weather", 10, 2, 0.0);
    let db = TestDb::new();
    let index = "SELECT 1 WHERE to_regclass('tier_loads_source_idx') IS NOT NULL";
    assert_eq!(db.load(&[s(&a)]).code, 0);
    assert_eq!(db.count(index), 1);
    db.client()
        .batch_execute("DROP INDEX tier_loads_source_idx")
        .unwrap();
    assert_eq!(db.load(&[s(&b)]).code, 0);
    assert_eq!(db.count(index), 1);
}

/// Quiet by default, like psql: nothing but the report unless something is wrong; a log file
/// (only when asked) holds each file's result whatever standard error shows.
#[test]
fn quiet_by_default_and_the_log_file_holds_each_result() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 20, 18, 0.0);
    let log = dir.path().join("run.log");
    let db = TestDb::new();
    let run: Run = tier_cmd()
        .env_remove("RUST_LOG")
        .args(["load", "--progress", "never", "--database-url", &db.url])
        .args(["--log-file", s(&log), s(&file)])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "", "nothing on standard error");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("{}: succeeded, 20 records: 20 loaded", s(&file))),
        "{text}"
    );
}
