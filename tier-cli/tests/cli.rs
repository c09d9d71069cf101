//! The command line without a database: check, generate, schema, and errors.

use std::path::Path;

use crate::common::*;

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
        // Every record accounted for, duplicates within the file included (as a load counts).
        assert_eq!(
            f["records"],
            f["loaded"].as_u64().unwrap()
                + f["duplicates"].as_u64().unwrap()
                + f["rejected"].as_u64().unwrap()
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

#[test]
fn directories_are_walked_recursively_and_globs_filter() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("2024").join("03");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::create_dir_all(dir.path().join(".hidden")).unwrap();
    let one = generate(dir.path(), "weather.json", "weather", 5, 1, 0.0);
    generate(&nested, "weather-deep.json", "weather", 7, 2, 0.0);
    generate(
        &dir.path().join(".hidden"),
        "weather.json",
        "weather",
        9,
        3,
        0.0,
    );
    std::fs::write(dir.path().join("notes.txt"), "not an export").unwrap();
    let r = tier(&["check", s(dir.path()), "--report", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files = r.json()["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 2, "hidden folders are passed over");
    assert_eq!(r.json()["totals"]["records"], 12);
    let r = tier(&[
        "check",
        s(dir.path()),
        "--glob",
        "2024/**",
        "--report",
        "json",
    ]);
    assert_eq!(r.json()["files"].as_array().unwrap().len(), 1);
    assert!(r.json()["files"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("weather-deep.json"));
    let r = tier(&["check", s(dir.path()), "--glob", "*.ndjson"]);
    assert_eq!(r.code, 1, "nothing matches: {}", r.stderr);
    // A file named explicitly is taken as it is.
    let r = tier(&["check", s(&one), "--glob", "*.ndjson", "--report", "json"]);
    assert_eq!(r.json()["files"][0]["records"], 5);
}

#[test]
fn a_misnamed_file_is_refused_unless_its_dataset_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let w = generate(dir.path(), "track_events_2019.json", "weather", 20, 1, 0.0);
    let r = tier(&["check", s(&w)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("track_events_2019.json")
            && r.stderr.contains("track_events")
            && r.stderr.contains("weather"),
        "{}",
        r.stderr
    );
    let r = tier(&["check", s(&w), "--dataset", "weather", "--report", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["files"][0]["loaded"], 20);
}

#[test]
fn completions_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let r = tier(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(
            r.stdout.contains("tier") && r.stdout.contains("loads"),
            "{shell}"
        );
    }
    assert_eq!(tier(&["completions", "tcsh"]).code, 2);
}

#[test]
fn db_status_looks_without_touching() {
    let home = tempfile::tempdir().unwrap();
    let absent = home.path().join("nothing-here");
    let r: Run = tier_cmd()
        .env("TIER_HOME", &absent)
        .args(["db", "status"])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(r.stdout.starts_with("not created"), "{}", r.stdout);
    assert!(!absent.exists(), "status created the home");
}

/// Every `console` block of the README and docs/ is a claim: its `$ ` lines run, in order, in a
/// copy of the repository's data with a throwaway embedded server, and must succeed.
#[test]
fn the_console_blocks_of_the_docs_run() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let mut docs = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "md") {
            docs.push(e.path());
        }
    }
    docs.sort();
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("data")).unwrap();
    for f in ["track_events.json", "weather.json"] {
        std::fs::copy(root.join("data").join(f), work.path().join("data").join(f)).unwrap();
    }
    let home = home_dir("tier-docs");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_tier"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = 0;
    for doc in &docs {
        let text = std::fs::read_to_string(doc).unwrap();
        let mut inside = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                inside = line.trim() == "```console";
                continue;
            }
            let Some(cmd) = line.strip_prefix("$ ").filter(|_| inside) else {
                continue;
            };
            let out = std::process::Command::new("sh")
                .args(["-c", cmd])
                .current_dir(work.path())
                .env("PATH", &path)
                .env("TIER_HOME", home.path())
                .env("RUST_LOG", "warn")
                .env_remove("DATABASE_URL")
                .env_remove("PGHOST")
                .env_remove("PGDATABASE")
                .env_remove("PGUSER")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: `{cmd}` failed: {}",
                doc.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    let _ = tier_cmd()
        .env("TIER_HOME", home.path())
        .args(["db", "stop"])
        .output();
    assert!(ran >= 9, "only {ran} commands found");
}

