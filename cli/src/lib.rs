//! The `creatorflow` command line's server half, as a library so that its
//! tests and the load example run it in-process: [`serve`] (the HTTP layer
//! — webhook receiver, JSON API, dashboard — over the library's
//! [`creatorflow::service`] runtime) and [`load`] (a signed-webhook load
//! driver over loopback); [`config`]: the service configuration file;
//! [`fuzz`]: the parsers' fuzz targets.

#![warn(missing_docs)]

pub mod config;
pub mod fuzz;
pub mod load;
pub mod schema;
pub mod serve;
