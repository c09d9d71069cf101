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

#[test]
fn merged_manifests_keep_each_file_with_the_snapshot_and_sequence_it_came_with() {
    let file = |path: &str, day: i32| DataFile {
        path: path.into(),
        day: Some(Some(day)),
        records: 2,
        ..DataFile::default()
    };
    let listed = |seq: i64, snapshot: i64, day: i32| ManifestFile {
        path: format!("m{seq}"),
        length: 0,
        spec_id: 0,
        content: 0,
        sequence_number: seq,
        min_sequence_number: seq,
        added_snapshot_id: snapshot,
        files: [1, 0, 0],
        rows: [2, 0, 0],
        partitions: Some(vec![PartitionSummary {
            contains_null: false,
            contains_nan: Some(false),
            lower: Some(day.to_le_bytes().to_vec()),
            upper: Some(day.to_le_bytes().to_vec()),
        }]),
    };
    let (a, b) = (listed(3, 30, 19_000), listed(4, 40, 19_005));
    let avro = |f: DataFile, snapshot| write_manifest(&[f], snapshot, Some("d"), "{}", "[]");
    let parts = [
        (&a, avro(file("a.parquet", 19_000), 30).unwrap()),
        (&b, avro(file("b.parquet", 19_005), 40).unwrap()),
    ];
    let (merged, files, rows, least) = merge(&parts, Some("d"), "{}", "[]").unwrap();
    assert_eq!((files, rows, least), (2, 4, 3));
    assert_eq!(
        read_live_files(&merged, "m").unwrap(),
        ["a.parquet", "b.parquet"]
    );
    let entries: Vec<_> = Reader::new(&merged[..])
        .unwrap()
        .map(|v| v.unwrap())
        .collect();
    let kept: Vec<_> = entries
        .iter()
        .map(|e| {
            let seq = long(e, "sequence_number");
            (
                long(e, "status"),
                long(e, "snapshot_id"),
                seq,
                long(e, "file_sequence_number"),
            )
        })
        .collect();
    assert_eq!(kept, [(0, 30, 3, 3), (0, 40, 4, 4)]);
    // Merged again, the entries keep what they were given.
    let again = listed(5, 50, 0);
    let (twice, ..) = merge(&[(&again, merged)], Some("d"), "{}", "[]").unwrap();
    let e = Reader::new(&twice[..]).unwrap().next().unwrap().unwrap();
    assert_eq!(
        (long(&e, "snapshot_id"), long(&e, "sequence_number")),
        (30, 3)
    );
    let days = merged_partitions(&[a, b]).unwrap();
    assert_eq!(days[0].lower.as_deref(), Some(&19_000i32.to_le_bytes()[..]));
    assert_eq!(days[0].upper.as_deref(), Some(&19_005i32.to_le_bytes()[..]));
}
