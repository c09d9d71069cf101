//! Tests of `manifest.rs`.

use super::*;

#[test]
fn a_manifest_list_reads_back_as_written() {
    let m = ManifestFile {
        path: "file:///l/t/metadata/a-m0.avro".into(),
        length: 10,
        spec_id: 0,
        content: 0,
        sequence_number: 3,
        min_sequence_number: 2,
        added_snapshot_id: 7,
        files: [2, 1, 0],
        rows: [5, 4, 0],
        partitions: Some(vec![PartitionSummary {
            contains_null: true,
            contains_nan: Some(false),
            lower: Some(19_000i32.to_le_bytes().to_vec()),
            upper: None,
        }]),
    };
    let bytes = write_list(std::slice::from_ref(&m), 7, None, 3).unwrap();
    let back = read_list(&bytes, "list").unwrap();
    assert_eq!(back.len(), 1);
    let b = &back[0];
    assert_eq!(
        (b.path.as_str(), b.length, b.sequence_number),
        (m.path.as_str(), 10, 3)
    );
    assert_eq!((b.min_sequence_number, b.added_snapshot_id), (2, 7));
    assert_eq!((b.files, b.rows), (m.files, m.rows));
    let p = &b.partitions.as_ref().unwrap()[0];
    assert!(p.contains_null && p.contains_nan == Some(false) && p.upper.is_none());
    assert_eq!(p.lower.as_deref(), Some(&19_000i32.to_le_bytes()[..]));
}

#[test]
fn a_manifest_names_its_live_files_in_the_spelling_of_iceberg() {
    let f = DataFile {
        path: "file:///l/t/date=2022-01-08/a.parquet".into(),
        day: Some(Some(19_000)),
        records: 3,
        size: 100,
        column_sizes: vec![(1, 10)],
        lower: vec![(1, vec![1, 0, 0, 0])],
        upper: vec![(1, vec![9, 0, 0, 0])],
        ..DataFile::default()
    };
    let unpartitioned = DataFile {
        path: "file:///l/t/b.parquet".into(),
        day: Some(None),
        ..DataFile::default()
    };
    let bytes = write_manifest(&[f, unpartitioned], 7, Some("at_day"), "{}", "[]").unwrap();
    let header = String::from_utf8_lossy(&bytes[..bytes.len().min(8192)]).into_owned();
    assert!(header.contains(r#""logicalType":"map""#), "{header}");
    assert!(header.contains("avro.codec") && header.contains("\"field-id\":1000"));
    assert_eq!(
        read_live_files(&bytes, "m").unwrap(),
        [
            "file:///l/t/date=2022-01-08/a.parquet",
            "file:///l/t/b.parquet"
        ]
    );
    assert!(read_live_files(b"not avro", "m").is_err());
}
