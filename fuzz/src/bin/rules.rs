//! AFL++ target: the rules parser (`creatorflow_cli::fuzz::Target::Rules`).

use creatorflow_cli::fuzz::Target;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Err(v) = Target::Rules.run(data) {
            panic!("{v}");
        }
    });
}
