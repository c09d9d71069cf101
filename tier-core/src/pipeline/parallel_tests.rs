//! Tests of `parallel.rs`.

use super::*;
use proptest::prelude::*;

/// Writes each valid row's index as 8 bytes, so the payload lists the rows' indexes; keeps the
/// rows as Arrow columns too.
struct Indexes;

impl Encode for Indexes {
    fn row(&self, row: &Row<'_>, _: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        out.extend_from_slice(&(row.index as i64).to_be_bytes());
        Some(out.len() - 8)
    }
    fn reject(&self, r: &Reject, out: &mut Vec<u8>) -> Option<usize> {
        out.extend_from_slice(&(r.index as i64).to_be_bytes());
        Some(out.len() - 8)
    }
    fn keep_rejects(&self) -> bool {
        true
    }
    fn columns(&self) -> Option<crate::schema::arrow::Builder> {
        Some(crate::schema::arrow::Builder::rows_of_load(&weather(), 7))
    }
}

fn weather() -> Dataset {
    crate::Registry::builtin().get("weather").unwrap()
}

fn records(data: &[u8], max: usize) -> Records {
    Input::from_reader(
        "t".as_ref(),
        Box::new(std::io::Cursor::new(data.to_vec())),
        false,
    )
    .unwrap()
    .records(max)
}

/// (valid indexes, (index, reason) of rejects) the sequential way.
fn sequential_view(data: &[u8], max: usize) -> (Vec<u64>, Vec<(u64, String)>) {
    let mut r = records(data, max);
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    let mut unknown = UnknownFields::new();
    while let Some(rec) = r.next_record().unwrap() {
        match validate::validate(&weather(), &rec, &mut unknown, &mut Default::default()) {
            Ok(row) => ok.push(row.index),
            Err(rej) => bad.push((rej.index, rej.reason.to_string())),
        }
    }
    (ok, bad)
}

fn parallel_view(data: &[u8], max: usize, chunk: usize) -> (Vec<u64>, Vec<(u64, String)>) {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    run_chunked(
        records(data, max),
        &weather(),
        2,
        &Indexes,
        &mut |b: &Processed| {
            let indexes: Vec<u64> = b
                .payload
                .chunks(8)
                .map(|c| i64::from_be_bytes(c.try_into().unwrap()) as u64)
                .collect();
            // The Arrow columns hold the same rows, with the same indexes, counted alike.
            use arrow_array::cast::AsArray;
            let columns = b.columns.as_ref().expect("the encoder keeps columns");
            let in_columns: Vec<u64> = columns
                .column_by_name("_record_index")
                .unwrap()
                .as_primitive::<arrow_array::types::Int64Type>()
                .values()
                .iter()
                .map(|&i| i as u64)
                .collect();
            assert_eq!(in_columns, indexes);
            ok.extend(indexes);
            let from_payload: Vec<u64> = b
                .reject_payload
                .chunks(8)
                .map(|c| i64::from_be_bytes(c.try_into().unwrap()) as u64)
                .collect();
            let kept: Vec<u64> = b.rejects.iter().map(|r| r.index).collect();
            assert_eq!(from_payload, kept);
            bad.extend(b.rejects.iter().map(|r| (r.index, r.reason.to_string())));
            Ok(())
        },
        chunk,
    )
    .unwrap();
    (ok, bad)
}

const GOOD: &str = r#"{"weather_data.city":"Oslo","weather_data.date_time":"2019-06-04 14:05:13"}"#;

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(GOOD.to_string()),
        1 => Just("{\n  \"city\": \"Rome\",\n  \"date_time\": \"2019-06-04T14:05:13Z\"\n}".to_string()),
        1 => Just("{\"a\": [\n{\"b\": 1},\n{\"c\": 2}\n]}".to_string()),
        1 => Just(GOOD[..30].to_string()),
        1 => Just("42".to_string()),
        1 => Just(format!("{{\"pad\":\"{}\"}}", "p".repeat(300))),
        1 => "[a-z0-9 :{}\\[\\]\",]{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn parallel_equals_sequential(
        pieces in proptest::collection::vec((piece(), prop_oneof![Just(",\n"), Just("\n"), Just(" "), Just("\n\n  ")]), 0..60),
        chunk in 16usize..400,
        max in prop_oneof![Just(1usize << 20), Just(200usize)],
    ) {
        let mut text = String::from("[");
        for (p, sep) in &pieces {
            text.push_str(p);
            text.push_str(sep);
        }
        let want = sequential_view(text.as_bytes(), max);
        let got = parallel_view(text.as_bytes(), max, chunk);
        prop_assert_eq!(got, want);
    }
}

#[test]
fn big_input_in_many_chunks() {
    let mut text = String::new();
    for i in 0..3000 {
        match i % 50 {
            7 => text.push_str("{\"broken\": \n"),
            8 => text.push_str("{\n \"weather_data.city\": \"X\",\n \"weather_data.date_time\": \"2019-06-04 14:05:13\"\n}\n"),
            _ => text.push_str(GOOD),
        }
        text.push_str(",\n");
    }
    let want = sequential_view(text.as_bytes(), 1 << 20);
    assert_eq!(want.0.len() + want.1.len(), 3000);
    assert_eq!(parallel_view(text.as_bytes(), 1 << 20, 1000), want);
    assert_eq!(parallel_view(text.as_bytes(), 1 << 20, 1 << 20), want);
}
