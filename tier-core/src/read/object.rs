//! Object storage: `s3://bucket/key` URLs as inputs (streamed through the reader like files)
//! and as the place of a lake, through the `object_store` crate.
//!
//! Credentials, region and endpoint come from the standard variables: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`),
//! `AWS_ENDPOINT_URL` for an S3-compatible server, `AWS_ALLOW_HTTP=true` for a plain-HTTP one.
//! Errors name the URL and what went wrong, never a key or a secret.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion, WriteMultipart,
};
use tokio::runtime::Runtime;

pub use super::url::Url;
use crate::error::{Error, Result};

/// A bucket, with the runtime its requests run on (calls block the calling thread). A clone
/// shares the client and the runtime.
#[derive(Clone)]
pub struct Bucket {
    store: Arc<AmazonS3>,
    rt: Arc<Runtime>,
    name: String,
}

impl Bucket {
    /// The bucket of a URL, configured from the environment. One client (and runtime) serves
    /// a bucket for the whole process, as long as the `AWS_*` variables stay the same.
    pub fn of(url: &Url) -> Result<Bucket> {
        static OPEN: std::sync::OnceLock<Mutex<HashMap<String, Bucket>>> =
            std::sync::OnceLock::new();
        // The settings it was made with are part of its name (held in memory, never shown).
        let mut settings: Vec<_> = std::env::vars()
            .filter(|(k, _)| k.starts_with("AWS_"))
            .collect();
        settings.sort();
        let name = format!("{}\n{settings:?}", url.bucket);
        let open = OPEN.get_or_init(Mutex::default);
        if let Some(b) = open.lock().unwrap_or_else(|p| p.into_inner()).get(&name) {
            return Ok(b.clone());
        }
        let bucket = Bucket::connect(url)?;
        let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
        Ok(open.entry(name).or_insert(bucket).clone())
    }

    fn connect(url: &Url) -> Result<Bucket> {
        // The TLS of HTTPS endpoints uses the same provider as PostgreSQL connections.
        let _ = rustls::crypto::ring::default_provider().install_default();
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
            let allowed = std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true" || v == "1");
            if endpoint.starts_with("http://") && !allowed {
                return Err(Error::Usage(format!(
                    "{url}: the endpoint {endpoint} is plain HTTP; set AWS_ALLOW_HTTP=true to use it"
                )));
            }
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(&url.bucket);
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            builder = builder.with_region("us-east-1");
        }
        let store = builder.build().map_err(|e| failure(url, e))?;
        // Many threads use a bucket at once (`--jobs`): its requests run on two threads of its
        // own, whichever thread waits for them.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tier-s3")
            .enable_all()
            .build()
            .map_err(|e| Error::io(url.to_path(), e))?;
        Ok(Bucket {
            store: Arc::new(store),
            rt: Arc::new(rt),
            name: url.bucket.clone(),
        })
    }

    fn url(&self, key: &Key) -> Url {
        Url {
            bucket: self.name.clone(),
            key: key.to_string(),
        }
    }

    /// The size of an object, or `None` when there is none at that key.
    pub fn size(&self, key: &str) -> Result<Option<u64>> {
        let k = Key::from(key);
        match self.rt.block_on(self.store.head(&k)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(failure(&self.url(&k), e)),
        }
    }

    /// The keys under a prefix (as a folder: `prefix/…`), with their sizes, sorted.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        Ok(self
            .list_modified(prefix)?
            .into_iter()
            .map(|(k, size, _)| (k, size))
            .collect())
    }

    /// The keys under a prefix with their sizes and when they were last written, sorted.
    pub fn list_modified(&self, prefix: &str) -> Result<Vec<(String, u64, SystemTime)>> {
        let k = Key::from(prefix);
        let mut out = Vec::new();
        let mut stream = self.store.list((!prefix.is_empty()).then_some(&k));
        while let Some(meta) = self.rt.block_on(stream.next()) {
            let meta = meta.map_err(|e| failure(&self.url(&k), e))?;
            let millis = meta.last_modified.timestamp_millis().max(0) as u64;
            let modified = UNIX_EPOCH + std::time::Duration::from_millis(millis);
            out.push((meta.location.to_string(), meta.size, modified));
        }
        out.sort();
        Ok(out)
    }

    /// A reader of an object's bytes, streamed (memory stays flat however large it is).
    pub fn reader(&self, key: &str) -> Result<ObjectReader> {
        let k = Key::from(key);
        let url = self.url(&k);
        let got = self
            .rt
            .block_on(self.store.get(&k))
            .map_err(|e| failure(&url, e))?;
        Ok(ObjectReader {
            stream: got.into_stream(),
            rt: self.rt.clone(),
            chunk: Bytes::new(),
            url,
        })
    }

    /// The whole of a small object, or `None` when there is none.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let k = Key::from(key);
        let outcome = self.rt.block_on(async {
            let got = self.store.get(&k).await?;
            got.bytes().await
        });
        match outcome {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(failure(&self.url(&k), e)),
        }
    }

    /// Writes a small object whole.
    pub fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let k = Key::from(key);
        self.rt
            .block_on(self.store.put(&k, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| failure(&self.url(&k), e))
    }

    /// Creates a small object only if there is none at `key` (a conditional put): `false` when
    /// another writer made it first.
    pub fn create(&self, key: &str, bytes: Vec<u8>) -> Result<bool> {
        let k = Key::from(key);
        let put = self.store.put_opts(
            &k,
            PutPayload::from(bytes),
            PutOptions::from(PutMode::Create),
        );
        match self.rt.block_on(put) {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => Ok(false),
            Err(e) => Err(failure(&self.url(&k), e)),
        }
    }

    /// Removes an object; one already gone is fine.
    pub fn delete(&self, key: &str) -> Result<()> {
        let k = Key::from(key);
        match self.rt.block_on(self.store.delete(&k)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(failure(&self.url(&k), e)),
        }
    }

    /// Replaces a small object by `change` of its bytes (`None` when there is none yet), only
    /// if no other writer replaced it in between: a conditional put (`If-Match`, or
    /// `If-None-Match` to create), read and tried again when another writer won the race. Many
    /// processes can update one object this way and no update is lost.
    pub fn update(
        &self,
        key: &str,
        mut change: impl FnMut(Option<&[u8]>) -> Result<Vec<u8>>,
    ) -> Result<()> {
        let k = Key::from(key);
        let url = self.url(&k);
        for attempt in 0u64..200 {
            let current = self
                .rt
                .block_on(async {
                    match self.store.get(&k).await {
                        Ok(got) => {
                            let version = UpdateVersion {
                                e_tag: got.meta.e_tag.clone(),
                                version: got.meta.version.clone(),
                            };
                            Ok(Some((got.bytes().await?, version)))
                        }
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
                .map_err(|e| failure(&url, e))?;
            let (bytes, mode) = match current {
                Some((bytes, version)) => (change(Some(&bytes))?, PutMode::Update(version)),
                None => (change(None)?, PutMode::Create),
            };
            let put = self
                .store
                .put_opts(&k, PutPayload::from(bytes), PutOptions::from(mode));
            match self.rt.block_on(put) {
                Ok(_) => return Ok(()),
                Err(
                    object_store::Error::Precondition { .. }
                    | object_store::Error::AlreadyExists { .. },
                ) => {
                    // Another writer won: read its version and apply the change to it.
                    let pause = 5 + (attempt * 7 + u64::from(std::process::id())) % 40;
                    std::thread::sleep(std::time::Duration::from_millis(pause));
                }
                Err(e) => return Err(failure(&url, e)),
            }
        }
        Err(Error::io(
            url.to_path(),
            io::Error::other("too many writers at once: gave up after 200 tries"),
        ))
    }

    /// Uploads a local file as an object, in parts of a few MiB (memory stays flat).
    pub fn upload(&self, file: &Path, key: &str) -> Result<()> {
        let k = Key::from(key);
        let url = self.url(&k);
        let mut f = std::fs::File::open(file).map_err(|e| Error::io(file, e))?;
        self.rt.block_on(async {
            let upload = self
                .store
                .put_multipart(&k)
                .await
                .map_err(|e| failure(&url, e))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf).map_err(|e| Error::io(file, e))?;
                if n == 0 {
                    break;
                }
                w.wait_for_capacity(4).await.map_err(|e| failure(&url, e))?;
                w.write(&buf[..n]);
            }
            w.finish().await.map_err(|e| failure(&url, e))?;
            Ok(())
        })
    }
}

