//! AFL++ target: the webhook parser (`creatorflow_cli::fuzz::Target::Webhook`).

use creatorflow_cli::fuzz::Target;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Err(v) = Target::Webhook.run(data) {
            panic!("{v}");
        }
    });
}
