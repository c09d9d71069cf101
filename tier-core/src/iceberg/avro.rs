//! The Avro object container file, written by hand around records `apache-avro` encodes: its
//! header holds the schema exactly as Iceberg spells it (`"logicalType": "map"` on arrays of
//! key-value records, which the crate's own writer leaves out) and names its codec (some
//! readers take a header without one for gzip).

use apache_avro::types::Value;
use apache_avro::Schema;

use super::manifest::bad;
use crate::error::Result;

/// An Avro object container file being written: its header, then one block of records.
pub(super) struct Container {
    schema: Schema,
    json: String,
    meta: Vec<(String, String)>,
    records: Vec<u8>,
    count: i64,
}

/// Appends Avro's zig-zag variable-length form of a long.
fn put_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

impl Container {
    pub(super) fn new(json: &str) -> Result<Container> {
        Ok(Container {
            schema: Schema::parse_str(json).map_err(|e| bad("schema", e))?,
            json: json.to_string(),
            meta: Vec::new(),
            records: Vec::new(),
            count: 0,
        })
    }

    pub(super) fn add_user_metadata(
        &mut self,
        key: String,
        value: impl Into<String>,
    ) -> Result<()> {
        self.meta.push((key, value.into()));
        Ok(())
    }

    pub(super) fn append_value(&mut self, v: Value) -> Result<()> {
        apache_avro::writer::datum::GenericDatumWriter::builder(&self.schema)
            .build()
            .and_then(|w| w.write_value(&mut self.records, v))
            .map_err(|e| bad("record", e))?;
        self.count += 1;
        Ok(())
    }

    pub(super) fn into_inner(self) -> Result<Vec<u8>> {
        let sync: [u8; 16] = super::random();
        let mut out = b"Obj\x01".to_vec();
        let mut meta = vec![
            ("avro.schema".to_string(), self.json),
            ("avro.codec".to_string(), "null".to_string()),
        ];
        meta.extend(self.meta);
        put_long(&mut out, meta.len() as i64);
        for (k, v) in &meta {
            put_bytes(&mut out, k.as_bytes());
            put_bytes(&mut out, v.as_bytes());
        }
        put_long(&mut out, 0);
        out.extend_from_slice(&sync);
        if self.count > 0 {
            put_long(&mut out, self.count);
            put_bytes(&mut out, &self.records);
            out.extend_from_slice(&sync);
        }
        Ok(out)
    }
}
