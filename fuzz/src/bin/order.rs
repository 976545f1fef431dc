//! AFL++ target: the order parser (`creatorflow_cli::fuzz::Target::Order`).

use creatorflow_cli::fuzz::Target;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Err(v) = Target::Order.run(data) {
            panic!("{v}");
        }
    });
}
