//! Tests of `validate.rs`.

use super::*;

fn ds(name: &str) -> Dataset {
    crate::Registry::builtin().get(name).unwrap()
}

fn check<'a>(dataset: &Dataset, json: &'a str) -> Result<Row<'a>, String> {
    let rec = RawRecord {
        index: 7,
        offset: 0,
        end: 0,
        kind: RawKind::Object,
        bytes: json.as_bytes(),
    };
    validate(
        dataset,
        &rec,
        &mut UnknownFields::new(),
        &mut Default::default(),
    )
    .map_err(|r| r.reason.to_string())
}

const TE: &str = r#""segment_tracks.anonymous_id":"A","segment_tracks.event_name":"E","segment_tracks.received_time":"2019-05-13 14:23:46""#;
const W: &str = r#""weather_data.city":"Oslo","weather_data.date_time":"2019-06-04 14:05:13""#;

fn te(extra: &str) -> String {
    format!("{{{TE}{extra}}}")
}
fn w(extra: &str) -> String {
    format!("{{{W}{extra}}}")
}

#[test]
fn good_records() {
    let j =
        te(r#","segment_tracks.properties_rating":"4","segment_tracks.context_os_version":12.2"#);
    let row = check(&ds("track_events"), &j).unwrap();
    assert_eq!(row.index, 7);
    assert_eq!(row.values[15], Value::SmallInt(4));
    assert_eq!(row.values[7], Value::Text("12.2".into()));
    assert_eq!(row.extra, None);
    let j = r#"{"anonymous_id":"A","event_name":"E","received_time":"2019-05-13T14:23:46Z","sent_time":"","x":{"y":NaN}}"#;
    let row = check(&ds("track_events"), j).unwrap();
    assert_eq!(row.values[4], Value::Null);
    assert_eq!(row.extra.as_deref(), Some(r#"{"x":{"y":"NaN"}}"#));
    let j =
        w(r#","weather_data.currently_humidity":"0.5","weather_data.currently_temperature":-3"#);
    let row = check(&ds("weather"), &j).unwrap();
    assert_eq!(row.values[4], Value::Float(0.5));
    assert_eq!(row.values[2], Value::Float(-3.0));
}

#[test]
fn every_reason() {
    let cases: &[(&str, String, &str)] = &[
        ("track_events", r#"{"segment_tracks.event_name":"E"}"#.into(), "missing_field:anonymous_id"),
        ("track_events", te(r#","segment_tracks.anonymous_id":"""#), "missing_field:anonymous_id"),
        ("track_events", te(r#","segment_tracks.event_name":null"#), "missing_field:event_name"),
        ("track_events", te(r#","segment_tracks.received_time":"""#), "missing_field:received_time"),
        ("track_events", te(r#","segment_tracks.received_time":"13/05/2019""#), "invalid_timestamp:received_time"),
        ("track_events", te(r#","segment_tracks.sent_time":17"#), "invalid_type:sent_time"),
        ("track_events", te(r#","segment_tracks.properties_rating":4.5"#), "invalid_type:properties_rating"),
        ("track_events", te(r#","segment_tracks.properties_rating":"five""#), "invalid_type:properties_rating"),
        ("track_events", te(r#","segment_tracks.properties_rating":70000"#), "invalid_type:properties_rating"),
        ("track_events", te(r#","segment_tracks.properties_rating":99999999999999999999"#), "invalid_type:properties_rating"),
        ("weather", w(r#","weather_data.currently_temperature":1e999"#), "non_finite:currently_temperature"),
        ("weather", w(r#","weather_data.currently_humidity":-1e999"#), "non_finite:currently_humidity"),
        ("track_events", te(r#","segment_tracks.properties_rating":NaN"#), "non_finite:properties_rating"),
        ("track_events", te(r#","segment_tracks.context_os_name":true"#), "invalid_type:context_os_name"),
        ("track_events", te(r#","segment_tracks.context_os_name":"a\u0000b""#), "invalid_value:context_os_name"),
        ("weather", w(r#","weather_data.currently_temperature":Infinity"#), "non_finite:currently_temperature"),
        ("weather", w(r#","weather_data.currently_temperature":"NaN""#), "non_finite:currently_temperature"),
        ("weather", w(r#","weather_data.currently_temperature":61"#), "out_of_range:currently_temperature"),
        ("weather", w(r#","weather_data.currently_windspeed":-0.1"#), "out_of_range:currently_windspeed"),
        ("weather", w(r#","weather_data.currently_humidity":"wet""#), "invalid_type:currently_humidity"),
        ("weather", w(r#","weather_data.currently_preciptype":"hail""#), "invalid_value:currently_preciptype"),
        ("weather", r#"{"weather_data.date_time":"2019-06-04 14:05:13"}"#.into(), "missing_field:city"),
        // First failing column in table order wins.
        ("weather", r#"{"weather_data.currently_humidity":9,"weather_data.city":"X","weather_data.date_time":"bad"}"#.into(), "invalid_timestamp:date_time"),
        ("weather", w(r#","x":"\u0000""#), "invalid_value:_extra"),
        ("weather", w(r#","x":[1e131072]"#), "out_of_range:_extra"),
        ("weather", "{\"a\":\"tab\there\"}".into(), "malformed_json"),
        ("track_events", te(&format!(r#","segment_tracks.properties_rating":{}"#, "9".repeat(10_000))), "invalid_type:properties_rating"),
        ("track_events", te(r#","segment_tracks.properties_rating":"-Infinity""#), "non_finite:properties_rating"),
    ];
    for (d, j, want) in cases {
        assert_eq!(check(&ds(d), j).unwrap_err(), *want, "{j}");
    }
    let bad_utf8 = RawRecord {
        index: 0,
        offset: 0,
        end: 0,
        kind: RawKind::Object,
        bytes: b"{\"a\":\"\xff\"}",
    };
    let r = validate(
        &ds("weather"),
        &bad_utf8,
        &mut UnknownFields::new(),
        &mut Default::default(),
    )
    .unwrap_err();
    assert_eq!(r.reason, RejectReason::MalformedJson);
    assert_eq!(r.raw, "{\"a\":\"\u{FFFD}\"}");
}

#[test]
fn unknown_fields_are_counted_and_kept() {
    let mut unknown = UnknownFields::new();
    let j = w(r#","weather_data.currently_ozone":301.2"#);
    let rec = RawRecord {
        index: 0,
        offset: 0,
        end: 0,
        kind: RawKind::Object,
        bytes: j.as_bytes(),
    };
    let row = validate(&ds("weather"), &rec, &mut unknown, &mut Default::default()).unwrap();
    validate(&ds("weather"), &rec, &mut unknown, &mut Default::default()).unwrap();
    assert_eq!(unknown["weather_data.currently_ozone"], 2);
    assert_eq!(
        row.extra.as_deref(),
        Some(r#"{"weather_data.currently_ozone":301.2}"#)
    );
    // Numbers in _extra keep their text, however long.
    let j = w(r#","z":[1e999,-0],"a":{"n":123456789012345678901234567890}"#);
    let row = check(&ds("weather"), &j).unwrap();
    assert_eq!(
        row.extra.as_deref(),
        Some(r#"{"a":{"n":123456789012345678901234567890},"z":[1e999,-0]}"#)
    );
}

#[test]
fn keys_out_of_the_last_records_order_are_read_alike() {
    // One KeyOrder over records whose keys move, lengthen, lose their prefix or are escaped:
    // each record gives what it gives read alone.
    let records = [
        r#"{"segment_tracks.anonymous_id":"A","segment_tracks.event_name":"E","segment_tracks.received_time":"2019-05-13 14:23:46"}"#,
        r#"{"segment_tracks.anonymous_id":"B","segment_tracks.event_name_x":"X","segment_tracks.received_time":"2019-05-13 14:23:47","segment_tracks.event_name":"F"}"#,
        r#"{"segment_tracks.anonymous_id":"C","segment_tracks.event\u005fname":"G","segment_tracks.received_time":"2019-05-13 14:23:48"}"#,
        r#"{"segment_tracks.event_name":"H","anonymous_id":"D","segment_tracks.received_time":"2019-05-13 14:23:49"}"#,
        r#"{"segment_tracks.anonymous_id":"E","segment_tracks.event_name" :"I","segment_tracks.received_time":"2019-05-13 14:23:50"}"#,
        r#"{"segment_tracks.anonymous_id":"F","segment_tracks.event_nam":"J","segment_tracks.received_time":"2019-05-13 14:23:51"}"#,
        r#"{"segment_tracks.anonymous_id":"G","segment_tracks.event_name":"K","segment_tracks.received_time":"2019-05-13 14:23:52"}"#,
    ];
    let dataset = ds("track_events");
    let mut order = KeyOrder::default();
    let mut shared = UnknownFields::new();
    for (i, json) in records.iter().enumerate() {
        let rec = RawRecord {
            index: i as u64,
            offset: 0,
            end: 0,
            kind: RawKind::Object,
            bytes: json.as_bytes(),
        };
        let alone = validate(
            &dataset,
            &rec,
            &mut UnknownFields::new(),
            &mut KeyOrder::default(),
        );
        let together = validate(&dataset, &rec, &mut shared, &mut order);
        assert_eq!(together, alone, "record {i}");
    }
    let event = |json: &'static str| check(&dataset, json).map(|r| r.values[1].clone());
    assert_eq!(event(records[1]), Ok(Value::Text("F".into())));
    assert_eq!(event(records[2]), Ok(Value::Text("G".into())));
    assert_eq!(event(records[3]), Ok(Value::Text("H".into())));
    assert_eq!(
        check(&dataset, records[5]).unwrap_err(),
        "missing_field:event_name"
    );
    assert_eq!(shared["segment_tracks.event_name_x"], 1);
}
