//! Tests of `records.rs`.

use super::*;

fn read_all(data: &[u8], max: usize) -> Vec<(RawKind, String)> {
    let input =
        Input::from_reader("t".as_ref(), Box::new(io::Cursor::new(data.to_vec())), true).unwrap();
    let mut r = input.records(max);
    let mut out = Vec::new();
    while let Some(rec) = r.next_record().unwrap() {
        assert_eq!(rec.index as usize, out.len());
        out.push((rec.kind, String::from_utf8_lossy(rec.bytes).into_owned()));
    }
    out
}

fn kinds(data: &[u8]) -> Vec<RawKind> {
    read_all(data, DEFAULT_MAX_RECORD_BYTES)
        .into_iter()
        .map(|r| r.0)
        .collect()
}

use RawKind::*;

#[test]
fn layouts() {
    let one = br#"{"a":1}"#;
    for data in [
        &b"[{\"a\":1},\n{\"b\":2}"[..],
        b"[{\"a\":1},\n{\"b\":2}]\n",
        b"{\"a\":1}\n{\"b\":2}\n",
        b"{\"a\":1}{\"b\":2}",
        b"{\r\n  \"a\": 1\r\n}\r\n{\r\n  \"b\": 2\r\n}",
        b"\xEF\xBB\xBF[ {\"a\":1} , {\"b\":2} ]",
    ] {
        assert_eq!(
            kinds(data),
            [Object, Object],
            "{}",
            String::from_utf8_lossy(data)
        );
    }
    assert_eq!(read_all(one, 100)[0].1, r#"{"a":1}"#);
    assert!(kinds(b"").is_empty());
    assert!(kinds(b"[\n]\n").is_empty());
}

#[test]
fn gzip_is_detected() {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(b"[{\"a\":1},\n{\"b\":2},\n").unwrap();
    let gz = enc.finish().unwrap();
    assert_eq!(kinds(&gz), [Object, Object]);
}

#[test]
fn resynchronises_after_errors() {
    let data = b"{\"a\":1,,\"b\":2},\n{\"ok\":1},\n{\"a\":\"unterminated,\n{\"ok\":2}\n";
    let got = read_all(data, DEFAULT_MAX_RECORD_BYTES);
    assert_eq!(
        got.iter().map(|r| r.0).collect::<Vec<_>>(),
        [Malformed, Object, Malformed, Object]
    );
    assert_eq!(got[0].1, "{\"a\":1,,\"b\":2}");
    assert_eq!(got[2].1, "{\"a\":\"unterminated");
    // A missing closing brace does not swallow the next record.
    assert_eq!(kinds(b"{\"a\":1,\n{\"b\":2}\n"), [Malformed, Object]);
    // Junk between records is one malformed record up to the next object line.
    assert_eq!(
        kinds(b"{\"a\":1}\nxyz abc\nmore\n{\"b\":2}"),
        [Object, Malformed, Object]
    );
    // EOF inside a value.
    assert_eq!(kinds(b"{\"a\":1}\n{\"b\":"), [Object, Malformed]);
}

#[test]
fn non_objects() {
    assert_eq!(kinds(b"42\n\"s\"\ntrue\nnull\n-1.5"), [NotObject; 5]);
    assert_eq!(kinds(b"[[1],{\"a\":1}]"), [NotObject, Object]);
}

#[test]
fn too_large_records_keep_a_prefix_and_reading_goes_on() {
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(300_000));
    let data = format!("{big},\n{{\"b\":1}}\n{big}");
    let got = read_all(data.as_bytes(), 100_000);
    assert_eq!(
        got.iter().map(|r| r.0).collect::<Vec<_>>(),
        [TooLarge, Object, TooLarge]
    );
    assert_eq!(got[0].1.len(), TOO_LARGE_KEPT_BYTES);
    // Over the limit and broken: still one record.
    let broken = format!("{{\"a\":\"{}\n{{\"b\":1}}\n", "y".repeat(300_000));
    let got = read_all(broken.as_bytes(), 100_000);
    assert_eq!(
        got.iter().map(|r| r.0).collect::<Vec<_>>(),
        [TooLarge, Object]
    );
}

#[test]
fn records_across_buffer_refills() {
    let mut data = Vec::new();
    for i in 0..50_000 {
        data.extend_from_slice(
            format!("{{\"n\":{i},\"pad\":\"{}\"}},\n", "p".repeat(i % 97)).as_bytes(),
        );
    }
    let got = read_all(&data, DEFAULT_MAX_RECORD_BYTES);
    assert_eq!(got.len(), 50_000);
    assert!(got.iter().all(|r| r.0 == Object));
    assert!(got[49_999].1.starts_with("{\"n\":49999,"));
}
