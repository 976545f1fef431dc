//! `creatorflow schema rules|machine|tests|config`.

use creatorflow_cli::schema::Kind;

use crate::Outcome;

/// The file formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// A rule file of a pack (`rules/*.yaml`).
    Rules,
    /// A state machine file (`rules/order-workflow.yaml`).
    Machine,
    /// A test case file of a pack (`rules/tests/*.yaml`).
    Tests,
    /// The service configuration file (`--config`).
    Config,
}

/// Arguments of `schema`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which file format.
    #[arg(value_enum)]
    format: Format,
}

/// Prints the JSON Schema (draft-07) of the format on stdout.
pub fn run(args: Args) -> Result<Outcome, String> {
    let kind = match args.format {
        Format::Rules => Kind::Rules,
        Format::Machine => Kind::Machine,
        Format::Tests => Kind::Tests,
        Format::Config => Kind::Config,
    };
    print!("{}", kind.render());
    Ok(Outcome::Ok)
}
