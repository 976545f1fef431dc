//! AFL++ target: the scenario parser (`creatorflow_cli::fuzz::Target::Scenario`).

use creatorflow_cli::fuzz::Target;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Err(v) = Target::Scenario.run(data) {
            panic!("{v}");
        }
    });
}
