//! End-to-end tests: the real `sparkwing` CLI on the fixtures, with real processes and signals.
//! Every fixture's expected outcome is written down in `fixtures/README.md`.

mod bad_input;
mod cache;
mod ci_embedded;
mod dashboard;
mod deps_cache;
mod doctor;
mod hostile;
mod install;
mod local_run;
mod reports;
mod scaffold;
mod shards;
mod signals;
mod sparks;
mod support;
mod trusted_cache;
mod watch;
