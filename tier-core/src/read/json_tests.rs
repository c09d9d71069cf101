//! Tests of `json.rs`.

use super::*;

fn members(s: &str) -> Result<Vec<(String, JsonValue<'_>)>, SyntaxError> {
    let mut m = Members::new(s.as_bytes());
    let mut out = Vec::new();
    while let Some((k, v)) = m.next_member()? {
        out.push((k.into_owned(), v));
    }
    m.finish()?;
    Ok(out)
}

#[test]
fn reads_members() {
    let got = members(
        r#"{"a":"x\"y\u00e9\ud83d\ude00","b":-1.5e3,"c":null,"d":[1,{"e":[]}],"f":NaN,"g":-Infinity,"h":true}"#,
    )
    .unwrap();
    assert_eq!(got[0].1, JsonValue::String("x\"yé😀".into()));
    assert_eq!(got[1].1, JsonValue::Number("-1.5e3"));
    assert_eq!(got[2].1, JsonValue::Null);
    assert_eq!(got[3].1, JsonValue::Nested(r#"[1,{"e":[]}]"#));
    assert_eq!(got[4].1, JsonValue::NonFinite("NaN"));
    assert_eq!(got[5].1, JsonValue::NonFinite("-Infinity"));
    assert_eq!(got[6].1, JsonValue::Bool(true));
    assert!(members("{}").unwrap().is_empty());
}

#[test]
fn syntax_errors() {
    for bad in [
        r#"{"a":01}"#,
        r#"{"a":1.}"#,
        r#"{"a":-}"#,
        "{\"a\":\"tab\there\"}",
        r#"{"a":"\ud800"}"#,
        r#"{"a":1} x"#,
        r#"{"a":[1,]}"#,
        r#"{"a":1"#,
    ] {
        assert!(members(bad).is_err(), "{bad}");
    }
}

fn jsonb(text: &str) -> Result<String, JsonbError> {
    let mut out = String::new();
    write_jsonb(&mut out, &JsonValue::Nested(text)).map(|_| out)
}

#[test]
fn numbers_numeric_cannot_hold_are_told_apart() {
    let digits = |n: usize| "1".repeat(n);
    let fits = [
        "1e131071".to_string(),
        "9.99e131071".into(),
        "1e-16383".into(),
        "0.1e-16382".into(),
        "0e200000".into(),
        "-0.000".into(),
        digits(131_072),
        format!("0.{}", digits(16_383)),
        format!("0.{}e1", digits(16_384)),
        format!("{}e-16383", digits(20)),
    ];
    for n in &fits {
        assert!(numeric_fits(n), "{}", &n[..n.len().min(40)]);
    }
    let overflows = [
        "1e131072".to_string(),
        "10e131071".into(),
        "1e-16384".into(),
        "0.1e-16383".into(),
        "1e99999999999".into(),
        "0e2000000000".into(),
        digits(131_073),
        format!("0.{}", digits(16_384)),
        format!("-{}.5", digits(131_073)),
    ];
    for n in &overflows {
        assert!(!numeric_fits(n), "{}", &n[..n.len().min(40)]);
    }
    assert_eq!(
        jsonb(r#"{"a":[1,{"b":1e131072}]}"#),
        Err(JsonbError::Numeric)
    );
}

#[test]
fn jsonb_text_keeps_every_number_exactly() {
    let nums = [
        "123456789012345678901234567890",
        "18446744073709551616",
        "-9223372036854775809",
        "3.141592653589793238462643383279",
        "0.1000000000000000055511151231257827",
        "1e999",
        "1E-400",
        "-0",
        "-0.0",
    ];
    for n in nums {
        assert_eq!(
            jsonb(&format!("[{n}, {{\"k\": [{n}]}}]")).unwrap(),
            format!("[{n},{{\"k\":[{n}]}}]")
        );
    }
    assert_eq!(
        jsonb(r#"{"x":[NaN,-Infinity,2]}"#).unwrap(),
        r#"{"x":["NaN","-Infinity",2]}"#
    );
    assert_eq!(
        jsonb(r#"{"b":1,"a":{"d":1,"c":2},"b":3}"#).unwrap(),
        r#"{"a":{"c":2,"d":1},"b":3}"#
    );
    assert_eq!(
        jsonb(r#"["q\"\\\n\u0001é"]"#).unwrap(),
        r#"["q\"\\\n\u0001é"]"#
    );
    assert_eq!(jsonb(r#"{"a":"\u0000"}"#), Err(JsonbError::Nul));
    assert_eq!(jsonb(r#"{"\u0000":1}"#), Err(JsonbError::Nul));
    assert_eq!(jsonb("[]").unwrap(), "[]");
    assert_eq!(jsonb("{}").unwrap(), "{}");
}

#[test]
fn write_jsonb_keeps_numbers_exactly() {
    let mut out = String::new();
    write_jsonb(
        &mut out,
        &JsonValue::Nested(r#"{"b":[NaN, 1e999], "a":123456789012345678901234567890}"#),
    )
    .unwrap();
    assert_eq!(
        out,
        r#"{"a":123456789012345678901234567890,"b":["NaN",1e999]}"#
    );
}

#[test]
fn numeric_fits_postgres_limits() {
    assert!(numeric_fits("123456789012345678901234567890") && numeric_fits("1e131071"));
    assert!(!numeric_fits("1e131072") && !numeric_fits("1e-16384") && numeric_fits("1e-16383"));
}

#[test]
fn plain_run_stops_where_a_byte_by_byte_scan_stops() {
    let naive = |b: &[u8], i: usize| {
        let end = b[i..]
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
            .map_or(b.len(), |p| i + p);
        (end, b[i..end].is_ascii())
    };
    let alphabet: &[u8] = b"ab\"\\\x01\x1f \x7f\x80\xc3\xa9z";
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..80 {
        // Runs of every length: odd lengths have a special byte in four, even ones in 32.
        let every = if len % 2 == 0 { 32 } else { 4 };
        for _ in 0..200 {
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Mostly plain letters, so that runs get long.
                    let r = (state >> 33) as usize;
                    if r.is_multiple_of(every) {
                        alphabet[r / every % alphabet.len()]
                    } else {
                        b'a'
                    }
                })
                .collect();
            for i in 0..=text.len() {
                assert_eq!(plain_run(&text, i), naive(&text, i), "{text:?} from {i}");
            }
        }
    }
}
