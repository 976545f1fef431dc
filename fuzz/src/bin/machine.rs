//! AFL++ target: the machine parser (`creatorflow_cli::fuzz::Target::Machine`).

use creatorflow_cli::fuzz::Target;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Err(v) = Target::Machine.run(data) {
            panic!("{v}");
        }
    });
}
