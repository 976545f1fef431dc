//! AFL++ target: the config parser (`creatorflow_cli::fuzz::Target::Config`).

use creatorflow_cli::fuzz::Target;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Err(v) = Target::Config.run(data) {
            panic!("{v}");
        }
    });
}
