//! Tests of the duplicate set: against a model, through spills, through growth.

#[test]
fn first_seen_tells_duplicates_from_conflicts() {
    use super::{FirstSeen, Seen};
    let weather = crate::Registry::builtin().get("weather").unwrap().clone();
    let mut seen = FirstSeen::new(&weather);
    let n = weather.columns.len();
    let city_at = weather.column_index("city").unwrap();
    let time_at = weather.column_index("date_time").unwrap();
    // A batch of COPY rows, as the sinks hand it over: more rows than the look-ahead.
    let mut rows: Vec<(&[u8], [u8; 16])> = vec![
        (b"Berlin", [1; 16]),
        (b"Berlin", [1; 16]),
        (b"Berlin", [2; 16]),
        (b"Paris", [2; 16]),
    ];
    let cities: Vec<Vec<u8>> = (0..20).map(|i| format!("City {i}").into_bytes()).collect();
    rows.extend(cities.iter().map(|c| (c.as_slice(), [3; 16])));
    rows.push((b"Paris", [2; 16]));
    let mut payload = Vec::new();
    for (city, hash) in &rows {
        let mut f: Vec<Option<&[u8]>> = vec![None; n + 4];
        f[city_at] = Some(city);
        f[time_at] = Some(b"\0\0\0\0\0\0\0\x01");
        f[n + 3] = Some(hash);
        crate::sink::copy::tuple(&mut payload, &f);
    }
    let mut got = Vec::new();
    seen.see_rows(&payload, |_, fields, s| {
        got.push((fields[city_at].unwrap().to_vec(), s));
        Ok(())
    })
    .unwrap();
    let mut expected = vec![
        (b"Berlin".to_vec(), Seen::First),
        (b"Berlin".to_vec(), Seen::Duplicate),
        (b"Berlin".to_vec(), Seen::Conflict),
        (b"Paris".to_vec(), Seen::First),
    ];
    expected.extend(cities.iter().map(|c| (c.clone(), Seen::First)));
    expected.push((b"Paris".to_vec(), Seen::Duplicate));
    assert_eq!(got, expected);
}

#[test]
fn a_set_past_its_budget_spills_and_still_finds_every_duplicate_and_conflict() {
    use super::{FirstSeen, Seen};
    use std::collections::HashMap;
    let hash = |i: u64| xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes());
    for name in ["weather", "track_events"] {
        let dataset = crate::Registry::builtin().get(name).unwrap().clone();
        // Tables of 256 and 4,096 slots (128 and 2,048 keyed): runs of one block and of many.
        for (budget, keys) in [(4096, 3_000u64), (65_536, 20_000)] {
            let mut seen = FirstSeen::with_budget(&dataset, 0, budget);
            let mut first: HashMap<u128, u128> = HashMap::new();
            let mut state = 0x9E37_79B9_7F4A_7C15u64;
            for _ in 0..keys * 3 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let k = state % keys;
                // Two versions of each key's row: repeats are duplicates or conflicts.
                let (key, row) = (hash(k), hash(1 << 40 | k << 1 | (state >> 40) & 1));
                let expected = match dataset.key {
                    Some(_) => match first.get(&key) {
                        None => Seen::First,
                        Some(&f) if f == row => Seen::Duplicate,
                        Some(_) => Seen::Conflict,
                    },
                    None => match first.contains_key(&row) {
                        false => Seen::First,
                        true => Seen::Duplicate,
                    },
                };
                match dataset.key {
                    Some(_) => first.entry(key).or_insert(row),
                    None => first.entry(row).or_insert(0),
                };
                assert_eq!(seen.see_hashed(key, row).unwrap(), expected, "{name}");
            }
            let spills = match &seen.seen {
                super::Known::Keys(_, keys) => keys.spill.as_ref().map(|s| s.runs()),
                super::Known::Rows(rows) => rows.spill.as_ref().map(|s| s.runs()),
            };
            assert!(spills.unwrap_or(0) > 3, "{name}: {spills:?} runs");
        }
    }
}

#[test]
fn the_flat_table_keeps_the_first_value_of_every_key_through_growth() {
    let mut t = super::Flat::<u128>::with_capacity(10);
    let key = |i: u128| xxhash_rust::xxh3::xxh3_128(&i.to_le_bytes());
    for i in 0..10_000u128 {
        assert_eq!(t.insert(key(i), i), None);
    }
    assert_eq!(t.insert(0, 7), None);
    for i in 0..10_000u128 {
        assert_eq!(t.insert(key(i), i + 1), Some(i));
    }
    assert_eq!(t.insert(0, 8), Some(7));
    assert_eq!(t.len, 10_000);
    // Keys whose high halves are equal probe past each other.
    let mut t = super::Flat::<()>::with_capacity(4);
    for i in 1..200u128 {
        assert_eq!(t.insert(i, ()), None);
        assert_eq!(t.insert(i, ()), Some(()));
    }
}
