//! Tests of `connect.rs`.

use super::*;

#[test]
fn splits_what_tier_handles() {
    let (rest, ours) = split_params("host=h user='a b' sslmode=verify-ca password='x\\'y'");
    assert_eq!(rest, "host='h' user='a b' password='x\\'y'");
    assert_eq!(ours["sslmode"], "verify-ca");
    let (rest, ours) =
        split_params("postgresql://u:p@h:5/d?application_name=x&sslrootcert=%2Ftmp%2Fca.pem");
    assert_eq!(rest, "postgresql://u:p@h:5/d?application_name=x");
    assert_eq!(ours["sslrootcert"], "/tmp/ca.pem");
    assert!("verify-all".parse::<SslMode>().is_err());
    // A `%` before a character that is not ASCII decodes lossily, never panics.
    let (_, ours) = split_params("postgresql://u@127.0.0.1/x?sslmode=%aé");
    assert_eq!(ours["sslmode"], "%aé");
    // The user info may hold a `?`, as in libpq.
    let (rest, ours) = split_params("postgresql://u:p?w@h/d?sslmode=disable");
    assert_eq!(rest, "postgresql://u:p?w@h/d");
    assert_eq!(ours["sslmode"], "disable");
    let (rest, ours) = split_params("postgresql://h/d?sslmode=require&user=a@b");
    assert_eq!(rest, "postgresql://h/d?user=a@b");
    assert_eq!(ours["sslmode"], "require");
}
