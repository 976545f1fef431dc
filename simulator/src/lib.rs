//! The spike simulator behind `creatorflow simulate`: synthetic traffic and
//! faults driven through the real engine under virtual time, scored against
//! the ground truth, reported three ways.
//!
//! | module | what it is |
//! |---|---|
//! | [`scenario`] | the scenario format, its located loading, the built-ins |
//! | [`traffic`] | products, arrivals (non-homogeneous Poisson), spikes, customers, webhook quirks |
//! | [`faults`] | latencies, errors and outages of the services behind the action handlers |
//! | [`fulfil`] | the fulfilment model: packing shifts, stock and reorders, pickups, ship-by deadlines, auto-cancellation |
//! | [`vclock`] | virtual time: the clock, timers, and the driver of engine futures |
//! | [`driver`] | the simulation loop and the read-back into a [`Report`] |
//! | [`score`] | the viral detectors against the ground truth |
//! | [`report`] | the report and its terminal, JSON and HTML forms |

#![warn(missing_docs)]

pub mod driver;
pub mod faults;
pub mod fulfil;
pub mod report;
pub mod scenario;
pub mod score;
pub mod traffic;
pub mod vclock;

pub use driver::{Mode, Options, run};
pub use fulfil::Policy;
pub use scenario::{Scenario, ScenarioError};
