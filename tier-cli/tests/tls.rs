//! Connecting as libpq does: a PostgreSQL server started here with `ssl = on` and a certificate
//! of a CA made here, reachable only by `hostssl`; sslmode, roots, `.pgpass`, services.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;

const PASSWORD: &str = "sekret-pw-4711";

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A command run as the server's account.
fn server_cmd(program: &Path) -> Command {
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(c: &mut Command) {
    let out = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").current_dir(dir).args(args));
}

fn give_to_server(p: &Path) {
    if as_root() {
        run(Command::new("chown").arg("postgres:postgres").arg(p));
    }
}

struct TlsServer {
    dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = tempfile::Builder::new()
            .prefix("tier-tls")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let d = dir.path();
        // A CA, a server certificate it signs (localhost, 127.0.0.1), and a CA nobody trusts.
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=tier test CA",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "other.key",
                "-out",
                "other.crt",
                "-days",
                "2",
                "-subj",
                "/CN=another CA",
            ],
        );
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
        );

        let data = d.join("data");
        std::fs::create_dir(&data).unwrap();
        give_to_server(&data);
        let initdb = tier_core::db::embedded::find_binary("initdb").unwrap();
        run(server_cmd(&initdb)
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres"]));
        for f in ["server.crt", "server.key"] {
            std::fs::copy(d.join(f), data.join(f)).unwrap();
            std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
            give_to_server(&data.join(f));
        }
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        let sock = d.join("sock");
        std::fs::create_dir(&sock).unwrap();
        give_to_server(&sock);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg_ctl = tier_core::db::embedded::find_binary("pg_ctl").unwrap();
        let opts = format!(
            "-c ssl=on -c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={}",
            sock.display()
        );
        run(server_cmd(&pg_ctl)
            .arg("-D")
            .arg(&data)
            .args(["-w", "-l"])
            .arg(data.join("server.log"))
            .args(["-o", &opts, "start"]));
        let admin = format!(
            "host={} port={port} user=postgres dbname=postgres",
            sock.display()
        );
        let mut c =
            tier_core::postgres::Client::connect(&admin, tier_core::postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE ROLE tier LOGIN PASSWORD '{PASSWORD}'"))
            .unwrap();
        c.batch_execute("CREATE DATABASE tier OWNER tier").unwrap();
        TlsServer { dir, data, port }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn url(&self, host: &str, params: &str) -> String {
        format!(
            "postgresql://tier:{PASSWORD}@{host}:{}/tier?{params}",
            self.port
        )
    }

    fn count(&self, table: &str) -> i64 {
        let admin = format!(
            "host={} port={} user=postgres dbname=tier",
            self.path("sock").display(),
            self.port
        );
        let mut c =
            tier_core::postgres::Client::connect(&admin, tier_core::postgres::NoTls).unwrap();
        c.query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .unwrap()
            .get(0)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        if let Ok(pg_ctl) = tier_core::db::embedded::find_binary("pg_ctl") {
            let _ = server_cmd(&pg_ctl)
                .arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn load(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = tier_cmd();
    c.env_remove("PGSSLMODE")
        .env_remove("PGSERVICE")
        .env_remove("PGPASSFILE");
    for (k, v) in env {
        c.env(k, v);
    }
    let mut a = vec!["load", "--progress", "never", "--report", "json", "--force"];
    a.extend_from_slice(args);
    let r: Run = c.args(&a).output().unwrap().into();
    assert!(
        !r.stderr.contains(PASSWORD) && !r.stdout.contains(PASSWORD),
        "the password was printed"
    );
    r
}

#[test]
fn tls_and_libpq_conventions() {
    let server = TlsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "weather.json", "weather", 50, 3, 0.0);
    let f = s(&file);
    let ca = server.path("ca.crt");
    let other = server.path("other.crt");

    // require: encrypted, the certificate not checked.
    let r = load(
        &[],
        &[
            f,
            "--database-url",
            &server.url("127.0.0.1", "sslmode=require"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(server.count("weather"), 50);
    // prefer (the default) uses TLS where the server offers it.
    let r = load(
        &[],
        &[
            f,
            "--database-url",
            &server.url("127.0.0.1", "application_name=x"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // verify-full with the right CA and the host the certificate names.
    let r = load(
        &[],
        &[
            f,
            "--database-url",
            &server.url(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={}", s(&ca)),
            ),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // verify-ca does not look at the name.
    let r = load(&[], &[f, "--database-url", &format!("host=127.0.0.1 port={} user=tier password={PASSWORD} dbname=tier sslmode=verify-ca sslrootcert={}", server.port, s(&ca))]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A CA that did not sign it: refused, saying so.
    let r = load(
        &[],
        &[
            f,
            "--database-url",
            &server.url(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={}", s(&other)),
            ),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.to_lowercase().contains("certificate"),
        "{}",
        r.stderr
    );
    // Without TLS the server refuses.
    let r = load(
        &[],
        &[
            f,
            "--database-url",
            &server.url("127.0.0.1", "sslmode=disable"),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("pg_hba.conf"), "{}", r.stderr);
    assert!(
        load(
            &[],
            &[
                f,
                "--database-url",
                &server.url("127.0.0.1", "sslmode=sometimes")
            ]
        )
        .code
            == 2
    );

    // PGSSLMODE and the PG* variables, the password from a .pgpass file (0600).
    let port = server.port.to_string();
    let pgpass = dir.path().join("pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:{port}:tier:tier:{PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let env = [
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", port.as_str()),
        ("PGUSER", "tier"),
        ("PGDATABASE", "tier"),
        ("PGSSLMODE", "require"),
        ("PGPASSFILE", s(&pgpass)),
    ];
    let r = load(&env, &[f]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // A password file others may read is ignored, with a warning.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = load(&env, &[f]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("is ignored"), "{}", r.stderr);
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();

    // A service of pg_service.conf (and a .pgpass line for any host).
    std::fs::write(
        &pgpass,
        format!("# comment\n*:{port}:tier:tier:{PASSWORD}\n"),
    )
    .unwrap();
    let services = dir.path().join("pg_service.conf");
    std::fs::write(
        &services,
        format!("[other]\nhost=nowhere\n\n[tiersvc]\nhost=localhost\nport={port}\nuser=tier\ndbname=tier\nsslmode=verify-full\nsslrootcert={}\n", s(&ca)),
    )
    .unwrap();
    let env = [
        ("PGSERVICE", "tiersvc"),
        ("PGSERVICEFILE", s(&services)),
        ("PGPASSFILE", s(&pgpass)),
    ];
    let r = load(&env, &[f]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = load(
        &[("PGSERVICEFILE", s(&services)), ("PGPASSFILE", s(&pgpass))],
        &[f, "--database-url", "service=nosuch"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nosuch"), "{}", r.stderr);
    assert_eq!(
        server.count("weather"),
        50,
        "every load after the first found only duplicates"
    );
}