/// Links that lead back up (or twice to one folder) are entered once: the walk ends and each
/// file is read once. A name that is not UTF-8, or an upper-case ending, is an input too.
#[test]
fn links_back_up_are_entered_once_and_odd_names_are_inputs() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("in");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    generate(&root, "weather.json", "weather", 5, 1, 0.0);
    generate(&root.join("sub"), "weather_b.json", "weather", 5, 2, 0.0);
    std::os::unix::fs::symlink(".", root.join("loop1")).unwrap();
    std::os::unix::fs::symlink(".", root.join("loop2")).unwrap();
    std::os::unix::fs::symlink("..", root.join("sub/up")).unwrap();
    let odd = root.join(std::ffi::OsStr::from_bytes(b"weather_\xff.json"));
    std::fs::copy(root.join("weather.json"), &odd).unwrap();
    std::fs::copy(root.join("weather.json"), root.join("WEATHER_C.JSON")).unwrap();
    let mut child = tier_cmd()
        .args(["check", s(&root), "--report", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the walk did not end");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let run: Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let files = run.json()["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 4, "{files:?}");
    for f in &files {
        assert_eq!(f["records"], 5, "{f}");
    }
    assert!(run.stderr.contains("not UTF-8"), "{}", run.stderr);
}

/// Runs tier with `envs`, killing it (and failing) after 30 s.
fn tier_within(args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut cmd = tier_cmd();
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{args:?} {envs:?} did not end");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap().into()
}

/// Connection strings, password files and samples that once panicked or hung: each ends with
/// one line and its exit code, the password never printed.
#[test]
fn hostile_connection_settings_and_samples_neither_panic_nor_hang() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pgpass");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], i32, &'a str);
    let cases: [Case; 5] = [
        (
            "postgresql://u:s3cret@127.0.0.1:1/x?sslmode=%aé",
            &[],
            2,
            "sslmode",
        ),
        (
            "postgresql://u:s3cret@127.0.0.1:1/x?sslmode=verify-ca&sslrootcert=/dev/zero",
            &[],
            2,
            "/dev/zero",
        ),
        (
            "postgresql://u@127.0.0.1:1/x",
            &[("PGPASSFILE", s(&fifo))],
            1,
            "127.0.0.1",
        ),
        (
            "postgresql://u:s3?cret@127.0.0.1:1/x?sslmode=disable",
            &[],
            1,
            "127.0.0.1",
        ),
        // No port in the URL: PGPORT's, as psql takes it.
        (
            "postgresql://u:s3cret@127.0.0.1/x",
            &[("PGPORT", "1")],
            1,
            ":1/",
        ),
    ];
    for (url, envs, code, needle) in cases {
        let r = tier_within(&["loads", "--database-url", url], envs);
        assert_eq!(r.code, code, "{url}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{url}: {}", r.stderr);
        assert!(
            !r.stderr.contains("s3cret") && !r.stderr.contains("panicked"),
            "{}",
            r.stderr
        );
    }

    // Keys sharing bytes that end inside a character; a file name that would inject keys.
    let sample = dir.path().join("odd\nname = \"injected\"\n.json");
    for text in [
        "{\"x.é\":1,\"x.è\":2,\"x.id\":1}\n",
        "{\"用户\":5,\"用法\":6,\"id\":1}\n",
    ] {
        std::fs::write(&sample, text).unwrap();
        let r = tier_within(&["schema", "infer", s(&sample), "--name", "odd"], &[]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let def: toml::Value = toml::from_str(&r.stdout).unwrap();
        assert_eq!(def["name"].as_str(), Some("odd"), "{}", r.stdout);
        assert!(
            r.stdout.lines().next().unwrap().contains("\\n"),
            "{}",
            r.stdout
        );
    }
}

