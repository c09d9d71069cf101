//! Tests of `definition.rs`.

use super::*;

fn err(text: &str) -> String {
    Definition::from_toml_str(text, "d.toml")
        .unwrap_err()
        .to_string()
}

const COL: &str = "[[columns]]\nname = \"a\"\ntype = \"text\"\nrequired = true\n";

#[test]
fn names_the_line_and_the_problem() {
    assert!(err("name = \"x\"\nprefix = \n").contains("d.toml:2"));
    assert!(err(&format!("name = \"X\"\n{COL}")).contains("d.toml:1: name `X`"));
    let e = err(&format!(
        "name = \"x\"\n{COL}[[columns]]\nname = \"a\"\ntype = \"date\"\n"
    ));
    assert!(e.contains("d.toml:7") && e.contains("defined twice"), "{e}");
    let e = err(&format!("name = \"x\"\nkey = [\"b\"]\n{COL}"));
    assert!(e.contains("d.toml:2") && e.contains("`b`"), "{e}");
    let e = err(&format!("name = \"x\"\n{COL}min = 1\n"));
    assert!(e.contains("only to numbers"), "{e}");
    let e = err(&format!("name = \"x\"\n{COL}colour = 1\n"));
    assert!(e.contains("d.toml:6") && e.contains("colour"), "{e}");
    let e = err(&format!("name = \"x\"\npartition_by = \"a\"\n{COL}"));
    assert!(e.contains("not timestamptz or date"), "{e}");
    // Names PostgreSQL would refuse or tier uses already.
    let long = "t".repeat(56);
    let e = err(&format!("name = \"x\"\ntable = \"{long}\"\n{COL}"));
    assert!(e.contains("d.toml:2") && e.contains("too long"), "{e}");
    assert!(
        Definition::from_toml_str(&format!("name = \"{}\"\n{COL}", "t".repeat(55)), "d").is_ok()
    );
    let e = err(&format!("name = \"tier_loads\"\n{COL}"));
    assert!(e.contains("d.toml:1") && e.contains("ledger"), "{e}");
    let e = err(&format!("name = \"x\"\ntable = \"weather_rejects\"\n{COL}"));
    assert!(e.contains("d.toml:2") && e.contains("_rejects"), "{e}");
    let e = err("name = \"x\"\n[[columns]]\nname = \"xmin\"\ntype = \"text\"\n");
    assert!(e.contains("d.toml:3") && e.contains("system column"), "{e}");
}
