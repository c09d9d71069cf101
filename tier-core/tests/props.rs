//! Property tests: any mixture of good records, defects and junk keeps the count invariant,
//! never panics, and never lets a defect swallow a good record that starts its own line.

use proptest::prelude::*;
use tier_core::Input;
use tier_core::Registry;
use tier_core::{validate, KeyOrder, UnknownFields};

const GOOD: &str = r#"{"weather_data.city":"Oslo","weather_data.date_time":"2019-06-04 14:05:13","weather_data.currently_humidity":0.5}"#;

fn piece() -> impl Strategy<Value = (bool, String)> {
    prop_oneof![
        4 => Just((true, GOOD.to_string())),
        1 => Just((true, "{\n  \"city\": \"Rome\",\n  \"date_time\": \"2019-06-04T14:05:13Z\"\n}".to_string())),
        1 => Just((false, GOOD[..40].to_string())),
        1 => Just((false, "42".to_string())),
        1 => Just((false, "{\"weather_data.city\":\"Oslo\"}".to_string())),
        1 => Just((false, GOOD.replace("0.5", "NaN"))),
        1 => Just((false, GOOD.replace("0.5", "\"\\x\""))),
        1 => "[a-z0-9 :{}\\[\\]\",]{0,30}".prop_map(|junk| (false, junk)),
    ]
}

fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(",\n"),
        Just("\n"),
        Just("\r\n"),
        Just(" ,\n  "),
        Just("\n\n")
    ]
}

fn read(bytes: Vec<u8>) -> (u64, u64) {
    let input = Input::from_reader(
        "prop".as_ref(),
        Box::new(std::io::Cursor::new(bytes)),
        false,
    )
    .unwrap();
    let mut records = input.records(1 << 20);
    let (mut total, mut valid) = (0, 0);
    let mut unknown = UnknownFields::new();
    let mut order = KeyOrder::default();
    let weather = Registry::builtin().get("weather").unwrap();
    while let Some(rec) = records.next_record().unwrap() {
        assert_eq!(rec.index, total);
        total += 1;
        if validate(&weather, &rec, &mut unknown, &mut order).is_ok() {
            valid += 1;
        }
    }
    (total, valid)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn good_records_on_their_own_lines_always_survive(
        pieces in proptest::collection::vec((piece(), separator()), 0..40),
        open in any::<bool>(),
    ) {
        let mut text = String::from(if open { "[" } else { "" });
        let mut good = 0;
        for ((is_good, p), sep) in &pieces {
            text.push_str(p);
            text.push_str(sep);
            good += *is_good as u64;
        }
        let (total, valid) = read(text.into_bytes());
        prop_assert_eq!(valid, good);
        prop_assert!(total >= good);
        prop_assert!(total <= pieces.len() as u64 * 3 + 1);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        read(bytes);
    }

    #[test]
    fn json_like_noise_never_panics(text in "[\\[\\]{}\":,a-z0-9.\\-\\\\ \n]{0,400}") {
        read(text.into_bytes());
    }
}
