//! `creatorflow check`.

use creatorflow::diag::Severity;

use creatorflow_cli::config::{TikTokApp, process_env};

use super::{ConfigArgs, Prepared};
use crate::Outcome;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

/// Prints every diagnostic as `file:line:col: error[E0108]: message` (`warning[W0201]`
/// for warnings; codes in `docs/diagnostics.md`); exit 1 if any is an error.
/// With `--config`, checks the file, every pack and machine it names and
/// the bindings' coverage: everything `serve` would refuse at start-up.
pub fn run(args: Args) -> Result<Outcome, String> {
    let Prepared::Ready(setup) = args.config.setup_with(|d| println!("{d}"))? else {
        return Ok(Outcome::Invalid);
    };
    for d in &setup.warnings {
        println!("{d}");
    }
    let warnings = setup
        .warnings
        .iter()
        .filter(|d| d.severity() == Severity::Warning)
        .count();
    let m = &setup.machine;
    let mut summary = vec![
        format!("{} rules", setup.default_pack.rules().len()),
        format!(
            "machine `{}` with {} states and {} transitions",
            m.name(),
            m.states().len(),
            m.transitions().len()
        ),
    ];
    if let Some(c) = &setup.config {
        // serve verifies webhooks with the app: without one it refuses to start.
        if TikTokApp::of(&setup, &process_env, None).is_none() {
            println!(
                "{}:1:1: error: `serve` needs a TikTok app: a `tiktok:` section, or TIKTOK_APP_KEY and TIKTOK_APP_SECRET in the environment",
                c.file
            );
            return Ok(Outcome::Invalid);
        }
        summary.insert(
            0,
            format!(
                "{}: {} tenant(s) ({} with a pack of their own), {} action type(s) bound",
                c.file,
                c.tenants.len(),
                setup.tenant_packs.len(),
                c.actions.bindings.len()
            ),
        );
    }
    eprintln!("ok: {} ({warnings} warning(s))", summary.join(", "));
    Ok(Outcome::Ok)
}