/// The bytes of one object, as a blocking reader.
pub struct ObjectReader {
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    rt: Arc<Runtime>,
    chunk: Bytes,
    url: Url,
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rt.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => {
                    let msg = failure(&self.url, e).to_string();
                    return Err(io::Error::other(msg));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

/// Opens the object a URL names, for reading.
pub fn open(url: &Url) -> Result<ObjectReader> {
    Bucket::of(url)?.reader(&url.key)
}

/// The size of the object a URL names.
pub fn size(url: &Url) -> Result<u64> {
    Bucket::of(url)?
        .size(&url.key)?
        .ok_or_else(|| not_found(url))
}

fn not_found(url: &Url) -> Error {
    Error::io(
        url.to_path(),
        io::Error::new(io::ErrorKind::NotFound, "no such object"),
    )
}

/// One clear line for a failed request: what failed, by its kind, naming the URL; the store's
/// own words only where they say more, with any secret taken out.
fn failure(url: &Url, e: object_store::Error) -> Error {
    let text = e.to_string();
    let (kind, what) = match &e {
        _ if text.contains("NoSuchBucket") => (
            io::ErrorKind::NotFound,
            format!("the bucket {} does not exist", url.bucket),
        ),
        object_store::Error::NotFound { .. } => {
            (io::ErrorKind::NotFound, "no such object".to_string())
        }
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => (
            io::ErrorKind::PermissionDenied,
            "access denied (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)".to_string(),
        ),
        _ if text.contains("AccessDenied")
            || text.contains("InvalidAccessKeyId")
            || text.contains("SignatureDoesNotMatch") =>
        {
            (
                io::ErrorKind::PermissionDenied,
                "access denied (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)".to_string(),
            )
        }
        _ if text.contains("error sending request")
            || text.contains("connect")
            || text.contains("dns") =>
        {
            let endpoint = std::env::var("AWS_ENDPOINT_URL")
                .or_else(|_| std::env::var("AWS_ENDPOINT"))
                .unwrap_or_else(|_| "the S3 endpoint".into());
            (
                io::ErrorKind::ConnectionRefused,
                format!("cannot reach {endpoint}"),
            )
        }
        _ => (io::ErrorKind::Other, scrub(&text)),
    };
    Error::io(url.to_path(), io::Error::new(kind, what))
}

/// A text with the secret key and session token (when set) taken out.
fn scrub(text: &str) -> String {
    let mut out = text.to_string();
    for var in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Ok(secret) = std::env::var(var) {
            if secret.len() >= 4 {
                out = out.replace(&secret, "***");
            }
        }
    }
    out
}