/// `--rejects-out` or `--log-file` naming an input is refused before anything is written.
#[test]
fn an_output_that_is_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = generate(dir.path(), "weather.json", "weather", 20, 3, 0.2);
    let before = std::fs::read(&input).unwrap();
    for flag in ["--rejects-out", "--log-file"] {
        for cmd in ["check", "load"] {
            let r = tier(
                &[
                    cmd,
                    s(dir.path()),
                    flag,
                    s(&input),
                    "--database-url",
                    "postgresql://u@127.0.0.1:1/x",
                ][..if cmd == "check" { 4 } else { 6 }],
            );
            assert_eq!(r.code, 2, "{cmd} {flag}: {}", r.stderr);
            assert!(r.stderr.contains("one of the inputs"), "{}", r.stderr);
            assert_eq!(std::fs::read(&input).unwrap(), before, "{cmd} {flag}");
        }
    }
}

/// `check`'s report of `file` (with these extra arguments), after asserting that its counts are
/// the lake's.
fn check_as_the_lake(file: &Path, lake: &Path, extra: &[&str]) -> serde_json::Value {
    let check = tier(&[&["check", s(file), "--report", "json"][..], extra].concat());
    assert_eq!(check.code, 0, "{}", check.stderr);
    let loaded = tier(&["load", s(file), "--lake", s(lake), "--report", "json"]);
    assert_eq!(loaded.code, 0, "{}", loaded.stderr);
    let (c, l) = (&check.json()["files"][0], &loaded.json()["files"][0]);
    for k in [
        "records",
        "loaded",
        "duplicates",
        "rejected",
        "reject_reasons",
    ] {
        assert_eq!(c[k], l[k], "{k}");
    }
    c.clone()
}

/// `check` finds the duplicates within a file as `load` and the lake do, and writes the
/// conflicting ones with the other rejects.
#[test]
fn check_counts_as_load_does_and_writes_conflicting_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/weather.json");
    let rejects = dir.path().join("rejects.jsonl");
    let c = check_as_the_lake(
        &sample,
        &dir.path().join("lake"),
        &["--rejects-out", s(&rejects)],
    );
    let conflicting = c["reject_reasons"]["conflicting_duplicate"]
        .as_u64()
        .unwrap();
    assert!(
        conflicting > 0 && c["duplicates"].as_u64().unwrap() > 0,
        "{c}"
    );
    let lines = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(
        lines.lines().count() as u64,
        c["rejected"].as_u64().unwrap()
    );
    let conflicts = lines
        .lines()
        .filter(|l| l.contains("\"conflicting_duplicate\""));
    assert_eq!(conflicts.count() as u64, conflicting);
}

/// The same for a dataset without a key.
#[test]
fn check_counts_unkeyed_duplicates_as_load_does() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(
        dir.path(),
        "track_events.json",
        "track_events",
        20_000,
        5,
        0.1,
    );
    let c = check_as_the_lake(&file, &dir.path().join("lake"), &[]);
    assert!(c["duplicates"].as_u64().unwrap() > 0, "{c}");
}

#[test]
fn a_reject_ratio_outside_zero_to_one_is_refused_by_every_command() {
    for cmd in [
        &["check"][..],
        &["load", "--lake", "/nonexistent-lake"],
        &["watch", "--once"],
    ] {
        let r = tier(&[cmd, &["--max-reject-ratio", "1.5", "data/weather.json"]].concat());
        assert_eq!(r.code, 2, "{cmd:?}: {}", r.stderr);
        assert!(r.stderr.contains("between 0 and 1"), "{}", r.stderr);
    }
}
