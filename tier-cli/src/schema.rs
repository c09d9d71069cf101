//! `tier schema`: the DDL of datasets, a definition, or one inferred from a sample.

use tier_core::Error;

use crate::*;

pub(crate) fn schema(args: SchemaArgs) -> Result<Outcome, Error> {
    if let Some(SchemaCommand::Infer { file, name, sample }) = &args.infer {
        print!("{}", tier_core::infer(file, name.as_deref(), *sample)?);
        return Ok(Outcome::Ok);
    }
    let registry = args.definitions.registry()?;
    let datasets = match &args.dataset {
        Some(name) => vec![registry.get(name)?],
        None => registry.all().to_vec(),
    };
    if args.definition {
        print!("{}", datasets[0].source);
    } else {
        print!("{}", tier_core::db::ddl::full_ddl(&datasets, &args.schema));
    }
    Ok(Outcome::Ok)
}
