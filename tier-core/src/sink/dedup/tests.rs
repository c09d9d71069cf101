//! Tests of the duplicate set: against a model, through spills, through growth.

#[test]
fn first_seen_tells_duplicates_from_conflicts() {
    use super::{FirstSeen, Seen};
    let weather = crate::Registry::builtin().get("weather").unwrap().clone();
    let mut seen = FirstSeen::new(&weather);
    let n = weather.columns.len();
    let row = |city: &'static [u8], hash: &'static [u8]| {
        let mut f: Vec<Option<&[u8]>> = vec![None; n + 4];
        f[weather.column_index("city").unwrap()] = Some(city);
        f[weather.column_index("date_time").unwrap()] = Some(b"\0\0\0\0\0\0\0\x01");
        f[n + 3] = Some(hash);
        f
    };
    assert_eq!(seen.see(&row(b"Berlin", &[1; 16])).unwrap(), Seen::First);
    assert_eq!(
        seen.see(&row(b"Berlin", &[1; 16])).unwrap(),
        Seen::Duplicate
    );
    assert_eq!(seen.see(&row(b"Berlin", &[2; 16])).unwrap(), Seen::Conflict);
    assert_eq!(seen.see(&row(b"Paris", &[2; 16])).unwrap(), Seen::First);
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
