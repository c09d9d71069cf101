//! `tier generate`: synthetic exports of the built-ins.

use std::path::Path;

use tier_core::generate::{self, GenerateOptions};
use tier_core::{Error, Registry};

use crate::*;

pub(crate) fn generate_file(args: GenerateArgs) -> Result<Outcome, Error> {
    if !(0.0..=1.0).contains(&args.defect_rate) {
        return Err(Error::Usage("--defect-rate must be between 0 and 1".into()));
    }
    let dataset = Registry::builtin().get(&args.dataset)?;
    if !generate::supports(&dataset) {
        return Err(Error::Usage(format!(
            "tier generate makes data for the built-in datasets only, not {dataset}"
        )));
    }
    let opts = GenerateOptions {
        dataset,
        records: args.records,
        seed: args.seed,
        defect_rate: args.defect_rate,
        closed: args.closed,
        csv: args.csv,
    };
    let path = &args.output;
    let result = if path == Path::new("-") {
        generate::generate(&opts, &mut std::io::stdout().lock())
    } else {
        let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
        generate::generate(&opts, &mut f)
    };
    result.map_err(|e| Error::io(path, e))?;
    Ok(Outcome::Ok)
}
